import type { ConstructorOptions, PgBoss } from 'pg-boss';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import { quoteIdentifier } from '../db/quote-literal.js';
import type { Logger } from '../log/index.js';
import { embeddedEngineDatabase } from './engine-database.js';
import { JOB_QUEUES } from './job-definition.js';
import { EFFECTS_TABLE_SQL, JOBS_SCHEMA } from './jobs.store.js';

/** Session advisory lock held while installing the engine on Postgres: "sjob" in ASCII. */
const INSTALL_LOCK_KEY = 0x736a6f62;

/** The pg-boss options every engine instance shares. */
export const COMMON_BOSS_OPTIONS = {
  schema: JOBS_SCHEMA,
  openTelemetry: { enabled: false },
} as const;

/** A pg-boss instance, loaded on first use: a process without jobs (most CLI commands) never pays for the import. */
export async function newBoss(bossOptions: ConstructorOptions): Promise<PgBoss> {
  const { PgBoss: Boss } = await import('pg-boss');
  return new Boss(bossOptions);
}

/**
 * Installs or upgrades the engine as the owner role: pg-boss's tables and queues, the effects
 * table, and the app role's grants. On Postgres, nodes starting together install one at a time.
 */
export async function installJobEngine(options: {
  readonly db: Database;
  readonly config: Config;
  readonly log: Logger;
}): Promise<void> {
  const { db, config, log } = options;
  const isEmbedded = config.databaseUrl === undefined;

  async function installEngine() {
    const installer = await newBoss({
      ...COMMON_BOSS_OPTIONS,
      ...(isEmbedded
        ? { db: embeddedEngineDatabase(db, 'owner'), backend: 'pglite' as const }
        : { connectionString: config.databaseUrl, max: 2, application_name: 'socle-jobs-install' }),
      migrate: true,
      supervise: false,
      schedule: false,
      registerInstance: false,
    });
    installer.on('error', (error) => log.warn({ err: error }, 'Job engine installer reported an error'));
    await installer.start();
    try {
      for (const queue of JOB_QUEUES) {
        if ((await installer.getQueue(queue)) === null) await installer.createQueue(queue, { notify: true });
      }
      const role = quoteIdentifier(config.databaseAppRole);
      const grants = `
        ${EFFECTS_TABLE_SQL}
        grant usage on schema ${JOBS_SCHEMA} to ${role};
        grant select, insert, update, delete on all tables in schema ${JOBS_SCHEMA} to ${role};
        grant usage, select on all sequences in schema ${JOBS_SCHEMA} to ${role};
        grant execute on all functions in schema ${JOBS_SCHEMA} to ${role};
        alter default privileges in schema ${JOBS_SCHEMA} grant select, insert, update, delete on tables to ${role};`;
      await installer.getDb().executeSql(grants);
    } finally {
      await installer.stop({ graceful: false, close: true });
    }
  }

  // In process there is one session (and the installer takes it): nothing else can race.
  if (isEmbedded) return installEngine();
  // Nodes starting together on Postgres install one at a time: CREATE TABLE IF NOT EXISTS and
  // GRANT are not safe concurrently (a fleet's second worker failed its start on
  // pg_type_typname_nsp_index). The lock is held on a server session while the installer's own
  // pool does the work.
  await db.withConnection(async (connection) => {
    await connection.query('select pg_advisory_lock($1)', [INSTALL_LOCK_KEY]);
    try {
      await installEngine();
    } finally {
      await connection.query('select pg_advisory_unlock($1)', [INSTALL_LOCK_KEY]).catch(() => undefined);
    }
  }, 'owner');
}
