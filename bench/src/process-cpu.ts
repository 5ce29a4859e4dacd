import { readFile } from 'node:fs/promises';

/** Linux's USER_HZ: the unit of utime/stime in `/proc/<pid>/stat`. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time a process has used so far, user + system; undefined where `/proc` is missing. */
export async function processCpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the file, so 11 and 12 after the name.
    const user = Number(fields[11]);
    const system = Number(fields[12]);
    if (!Number.isFinite(user) || !Number.isFinite(system)) return undefined;
    return (user + system) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
