import { readFile } from 'node:fs/promises';

/** The parts of a V8 `.cpuprofile` this summary reads. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Self time of one function or one package, as a share of the profiled time. */
export interface ProfileEntry {
  readonly name: string;
  readonly milliseconds: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMilliseconds: number;
  /** Self time by npm package (`pg`, `fastify`, `socle`, `node:internal`, `(garbage collector)`…). */
  readonly byPackage: readonly ProfileEntry[];
  /** Self time by function, heaviest first. */
  readonly byFunction: readonly ProfileEntry[];
}

/** Which package a script URL belongs to; V8's pseudo-frames (`(idle)`, GC) keep their name. */
function packageOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + '/node_modules/'.length).split('/');
    return scope?.startsWith('@') ? `${scope}/${name}` : (scope ?? url);
  }
  if (url.startsWith('node:')) return url.startsWith('node:internal') ? 'node:internal' : url;
  if (url.includes('/packages/socle/')) return 'socle';
  if (url.includes('/bench/')) return 'bench';
  return url;
}

function ranked(totals: Map<string, number>, total: number, limit: number): ProfileEntry[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, microseconds]) => ({
      name,
      milliseconds: microseconds / 1000,
      share: total === 0 ? 0 : microseconds / total,
    }));
}

/** Reads a `.cpuprofile` and adds up self time per package and per function. */
export async function summarizeProfile(path: string, limit = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, index) => {
    const frame = nodes.get(id);
    const microseconds = profile.timeDeltas[index] ?? 0;
    if (frame === undefined || microseconds <= 0) return;
    total += microseconds;
    const owner = packageOf(frame.url, frame.functionName);
    byPackage.set(owner, (byPackage.get(owner) ?? 0) + microseconds);
    const file = frame.url.split('/').slice(-2).join('/');
    const name = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1} [${owner}]`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + microseconds);
  });
  return {
    totalMilliseconds: total / 1000,
    byPackage: ranked(byPackage, total, limit),
    byFunction: ranked(byFunction, total, limit),
  };
}

/**
 * A few aligned lines: share of the profile, microseconds per request (comparable between two
 * servers that served different numbers of requests), name.
 */
export function formatProfileEntries(
  entries: readonly ProfileEntry[],
  requests: number,
  indent = '    ',
): string {
  return entries
    .map((entry) => {
      const perRequest = ((entry.milliseconds * 1000) / requests).toFixed(1);
      return `${indent}${(entry.share * 100).toFixed(1).padStart(5)}%  ${perRequest.padStart(6)} µs/req  ${entry.name}`;
    })
    .join('\n');
}
