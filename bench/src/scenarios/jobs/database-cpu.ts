/**
 * CPU time of the Postgres backends serving one database, read from `/proc/<pid>/stat` (the
 * server runs on this machine). On two shared cores the database's CPU per job bounds jobs/s as
 * much as the Node process's does, and it is where a heavier statement shows up.
 */
import pg from 'pg';
import { processCpuSeconds } from '../../process-cpu.js';

export interface DatabaseCpu {
  /** Milliseconds of CPU the database's backends have used so far (those alive now). */
  read(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Connects a client that reads the backends' CPU. Two reads give the CPU between them; backends that
 * end between the reads are lost from it (the runners' pools keep theirs for the whole run).
 */
export async function openDatabaseCpu(databaseUrl: string): Promise<DatabaseCpu> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-cpu' });
  await client.connect();
  return {
    async read() {
      const { rows } = await client.query<{ pid: number }>(
        'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      );
      let seconds = 0;
      // A backend that ended since the query counts for nothing.
      for (const { pid } of rows) seconds += (await processCpuSeconds(pid)) ?? 0;
      return seconds * 1000;
    },
    close: () => client.end(),
  };
}
