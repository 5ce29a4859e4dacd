import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { createVariantRenderer, createVariantSigner } from 'socle';
import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import type { BenchDialect } from '../../server-protocol.js';

/** 4000 × 3000: the 12-megapixel photo of issue 14. */
const PHOTO_WIDTH = 4000;
const PHOTO_HEIGHT = 3000;
const THUMBNAIL_WIDTH = 400;
/** Thumbnails asked for at once when `--connections` is not given: a burst of avatar requests. */
const DEFAULT_IN_FLIGHT = 8;
const WARMUP_THUMBNAILS = 4;
const GOAL = 0.9;

type Contender = 'socle' | 'baseline';
/** Makes one thumbnail of the photo read from `source`; resolves with its size in bytes. */
type MakeThumbnail = (source: Readable) => Promise<number>;

interface PhaseFigures {
  thumbnails: number;
  thumbnailsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  thumbnailBytes: number;
}

interface ThumbnailsFigures {
  photoBytes: number;
  inFlight: number;
  socleConcurrency: number;
  goal: number;
  ratio: number;
  goalMet: boolean;
  socle: PhaseFigures;
  baseline: PhaseFigures;
  rounds: { socle: PhaseFigures; baseline: PhaseFigures }[];
}

/**
 * A photo-like 12 MP JPEG: blurred noise, so it neither compresses to nothing nor decodes like
 * static. Made once per run, in memory.
 */
async function makePhoto(): Promise<Buffer> {
  return sharp({
    create: {
      width: PHOTO_WIDTH,
      height: PHOTO_HEIGHT,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 60 },
    },
  })
    .blur(1.5)
    .jpeg({ quality: 90 })
    .toBuffer();
}

/**
 * Socle's path as the download route runs it: verify the signed variant, then render it through
 * the renderer and its concurrency limit (no cache: every thumbnail is generated).
 */
function socleContender(): { make: MakeThumbnail; concurrency: number } {
  const signer = createVariantSigner({ key: randomBytes(32) });
  const signed = signer.sign(
    'photos/12mp.jpg',
    { width: THUMBNAIL_WIDTH, format: 'webp' },
    new Date(Date.now() + 86_400_000),
  );
  const renderer = createVariantRenderer();
  const make: MakeThumbnail = async (source) => {
    const spec = signer.verify('photos/12mp.jpg', {
      variant: signed.variant,
      expires: String(signed.expires),
      signature: signed.signature,
    });
    return (await renderer.renderVariant(source, spec)).data.length;
  };
  return { make, concurrency: availableParallelism() };
}

/** What an app would write with sharp alone: the stream piped into a resize to 400 px WebP. */
const baselineContender: MakeThumbnail = async (source) => {
  const data = await source.pipe(sharp().resize({ width: THUMBNAIL_WIDTH }).webp()).toBuffer();
  return data.length;
};

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

/** `inFlight` loops each making thumbnails back to back for `seconds`. */
async function measure(
  make: MakeThumbnail,
  photo: Buffer,
  inFlight: number,
  seconds: number,
  signal: AbortSignal,
): Promise<PhaseFigures> {
  for (let index = 0; index < WARMUP_THUMBNAILS; index++) await make(Readable.from([photo]));
  const latencies: number[] = [];
  let thumbnailBytes = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline && !signal.aborted) {
        const begun = performance.now();
        thumbnailBytes = await make(Readable.from([photo]));
        latencies.push(performance.now() - begun);
      }
    }),
  );
  const elapsedSeconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    thumbnails: latencies.length,
    thumbnailsPerSecond: latencies.length / elapsedSeconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    thumbnailBytes,
  };
}

function medianPhase(phases: readonly PhaseFigures[]): PhaseFigures {
  const median = (pick: (phase: PhaseFigures) => number) => {
    const sorted = phases.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
  };
  return {
    thumbnails: phases.reduce((sum, phase) => sum + phase.thumbnails, 0),
    thumbnailsPerSecond: median((phase) => phase.thumbnailsPerSecond),
    p50Ms: median((phase) => phase.p50Ms),
    p99Ms: median((phase) => phase.p99Ms),
    thumbnailBytes: median((phase) => phase.thumbnailBytes),
  };
}

const decimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const ratioFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function formatFigures(figures: ThumbnailsFigures, dialect: BenchDialect): string {
  const row = (label: Contender) => {
    const phase = figures[label];
    return (
      `  ${label.padEnd(9)} ${decimal.format(phase.thumbnailsPerSecond).padStart(6)} thumbnails/s` +
      `  p50 ${decimal.format(phase.p50Ms)} ms  p99 ${decimal.format(phase.p99Ms)} ms` +
      `  (${phase.thumbnails} made, ${phase.thumbnailBytes} bytes each)`
    );
  };
  return [
    `thumbnails (${dialect}: no database; ${PHOTO_WIDTH}×${PHOTO_HEIGHT} JPEG of ${figures.photoBytes} bytes → ` +
      `${THUMBNAIL_WIDTH} px WebP, ${figures.inFlight} in flight, Socle renderer concurrency ${figures.socleConcurrency})`,
    row('socle'),
    row('baseline'),
    `  ratio ${ratioFormat.format(figures.ratio)} (goal ≥ ${ratioFormat.format(figures.goal)}: ${figures.goalMet ? 'met' : 'NOT met'})`,
  ].join('\n');
}

/**
 * Thumbnails per second: Socle's variant path (signature check, header check, renderer with its
 * concurrency limit, auto-orientation, metadata stripped) vs raw sharp, in this process,
 * interleaved over the rounds with sharp's operation cache off for both.
 */
export const thumbnails: CustomScenario = {
  kind: 'custom',
  name: 'thumbnails',
  description: '12 MP JPEG → 400 px WebP: Socle variant renderer vs raw sharp, thumbnails/s',
  dialects: ['postgres', 'pglite'],
  // No database at all: this stops the harness from creating one.
  createsDatabases: true,
  async run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult> {
    sharp.cache(false);
    const photo = await makePhoto();
    const inFlight = settings.connections ?? DEFAULT_IN_FLIGHT;
    const socle = socleContender();
    const rounds: ThumbnailsFigures['rounds'] = [];
    for (let round = 1; round <= settings.rounds && !settings.signal.aborted; round++) {
      const socleFigures = await measure(
        socle.make,
        photo,
        inFlight,
        settings.durationSeconds,
        settings.signal,
      );
      settings.progress(
        `  round ${round}: socle ${decimal.format(socleFigures.thumbnailsPerSecond)} thumbnails/s`,
      );
      const baselineFigures = await measure(
        baselineContender,
        photo,
        inFlight,
        settings.durationSeconds,
        settings.signal,
      );
      settings.progress(
        `  round ${round}: baseline ${decimal.format(baselineFigures.thumbnailsPerSecond)} thumbnails/s`,
      );
      rounds.push({ socle: socleFigures, baseline: baselineFigures });
    }
    const socleMedian = medianPhase(rounds.map((round) => round.socle));
    const baselineMedian = medianPhase(rounds.map((round) => round.baseline));
    const ratio = socleMedian.thumbnailsPerSecond / baselineMedian.thumbnailsPerSecond;
    const figures: ThumbnailsFigures = {
      photoBytes: photo.length,
      inFlight,
      socleConcurrency: socle.concurrency,
      goal: GOAL,
      ratio,
      goalMet: ratio >= GOAL,
      socle: socleMedian,
      baseline: baselineMedian,
      rounds,
    };
    return { scenario: 'thumbnails', dialect, text: formatFigures(figures, dialect), figures };
  },
};
