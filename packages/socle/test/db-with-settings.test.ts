import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Generated } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineModule, sql } from '../src/index.js';
import { createDatabase, type Database } from '../src/kernel/db/database.js';
import { createPostgresBackend } from '../src/kernel/db/postgres-backend.js';
import { createTestSocle, type TestDatabase, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase, postgresTarget } from './support/each-database.js';

interface Tables {
  /** `tenant_id` defaults to the current tenant. */
  'ledgers.entries': { id: number; tenant_id: Generated<string>; label: string };
}

/** A tenant table as every module writes one: RLS enabled, forced, one policy on the tenant. */
const ledgers = defineModule<Tables>({
  name: 'ledgers',
  migrations: [
    {
      name: '0001_entries.sql',
      sql: `
        create table entries (
          id integer not null,
          tenant_id uuid not null default socle.current_tenant_id(),
          label text not null,
          primary key (tenant_id, id)
        );
        alter table entries enable row level security;
        alter table entries force row level security;
        create policy tenant_isolation on entries
          using (tenant_id = socle.current_tenant_id())
          with check (tenant_id = socle.current_tenant_id());
      `,
    },
  ],
});

const orgA = randomUUID();
const orgB = randomUUID();

/**
 * `db.withSettings(settings)`: single statements that carry explicit settings (not the scope's)
 * in their own implicit transaction. Pool of one, so every statement reuses the session of the
 * one before and a leaked setting would show.
 */
describeEachDatabase('Single statements with explicit settings (db.withSettings)', (target) => {
  let socle: TestSocle;
  const db = () => socle.db.withTables<Tables>();
  const inOrg = (tenantId: string) => db().withSettings({ 'app.tenant_id': tenantId });
  const labels = async (executor: ReturnType<typeof inOrg>) =>
    (await executor.selectFrom('ledgers.entries').select('label').orderBy('label').execute()).map(
      (row) => row.label,
    );

  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [ledgers], config: { databasePoolMax: 1 } });
    for (const [tenant, name] of [
      [orgA, 'A'],
      [orgB, 'B'],
    ] as const) {
      await db().transaction(
        (trx) =>
          trx
            .insertInto('ledgers.entries')
            .values([
              { id: 1, label: `${name}1` },
              { id: 2, label: `${name}2` },
            ])
            .execute(),
        { settings: { 'app.tenant_id': tenant } },
      );
    }
  });
  afterAll(() => socle?.dispose());

  it("sees only its organization's rows under forced RLS, whatever the ambient scope", async () => {
    expect(await labels(inOrg(orgA))).toEqual(['A1', 'A2']);
    expect(await labels(inOrg(orgB))).toEqual(['B1', 'B2']);
    // The explicit organization wins over the request's.
    const fromScopeB = await socle.scope.run({ tenantId: orgB, userId: randomUUID() }, () =>
      labels(inOrg(orgA)),
    );
    expect(fromScopeB).toEqual(['A1', 'A2']);
    // No tenant at all: zero rows, never another tenant's.
    expect(await labels(db().withSettings({ 'app.user_id': randomUUID() }))).toEqual([]);
  });

  it('keeps the scope settings it does not override, and leaks none to the next statement', async () => {
    const userId = randomUUID();
    const { rows } = await socle.scope.run({ tenantId: orgB, userId }, () =>
      sql<{ tenant: string; user: string }>`
        select current_setting('app.tenant_id', true) as tenant, current_setting('app.user_id', true) as user`.execute(
        inOrg(orgA),
      ),
    );
    expect(rows).toEqual([{ tenant: orgA, user: userId }]);
    const after = await sql<{ tenant: string | null }>`
      select nullif(current_setting('app.tenant_id', true), '') as tenant`.execute(db().kysely);
    expect(after.rows).toEqual([{ tenant: null }]);
    expect(await labels(db().kysely)).toEqual([]);
  });

  it("writes in its organization only: another organization's rows are out of reach", async () => {
    await inOrg(orgA).insertInto('ledgers.entries').values({ id: 3, label: 'A3' }).execute();
    await expect(
      inOrg(orgA)
        .insertInto('ledgers.entries')
        .values({ id: 4, tenant_id: orgB, label: 'smuggled' })
        .execute(),
    ).rejects.toThrow(/row-level security/);
    const updated = await inOrg(orgA)
      .updateTable('ledgers.entries')
      .set({ label: 'overwritten' })
      .where('label', 'like', 'B%')
      .executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(0n);
    expect(await labels(inOrg(orgA))).toEqual(['A1', 'A2', 'A3']);
    expect(await labels(inOrg(orgB))).toEqual(['B1', 'B2']);
  });

  it('carries the settings to a prepared query run through it', async () => {
    const byId = db().prepare((kysely, params: { id: number }) =>
      kysely.selectFrom('ledgers.entries').select('label').where('id', '=', params.id),
    );
    expect(await byId.execute({ id: 1 }, inOrg(orgB))).toEqual([{ label: 'B1' }]);
    expect(await byId.execute({ id: 1 })).toEqual([]);
  });

  it('refuses a bad setting name where it is written, and a transaction opened on it', async () => {
    expect(() => db().withSettings({ 'tenant id': orgA })).toThrow(/must look like "app.tenant_id"/);
    await expect(
      inOrg(orgA)
        .transaction()
        .execute(async () => undefined),
    ).rejects.toThrow(/db\.transaction\(work, \{ settings \}\)/);
    // The refused transaction left the one pooled session usable.
    expect(await labels(inOrg(orgA))).toEqual(['A1', 'A2', 'A3']);
  });
});

describe.skipIf(!postgresTarget.available)(
  `Round trips of db.withSettings [postgres${postgresTarget.available ? '' : `: ${postgresTarget.reason}`}]`,
  () => {
    let database: TestDatabase;
    let db: Database;
    /** ReadyForQuery messages received: one per Sync, so one per round trip. */
    let roundTrips = 0;

    beforeAll(async () => {
      database = await postgresTarget.create();
      const backend = createPostgresBackend({
        url: database.url as string,
        poolMax: 1,
        connectTimeoutMs: 5000,
        preparedStatements: true,
      });
      backend.pool.on('connect', (client) => {
        (client as unknown as { connection: EventEmitter }).connection.on('readyForQuery', () => {
          roundTrips += 1;
        });
      });
      db = createDatabase(backend);
      await db.ping();
    });
    afterAll(async () => {
      await db?.close();
      await database?.drop();
    });

    it('costs one round trip for a statement with parameters, and one without', async () => {
      const tenantOf = () =>
        sql<{
          tenant: string;
        }>`select current_setting('app.tenant_id', true) as tenant where ${1} = 1`.execute(
          db.withSettings({ 'app.tenant_id': orgA }),
        );
      await tenantOf(); // parses the named statements once
      roundTrips = 0;
      expect((await tenantOf()).rows).toEqual([{ tenant: orgA }]);
      expect(roundTrips).toBe(1);
      roundTrips = 0;
      const { rows } = await sql<{
        tenant: string;
      }>`select current_setting('app.tenant_id', true) as tenant`.execute(
        db.withSettings({ 'app.tenant_id': orgB }),
      );
      expect(rows).toEqual([{ tenant: orgB }]);
      expect(roundTrips).toBe(1);
    });
  },
);
