import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Where a scenario that runs its own clients puts its processes: the measured server alone on the
 * first core, everything else (clients, the harness) on the others. Undefined on a single core.
 */
export interface CoreSplit {
  readonly server: string;
  readonly clients: string;
  readonly all: string;
}

export function coreSplit(): CoreSplit | undefined {
  const cores = os.availableParallelism();
  if (cores < 2) return undefined;
  return { server: '0', clients: cores === 2 ? '1' : `1-${cores - 1}`, all: `0-${cores - 1}` };
}

/**
 * Pins every thread of a process to `cores` (a taskset list, `1` or `1-3`) with `taskset -a -cp`.
 * Threads it starts later inherit the affinity. False when taskset is missing or refuses.
 */
export async function pinProcess(pid: number, cores: string): Promise<boolean> {
  try {
    await run('taskset', ['-a', '-cp', cores, String(pid)]);
    return true;
  } catch {
    return false;
  }
}

/** The soft limit on open files of this process (children inherit it); undefined off Linux. */
export function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((candidate) => candidate.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}
