import { openDatabaseCpu } from '../../database-cpu.js';
import { type LoadMeasurement, measureLoad } from '../../load.js';
import { processCpuSeconds } from '../../process-cpu.js';
import type { BenchRequest, CustomScenario } from '../../scenario.js';
import { spawnServer } from '../../server-process.js';
import type { BenchDialect } from '../../server-protocol.js';
import { DOWNLOAD_BYTES, PATH_HEADER, UPLOAD_BYTES } from './transfer.js';

/** Unmeasured load before each measured run (file caches, JIT). */
const WARM_UP_SECONDS = 2;

interface TransferOptions {
  readonly name: string;
  readonly description: string;
  readonly goal: number;
  readonly mode: 'download' | 'upload';
  readonly bytes: number;
  readonly connections: number;
  /** The request, given the path the server handed over. */
  request(path: string): BenchRequest;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

/**
 * A transfer scenario: each round starts Socle, then the baseline, in their own processes, loads
 * each with the same request (the path each server hands over at start: Socle's signed URL is only
 * known to it) and compares transfers per second. A custom scenario because the path is not known
 * before the server starts.
 */
function transferScenario(options: TransferOptions): CustomScenario {
  return {
    kind: 'custom',
    name: options.name,
    description: options.description,
    dialects: ['pglite', 'postgres'],
    async run(dialect: BenchDialect, settings) {
      process.env.BENCH_FILES_MODE = options.mode;
      const connections = settings.connections ?? options.connections;
      const measured: Record<'socle' | 'baseline', LoadMeasurement[]> = { socle: [], baseline: [] };
      // Server CPU per MB moved (10^6 bytes), and the Postgres backends' (Socle's records), per round.
      const cpuPerMegabyte: Record<'socle' | 'baseline', number[]> = { socle: [], baseline: [] };
      const databaseCpuPerMegabyte: number[] = [];
      for (let round = 1; round <= settings.rounds; round++) {
        for (const contender of ['socle', 'baseline'] as const) {
          const server = await spawnServer({
            label: contender,
            entry: new URL(`./${contender}-server.js`, import.meta.url),
            settings: { dialect, databaseUrl: settings.databaseUrl, poolMax: settings.poolMax },
            signal: settings.signal,
            startTimeoutSeconds: settings.startTimeoutSeconds,
          });
          try {
            const { [PATH_HEADER]: path, ...headers } = server.requestHeaders;
            if (path === undefined) throw new Error(`${contender} server handed over no ${PATH_HEADER}`);
            const base = options.request(path);
            const request = { ...base, headers: { ...headers, ...base.headers } };
            const load = (durationSeconds: number) =>
              measureLoad({
                url: server.url,
                connections,
                durationSeconds,
                nextRequest: () => request,
                signal: settings.signal,
              });
            await load(WARM_UP_SECONDS);
            const databaseCpu =
              contender === 'socle' && settings.databaseUrl !== undefined
                ? await openDatabaseCpu(settings.databaseUrl)
                : undefined;
            const cpuBefore = await processCpuSeconds(server.pid);
            const databaseBefore = await databaseCpu?.read();
            const result = await load(settings.durationSeconds);
            const cpuAfter = await processCpuSeconds(server.pid);
            const databaseAfter = await databaseCpu?.read();
            const megabytes = (result.totalRequests * options.bytes) / 1e6;
            if (cpuBefore !== undefined && cpuAfter !== undefined && megabytes > 0)
              cpuPerMegabyte[contender].push(((cpuAfter - cpuBefore) * 1000) / megabytes);
            if (
              databaseCpu?.readable() === true &&
              databaseBefore !== undefined &&
              databaseAfter !== undefined &&
              megabytes > 0
            )
              databaseCpuPerMegabyte.push((databaseAfter - databaseBefore) / megabytes);
            await databaseCpu?.close();
            if (result.non2xx > 0 || result.errors > 0)
              throw new Error(
                `${contender}: ${result.non2xx} non-2xx responses, ${result.errors} errors of ${result.totalRequests}`,
              );
            measured[contender].push(result);
            settings.progress(
              `  round ${round} ${contender}: ${result.requestsPerSecond.toFixed(1)}/s, p50 ${result.latencyMs.p50.toFixed(1)} ms`,
            );
          } finally {
            await server.stop();
          }
        }
      }
      const summary = (results: LoadMeasurement[], contender: 'socle' | 'baseline') => ({
        perSecond: median(results.map((result) => result.requestsPerSecond)),
        cpuMillisecondsPerMegabyte:
          cpuPerMegabyte[contender].length === 0 ? undefined : median(cpuPerMegabyte[contender]),
        ...(contender === 'socle' && databaseCpuPerMegabyte.length > 0
          ? { databaseCpuMillisecondsPerMegabyte: median(databaseCpuPerMegabyte) }
          : {}),
        megabytesPerSecond: median(results.map((result) => (result.requestsPerSecond * options.bytes) / 1e6)),
        p50Ms: median(results.map((result) => result.latencyMs.p50)),
        p99Ms: median(results.map((result) => result.latencyMs.p99)),
      });
      const socle = summary(measured.socle, 'socle');
      const baseline = summary(measured.baseline, 'baseline');
      const ratio = socle.perSecond / baseline.perSecond;
      const line = (label: string, figures: typeof socle) =>
        `  ${label.padEnd(9)} ${figures.perSecond.toFixed(1).padStart(8)}/s ${figures.megabytesPerSecond
          .toFixed(0)
          .padStart(6)} MB/s  p50 ${figures.p50Ms.toFixed(1)} ms  p99 ${figures.p99Ms.toFixed(1)} ms${
          figures.cpuMillisecondsPerMegabyte === undefined
            ? ''
            : `  cpu ${figures.cpuMillisecondsPerMegabyte.toFixed(2)} ms/MB`
        }`;
      return {
        scenario: options.name,
        dialect,
        text: [
          `${options.name} [${dialect}] ${options.description}`,
          line('socle', socle),
          line('baseline', baseline),
          `  ratio ${ratio.toFixed(2)}× (goal ≥ ${options.goal}×) ${ratio >= options.goal ? 'met' : 'NOT met'}`,
        ].join('\n'),
        figures: { socle, baseline, ratio, goal: options.goal, connections },
      };
    },
  };
}

/** A 10 MB download through a signed URL (HMAC check, record read under RLS, ETag, stream). */
export const filesDownload = transferScenario({
  name: 'files-download',
  description:
    '10 MB GET through a signed URL, local backend (signature, record under RLS, stream) vs Fastify + fs.createReadStream',
  goal: 0.9,
  mode: 'download',
  bytes: DOWNLOAD_BYTES,
  connections: 8,
  request: (path) => ({ method: 'GET', path }),
});

const uploadBody = 'socle bench upload\n'.repeat(Math.ceil(UPLOAD_BYTES / 19)).slice(0, UPLOAD_BYTES);

/** A 50 MB streamed upload (sniffed, hashed, fsynced, renamed, recorded) vs a plain write. */
export const filesUpload = transferScenario({
  name: 'files-upload',
  description:
    '50 MB POST streamed to the local backend (type sniffing, sha256, fsync + rename, record, quota) vs Fastify + fs.createWriteStream',
  goal: 0.8,
  mode: 'upload',
  bytes: UPLOAD_BYTES,
  connections: 2,
  request: (path) => ({ method: 'POST', path, headers: { 'content-type': 'text/plain' }, body: uploadBody }),
});
