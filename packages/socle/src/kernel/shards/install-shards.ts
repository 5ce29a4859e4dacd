import type { Config } from '../config/index.js';
import { applyMigrations, type Database, type Migration, openDatabase } from '../db/index.js';
import { quoteIdentifier, quoteLiteral } from '../db/quote-literal.js';
import type { Logger } from '../log/index.js';
import type { ModuleDefinition } from '../modules/index.js';

/** Schemas of the modules whose tables stay on the primary with SHARDS (`placement: 'primary'`). */
export function primarySchemas(modules: readonly Pick<ModuleDefinition, 'name' | 'placement'>[]): string[] {
  return modules.filter((module) => module.placement === 'primary').map((module) => module.name);
}

/** The directory, on the primary only: which shard holds each tenant that is not on the primary. */
function directorySql(appRole: string): string {
  return `
    create table if not exists socle.tenant_shards (
      tenant_id uuid primary key,
      shard text not null,
      placed_at timestamptz not null default now()
    );
    -- Set in the transaction that deletes the organization; the row goes once its shard's rows have.
    alter table socle.tenant_shards add column if not exists deleted_at timestamptz;
    grant select on socle.tenant_shards to ${quoteIdentifier(appRole)};`;
}

/**
 * What a tenant move needs on every database (the primary and each shard): the tenants frozen
 * there, the function the move's triggers call to refuse their writes, and the markers a move
 * sends through logical replication to know the copy has caught up.
 */
function moveSupportSql(appRole: string): string {
  const role = quoteIdentifier(appRole);
  return `
    create table if not exists socle.frozen_tenants (
      tenant_id uuid primary key,
      since timestamptz not null default now()
    );
    create table if not exists socle.move_markers (
      move_id text primary key,
      tenant_id uuid not null,
      at timestamptz not null default now()
    );
    grant select on socle.frozen_tenants to ${role};
    create or replace function socle.refuse_frozen_tenant() returns trigger
      language plpgsql
      set search_path = pg_catalog, pg_temp
    as $$
    declare
      tenant uuid;
    begin
      if tg_op = 'DELETE' then tenant := old.tenant_id; else tenant := new.tenant_id; end if;
      -- The move's own clean-up of the tenant's rows on its old shard.
      if current_setting('socle.cleaning_tenant', true) = tenant::text then
        return case tg_op when 'DELETE' then old else new end;
      end if;
      if exists (select 1 from socle.frozen_tenants f where f.tenant_id = tenant) then
        raise exception 'tenant % is being moved to another shard, or has moved', tenant
          using errcode = 'SH001';
      end if;
      return case tg_op when 'DELETE' then old else new end;
    end
    $$;
    grant execute on function socle.refuse_frozen_tenant() to ${role};`;
}

/**
 * On a shard, drops the foreign keys from tenant tables to the tables that stay on the primary
 * (organizations, users): those rows are in another database, where no constraint can reach.
 */
function dropForeignKeysToPrimarySql(schemas: readonly string[]): string {
  const list = `array[${schemas.map((schema) => quoteLiteral(schema)).join(', ')}]::text[]`;
  return `
    do $$
    declare
      constraint_row record;
    begin
      for constraint_row in
        select c.conrelid::regclass as owner_table, c.conname
          from pg_constraint c
          join pg_class referenced on referenced.oid = c.confrelid
          join pg_namespace referenced_schema on referenced_schema.oid = referenced.relnamespace
          join pg_class owner on owner.oid = c.conrelid
          join pg_namespace owner_schema on owner_schema.oid = owner.relnamespace
         where c.contype = 'f'
           and referenced_schema.nspname = any(${list})
           and not (owner_schema.nspname = any(${list}))
      loop
        execute format('alter table %s drop constraint %I', constraint_row.owner_table, constraint_row.conname);
      end loop;
    end
    $$;`;
}

export interface InstallShardsOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The primary (`DATABASE_URL`), migrated already. */
  readonly primary: Database;
  readonly migrations: readonly Migration[];
  readonly modules: readonly Pick<ModuleDefinition, 'name' | 'placement'>[];
  /** Installs the job engine's tables on a shard (each shard has its own jobs). */
  readonly installJobs: (db: Database, shardConfig: Config) => Promise<void>;
}

/** The configuration of one shard's own database, as the kernel opens it for migrations and its jobs. */
export function shardConfig(config: Config, url: string): Config {
  return { ...config, databaseUrl: url, databaseReplicaUrls: [], shards: [] };
}

/**
 * With `SHARDS`: the directory on the primary, and on every shard the same migrations as the
 * primary, the job engine's tables, and what a move needs. Idempotent (`socle migrate`, and
 * `MIGRATE_ON_START` on every node).
 */
export async function installShards(options: InstallShardsOptions): Promise<void> {
  const { config, log } = options;
  if (config.shards.length === 0) return;
  await options.primary.withConnection(
    (connection) =>
      connection.execute(`${directorySql(config.databaseAppRole)} ${moveSupportSql(config.databaseAppRole)}`),
    'owner',
  );
  const schemas = primarySchemas(options.modules);
  for (const shard of config.shards) {
    const ownConfig = shardConfig(config, shard.url);
    const db = await openDatabase({
      config: ownConfig,
      log,
      poolMax: 2,
      applicationName: 'socle-migrate',
      outage: false,
    });
    try {
      const applied = await applyMigrations(db, options.migrations, log, { appRole: config.databaseAppRole });
      await options.installJobs(db, ownConfig);
      await db.withConnection(
        (connection) =>
          connection.execute(
            `${moveSupportSql(config.databaseAppRole)} ${schemas.length === 0 ? '' : dropForeignKeysToPrimarySql(schemas)}`,
          ),
        'owner',
      );
      if (applied.length > 0) log.info({ shard: shard.name, applied: applied.length }, 'Shard migrated');
    } finally {
      await db.close();
    }
  }
}
