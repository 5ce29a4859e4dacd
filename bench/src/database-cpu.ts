/**
 * CPU time of the Postgres backends serving one database, read from `/proc/<pid>/stat` (the
 * server runs on this machine). On two shared cores the database's CPU per request or job bounds
 * throughput as much as the Node process's does, and it is where a heavier statement shows up.
 */
import pg from 'pg';
import { processCpuSeconds } from './process-cpu.js';

export interface DatabaseCpu {
  /**
   * Milliseconds of CPU the database's backends have used so far: every backend seen by a read
   * counts with the last CPU time read of it, so one that ends between two reads (an idle pooled
   * session closed) keeps what it used until the read before, and the total never goes down.
   */
  read(): Promise<number>;
  close(): Promise<void>;
}

/** Connects a client that reads the CPU of the database's other backends. Two reads give the CPU between them. */
export async function openDatabaseCpu(databaseUrl: string): Promise<DatabaseCpu> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-cpu' });
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
    close: () => client.end(),
  };
}
