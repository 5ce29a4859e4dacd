import { readFile } from 'node:fs/promises';
import pg from 'pg';

/**
 * CPU time of other processes on this machine, read from `/proc/<pid>/stat`: what
 * `socle bench --calibrate` and the repository's benchmarks use to measure the Postgres backends
 * serving a database (the server runs here), beside Socle's own `process.cpuUsage()`. Exported
 * from `socle/testing` for the benchmarks.
 */

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

export interface DatabaseCpu {
  /**
   * Milliseconds of CPU the database's backends have used so far: every backend seen by a read
   * counts with the last CPU time read of it, so one that ends between two reads (an idle pooled
   * session closed) keeps what it used until the read before, and the total never goes down.
   */
  read(): Promise<number>;
  /**
   * Whether any backend's CPU could be read: false when Postgres runs on another machine (or in
   * a container whose processes this one cannot see), where every read is 0 and means nothing.
   */
  readable(): boolean;
  close(): Promise<void>;
}

/**
 * Connects a client that reads the CPU of the database's other backends. Two reads give the CPU
 * between them. On two shared cores the database's CPU per request or job bounds throughput as
 * much as the Node process's does, and it is where a heavier statement shows up.
 */
export async function openDatabaseCpu(databaseUrl: string): Promise<DatabaseCpu> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'socle-cpu-reader' });
  await client.connect();
  const lastSeen = new Map<number, number>();
  return {
    async read() {
      const { rows } = await client.query<{ pid: number }>(
        'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      );
      for (const { pid } of rows) {
        // A backend that ended since the query keeps its last value.
        const seconds = await processCpuSeconds(pid);
        if (seconds !== undefined) lastSeen.set(pid, seconds);
      }
      let seconds = 0;
      for (const value of lastSeen.values()) seconds += value;
      return seconds * 1000;
    },
    readable: () => lastSeen.size > 0,
    close: () => client.end(),
  };
}
