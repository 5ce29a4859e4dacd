/**
 * CPU time of the Postgres backends serving one database, read from `/proc/<pid>/stat` (the
 * server runs on this machine). On two shared cores the database's CPU per job bounds jobs/s as
 * much as the Node process's does, and it is where a heavier statement shows up.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

export interface DatabaseCpu {
  /** Milliseconds of CPU the database's backends have used so far (those alive now). */
  read(): Promise<number>;
  close(): Promise<void>;
}

async function backendTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return 0;
  // Fields after the command name (which may hold spaces, hence the last ')'): utime is the 14th
  // field of the line, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
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
      let total = 0;
      for (const { pid } of rows) total += await backendTicks(pid);
      return (total * 1000) / CLOCK_TICKS_PER_SECOND;
    },
    close: () => client.end(),
  };
}
