import type { EventEmitter } from 'node:events';
import type { Generated } from 'kysely';
import { defineModule } from '../../src/index.js';
import { createDatabase, type Database } from '../../src/kernel/db/database.js';
import { createPostgresBackend } from '../../src/kernel/db/postgres-backend.js';
import type { TestSocle } from '../../src/testing/index.js';

export interface NotesTables {
  /** `tenant_id` defaults to the current tenant. */
  'notes.notes': { id: number; tenant_id: Generated<string>; body: string };
}

/** A tenant table as every module writes one: RLS enabled, forced, one policy on the tenant. */
export const notesModule = defineModule<NotesTables>({
  name: 'notes',
  migrations: [
    {
      name: '0001_notes.sql',
      sql: `
        create table notes (
          id integer not null,
          tenant_id uuid not null default socle.current_tenant_id(),
          body text not null,
          primary key (tenant_id, id)
        );
        alter table notes enable row level security;
        alter table notes force row level security;
        create policy tenant_isolation on notes
          using (tenant_id = socle.current_tenant_id())
          with check (tenant_id = socle.current_tenant_id());
      `,
    },
  ],
});

/** Writes notes 1..perTenant (`body` = "<tenant> <id>") for each tenant, each in its own scope. */
export async function seedNotes(
  socle: TestSocle,
  tenants: readonly string[],
  perTenant: number,
): Promise<void> {
  for (const tenant of tenants) {
    await socle.scope.run({ tenantId: tenant }, () =>
      socle.db
        .withTables<NotesTables>()
        .kysely.insertInto('notes.notes')
        .values(
          Array.from({ length: perTenant }, (_, index) => ({
            id: index + 1,
            body: `${tenant} ${index + 1}`,
          })),
        )
        .execute(),
    );
  }
}

/**
 * A Socle database on one Postgres session that counts round trips (ReadyForQuery messages
 * received, one per Sync) and row descriptions received (one per described statement).
 */
export async function openRoundTripCountingDatabase(url: string): Promise<{
  db: Database;
  roundTrips: { count: number };
  rowDescriptions: { count: number };
}> {
  const roundTrips = { count: 0 };
  const rowDescriptions = { count: 0 };
  const backend = createPostgresBackend({
    url,
    poolMax: 1,
    connectTimeoutMs: 5000,
    preparedStatements: true,
  });
  backend.pool.on('connect', (client) => {
    const connection = (client as unknown as { connection: EventEmitter }).connection;
    connection.on('readyForQuery', () => {
      roundTrips.count += 1;
    });
    connection.on('rowDescription', () => {
      rowDescriptions.count += 1;
    });
  });
  const db = createDatabase(backend);
  await db.ping();
  return { db, roundTrips, rowDescriptions };
}
