import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SocleError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { SqlConnection } from './backend.js';
import type { Database } from './database.js';
import { quoteIdentifier } from './quote-literal.js';

/** One migration file of a module, as given to the migrator. */
export interface Migration {
  readonly module: string;
  /** Postgres schema the migration runs in (its `search_path`); the module's own. */
  readonly schema: string;
  /** File name, e.g. `0001_create_rooms.sql`. */
  readonly name: string;
  readonly sql: string;
  /** sha256 of the SQL with line endings normalized. */
  readonly checksum: string;
}

/** A migration written inline instead of in a file (tests, generated modules). */
export interface MigrationSource {
  readonly name: string;
  readonly sql: string;
}

const MIGRATION_NAME = /^(\d+)_[a-z0-9_-]+\.sql$/;
/** Session advisory lock held while migrating: "socl" in ASCII. */
const MIGRATION_LOCK_KEY = 0x736f636c;

export const migrationErrors = {
  badName: (module: string, name: string) =>
    new SocleError(
      'migration.bad_name',
      `Migration "${name}" of module "${module}" must be named <number>_<words>.sql, e.g. 0001_create_rooms.sql`,
    ),
  duplicateNumber: (module: string, first: string, second: string) =>
    new SocleError(
      'migration.duplicate_number',
      `Migrations "${first}" and "${second}" of module "${module}" share a number`,
    ),
  unreadable: (module: string, location: string, cause: unknown) =>
    new SocleError('migration.unreadable', `Cannot read migrations of module "${module}" from ${location}`, {
      cause,
    }),
  edited: (migration: Migration, recorded: string) =>
    new SocleError(
      'migration.edited',
      `Migration ${migration.module}/${migration.name} was changed after it was applied ` +
        `(recorded checksum ${recorded.slice(0, 12)}…, file now ${migration.checksum.slice(0, 12)}…). ` +
        'Restore the applied version and put the change in a new migration.',
      { details: { module: migration.module, migration: migration.name } },
    ),
  failed: (migration: Migration, cause: unknown) =>
    new SocleError(
      'migration.failed',
      `Migration ${migration.module}/${migration.name} failed and was rolled back: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause, details: { module: migration.module, migration: migration.name } },
    ),
};

export function checksumOf(sqlText: string): string {
  return createHash('sha256').update(sqlText.replaceAll('\r\n', '\n')).digest('hex');
}

/**
 * Reads a module's migrations from a directory of `.sql` files or from inline sources, validates
 * their names and orders them by number.
 */
export function loadMigrations(
  module: string,
  schema: string,
  source: URL | string | readonly MigrationSource[],
): Migration[] {
  let sources: readonly MigrationSource[];
  if (Array.isArray(source)) {
    sources = source;
  } else {
    const directory = source instanceof URL ? fileURLToPath(source) : (source as string);
    try {
      sources = readdirSync(directory)
        .filter((file) => file.endsWith('.sql'))
        .map((file) => ({ name: file, sql: readFileSync(`${directory}/${file}`, 'utf8') }));
    } catch (error) {
      throw migrationErrors.unreadable(module, directory, error);
    }
  }
  const byNumber = new Map<number, string>();
  const migrations = sources.map((item) => {
    const match = MIGRATION_NAME.exec(item.name);
    if (!match?.[1]) throw migrationErrors.badName(module, item.name);
    const number = Number(match[1]);
    const existing = byNumber.get(number);
    if (existing !== undefined) throw migrationErrors.duplicateNumber(module, existing, item.name);
    byNumber.set(number, item.name);
    return {
      number,
      migration: { module, schema, name: item.name, sql: item.sql, checksum: checksumOf(item.sql) },
    };
  });
  return migrations.sort((a, b) => a.number - b.number).map((item) => item.migration);
}

export type MigrationState = 'applied' | 'pending' | 'edited' | 'unknown';

export interface MigrationStatus {
  readonly module: string;
  readonly name: string;
  readonly state: MigrationState;
  readonly appliedAt: Date | undefined;
}

interface AppliedRow {
  module: string;
  name: string;
  checksum: string;
  applied_at: Date;
}

const BOOKKEEPING = `
  create schema if not exists socle;
  create table if not exists socle.migrations (
    module text not null,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    duration_ms integer not null,
    primary key (module, name)
  );
`;

/**
 * The application role, and the login role's membership in it. Idempotent. Roles are global to a
 * Postgres cluster, so several databases may race to create it: the loser's duplicate error is
 * swallowed. Also run by `socle restore` before the dump's grants name the role.
 */
export function applicationRoleStatement(role: string): string {
  const quoted = quoteIdentifier(role);
  const literal = `'${role.replaceAll("'", "''")}'`;
  return `
    do $$
    begin
      if not exists (select 1 from pg_roles where rolname = ${literal}) then
        create role ${quoted} nologin;
      end if;
    exception when duplicate_object or unique_violation then null;
    end $$;
    do $$
    begin
      -- Superusers may SET ROLE to anything; others need membership (granted once).
      if not pg_has_role(current_user, ${literal}, 'member') then
        execute format('grant %I to %I', ${literal}, current_user);
      end if;
    end $$;
  `;
}

/**
 * The application role and the SQL helpers row-level-security policies use. Idempotent; runs on
 * every migration pass under the migration lock.
 */
function applicationRoleSql(role: string): string {
  const quoted = quoteIdentifier(role);
  return `${applicationRoleStatement(role)}
    create or replace function socle.current_tenant_id() returns uuid language sql stable
      as $fn$ select nullif(current_setting('app.tenant_id', true), '')::uuid $fn$;
    create or replace function socle.current_user_id() returns uuid language sql stable
      as $fn$ select nullif(current_setting('app.user_id', true), '')::uuid $fn$;
    grant usage on schema socle to ${quoted};
    grant select on socle.migrations to ${quoted};
    grant execute on function socle.current_tenant_id(), socle.current_user_id() to ${quoted};
  `;
}

/**
 * A module schema and what the application role may do in it: use it, and read and write the
 * rows of tables created later by migrations (default privileges). A migration narrows this for
 * its own tables where needed, e.g. \`revoke update, delete on events from socle_app\`.
 */
function moduleSchemaSql(schema: string, role: string): string {
  const schemaName = quoteIdentifier(schema);
  const roleName = quoteIdentifier(role);
  return `
    create schema if not exists ${schemaName};
    grant usage on schema ${schemaName} to ${roleName};
    alter default privileges in schema ${schemaName} grant select, insert, update, delete on tables to ${roleName};
    alter default privileges in schema ${schemaName} grant usage, select on sequences to ${roleName};
    alter default privileges in schema ${schemaName} grant execute on functions to ${roleName};
  `;
}

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock: any
 * number of nodes may start together and each migration is applied exactly once. Refuses to run
 * anything when an applied migration was edited.
 */
export async function applyMigrations(
  db: Database,
  migrations: readonly Migration[],
  log: Logger,
  options: { readonly appRole: string },
): Promise<Migration[]> {
  return db.withConnection(async (connection) => {
    // Waiting for another node's migrations, and a migration itself, may outlast the statement
    // timeout of request sessions; RESET in `finally` gives the pooled session its default back.
    await connection.execute('set statement_timeout = 0');
    const { rows } = await connection.query<{ locked: boolean }>(
      'select pg_try_advisory_lock($1) as locked',
      [MIGRATION_LOCK_KEY],
    );
    if (!rows[0]?.locked) {
      log.info('Another node is applying migrations; waiting for it');
      await connection.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    }
    try {
      await connection.execute(BOOKKEEPING);
      await connection.execute(applicationRoleSql(options.appRole));
      const applied = await readApplied(connection);
      const pending: Migration[] = [];
      for (const migration of migrations) {
        const recorded = applied.get(`${migration.module}/${migration.name}`);
        if (recorded === undefined) pending.push(migration);
        else if (recorded.checksum !== migration.checksum)
          throw migrationErrors.edited(migration, recorded.checksum);
      }
      for (const migration of pending) {
        const started = performance.now();
        await connection.execute('begin');
        try {
          await connection.execute(
            `${moduleSchemaSql(migration.schema, options.appRole)} set local search_path to ${quoteIdentifier(migration.schema)}, public;`,
          );
          await connection.execute(migration.sql);
          const durationMs = Math.round(performance.now() - started);
          await connection.query(
            'insert into socle.migrations (module, name, checksum, duration_ms) values ($1, $2, $3, $4)',
            [migration.module, migration.name, migration.checksum, durationMs],
          );
          await connection.execute('commit');
          log.info({ module: migration.module, migration: migration.name, durationMs }, 'Applied migration');
        } catch (error) {
          await connection.execute('rollback').catch(() => undefined);
          throw migrationErrors.failed(migration, error);
        }
      }
      return pending;
    } finally {
      await connection.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      await connection.execute('reset statement_timeout').catch(() => undefined);
    }
  }, 'owner');
}

async function readApplied(connection: SqlConnection): Promise<Map<string, AppliedRow>> {
  const { rows: exists } = await connection.query<{ present: boolean }>(
    "select to_regclass('socle.migrations') is not null as present",
  );
  if (!exists[0]?.present) return new Map();
  const { rows } = await connection.query<AppliedRow>(
    'select module, name, checksum, applied_at from socle.migrations',
  );
  return new Map(rows.map((row) => [`${row.module}/${row.name}`, row]));
}

/** Compares migration files with what the database recorded, without changing anything. */
export async function migrationStatus(
  db: Database,
  migrations: readonly Migration[],
): Promise<MigrationStatus[]> {
  const applied = await db.withConnection(readApplied, 'owner');
  const statuses: MigrationStatus[] = migrations.map((migration) => {
    const recorded = applied.get(`${migration.module}/${migration.name}`);
    applied.delete(`${migration.module}/${migration.name}`);
    return {
      module: migration.module,
      name: migration.name,
      state:
        recorded === undefined ? 'pending' : recorded.checksum === migration.checksum ? 'applied' : 'edited',
      appliedAt: recorded?.applied_at,
    };
  });
  for (const row of applied.values()) {
    statuses.push({ module: row.module, name: row.name, state: 'unknown', appliedAt: row.applied_at });
  }
  return statuses;
}
