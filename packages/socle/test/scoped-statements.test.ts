import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import type { Database } from '../src/kernel/db/database.js';
import { createTestSocle, type TestDatabase, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase, postgresTarget } from './support/each-database.js';
import {
  type NotesTables,
  notesModule,
  openRoundTripCountingDatabase,
  seedNotes,
} from './support/tenant-notes.js';

const tenants = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
const NOTES_PER_TENANT = 20;

/**
 * Statements run outside a transaction while a scope is current carry its tenant in their own
 * implicit transaction (one round trip on Postgres). Pool of one so every statement reuses the
 * session of the one before.
 */
describeEachDatabase('Single statements in a tenant scope', (target) => {
  let socle: TestSocle;
  const db = () => socle.db.withTables<NotesTables>();
  const asTenant = <T>(tenantId: string, work: () => Promise<T>) =>
    socle.scope.run({ tenantId, userId: randomUUID() }, work);
  const currentSettings = () =>
    sql<{
      tenant: string | null;
      user: string | null;
    }>`select nullif(current_setting('app.tenant_id', true), '') as tenant, nullif(current_setting('app.user_id', true), '') as user`.execute(
      db().kysely,
    );

  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [notesModule], config: { databasePoolMax: 1 } });
    await seedNotes(socle, tenants, NOTES_PER_TENANT);
  });
  afterAll(() => socle?.dispose());

  it("sees only the current tenant's rows under forced RLS, without a transaction", async () => {
    const [tenantA, tenantB] = tenants as [string, string];
    const rowsA = await asTenant(tenantA, () =>
      db().kysely.selectFrom('notes.notes').select(['tenant_id', 'id']).execute(),
    );
    expect(rowsA).toHaveLength(NOTES_PER_TENANT);
    expect(new Set(rowsA.map((row) => row.tenant_id))).toEqual(new Set([tenantA]));
    const findNote = db().prepare((kysely, params: { id: number }) =>
      kysely.selectFrom('notes.notes').select(['tenant_id', 'body']).where('id', '=', params.id),
    );
    expect(await asTenant(tenantB, () => findNote.execute({ id: 7 }))).toEqual([
      { tenant_id: tenantB, body: `${tenantB} 7` },
    ]);
    // Zero-parameter statements go another way on Postgres (simple protocol): same result.
    const count = await asTenant(tenantB, () =>
      sql<{ count: string }>`select count(*) as count from notes.notes`.execute(db().kysely),
    );
    expect(count.rows[0]?.count).toBe(String(NOTES_PER_TENANT));
  });

  it('does not leak the settings to the next statement on the same session', async () => {
    const inScope = await asTenant(tenants[0] as string, () => currentSettings());
    expect(inScope.rows[0]?.tenant).toBe(tenants[0]);
    expect(inScope.rows[0]?.user).not.toBeNull();
    // Pool of one: the same session, now without a scope.
    expect((await currentSettings()).rows[0]).toEqual({ tenant: null, user: null });
    expect(await db().kysely.selectFrom('notes.notes').selectAll().execute()).toEqual([]);
  });

  it('writes into the current tenant only, and refuses a row for another tenant', async () => {
    const [tenantA, tenantB] = tenants as [string, string];
    await asTenant(tenantA, () =>
      db().kysely.insertInto('notes.notes').values({ id: 100, body: 'written alone' }).execute(),
    );
    await expect(
      asTenant(tenantA, () =>
        db()
          .kysely.insertInto('notes.notes')
          .values({ id: 101, tenant_id: tenantB, body: 'smuggled' })
          .execute(),
      ),
    ).rejects.toThrow(/row-level security/);
    const written = await asTenant(tenantA, () =>
      db().kysely.selectFrom('notes.notes').select('tenant_id').where('id', '>=', 100).execute(),
    );
    expect(written).toEqual([{ tenant_id: tenantA }]);
    expect(
      await asTenant(tenantB, () =>
        db().kysely.selectFrom('notes.notes').select('id').where('id', '>=', 100).execute(),
      ),
    ).toEqual([]);
  });

  it('leaves the session usable and nothing half-applied when the statement fails', async () => {
    const tenant = tenants[2] as string;
    // Two rows, the second a duplicate key: the statement fails as a whole.
    await expect(
      asTenant(tenant, () =>
        db()
          .kysely.insertInto('notes.notes')
          .values([
            { id: 200, body: 'first' },
            { id: 1, body: 'duplicate' },
          ])
          .execute(),
      ),
    ).rejects.toThrow(/duplicate key/);
    await expect(
      asTenant(tenant, () => sql`select ${'not a number'}::integer`.execute(db().kysely)),
    ).rejects.toThrow(/invalid input syntax/);
    await expect(
      asTenant(tenant, () => sql`select * from notes.missing`.execute(db().kysely)),
    ).rejects.toThrow(/does not exist/);
    // The same session, right after: no aborted transaction, no settings, no row 200.
    expect((await currentSettings()).rows[0]).toEqual({ tenant: null, user: null });
    expect(
      await asTenant(tenant, () =>
        db().kysely.selectFrom('notes.notes').select('id').where('id', '=', 200).execute(),
      ),
    ).toEqual([]);
    expect(
      await asTenant(tenant, () =>
        db().kysely.selectFrom('notes.notes').select('id').where('id', '=', 1).execute(),
      ),
    ).toEqual([{ id: 1 }]);
  });

  it('recovers a prepared statement after DDL changed its table', async () => {
    const tenant = tenants[3] as string;
    const select = () =>
      asTenant(tenant, () =>
        sql<Record<string, unknown>>`select * from notes.notes where id = ${3}`.execute(db().kysely),
      );
    expect(Object.keys((await select()).rows[0] ?? {})).toEqual(['id', 'tenant_id', 'body']);
    await socle.db.withConnection(
      (connection) =>
        connection.execute("alter table notes.notes add column color text not null default 'red'"),
      'owner',
    );
    expect((await select()).rows[0]).toEqual({ id: 3, tenant_id: tenant, body: `${tenant} 3`, color: 'red' });
    expect((await select()).rows[0]).toMatchObject({ color: 'red' });
  });

  it('runs a statement inside a transaction with the transaction settings only', async () => {
    const tenant = tenants[1] as string;
    const rows = await asTenant(tenant, () =>
      db().transaction(async (trx) => {
        await trx.insertInto('notes.notes').values({ id: 300, body: 'in transaction' }).execute();
        return trx.selectFrom('notes.notes').select('tenant_id').where('id', '=', 300).execute();
      }),
    );
    expect(rows).toEqual([{ tenant_id: tenant }]);
  });
});

describeEachDatabase('Single statements of interleaved tenants on a small pool', (target) => {
  let socle: TestSocle;
  const db = () => socle.db.withTables<NotesTables>();

  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [notesModule], config: { databasePoolMax: 2 } });
    await seedNotes(socle, tenants, NOTES_PER_TENANT);
  });
  afterAll(() => socle?.dispose());

  it("never returns another tenant's row", async () => {
    const findNote = db().prepare((kysely, params: { id: number }) =>
      kysely.selectFrom('notes.notes').select(['tenant_id', 'body']).where('id', '=', params.id),
    );
    const reads = Array.from({ length: 200 }, async (_, index) => {
      const tenant = tenants[index % tenants.length] as string;
      const id = (index % NOTES_PER_TENANT) + 1;
      const rows = await socle.scope.run({ tenantId: tenant }, async () =>
        // Mix prepared, builder and failing statements on the same sessions.
        index % 7 === 0
          ? sql`select * from notes.missing`.execute(db().kysely).then(
              () => [],
              () => findNote.execute({ id }),
            )
          : index % 2 === 0
            ? findNote.execute({ id })
            : db()
                .kysely.selectFrom('notes.notes')
                .select(['tenant_id', 'body'])
                .where('id', '=', id)
                .execute(),
      );
      return { tenant, id, rows };
    });
    for (const { tenant, id, rows } of await Promise.all(reads)) {
      expect(rows).toEqual([{ tenant_id: tenant, body: `${tenant} ${id}` }]);
    }
  });
});

describe.skipIf(!postgresTarget.available)(
  `Round trips of a scoped statement [postgres${postgresTarget.available ? '' : `: ${postgresTarget.reason}`}]`,
  () => {
    let database: TestDatabase;
    let db: Database;
    /** ReadyForQuery messages received: one per Sync, so one per round trip. */
    let roundTrips: { count: number };
    let rowDescriptions: { count: number };

    beforeAll(async () => {
      database = await postgresTarget.create();
      ({ db, roundTrips, rowDescriptions } = await openRoundTripCountingDatabase(database.url as string));
      db.setTransactionContextProvider(() => ({ 'app.tenant_id': tenants[0] as string }));
    });
    afterAll(async () => {
      await db?.close();
      await database?.drop();
    });

    const tenantOf = () =>
      sql<{ tenant: string }>`select current_setting('app.tenant_id', true) as tenant where ${1} = 1`.execute(
        db.kysely,
      );

    it('costs one round trip outside a transaction, two in one (BEGIN goes with its first statement)', async () => {
      await tenantOf(); // parses the named statements once
      roundTrips.count = 0;
      expect((await tenantOf()).rows).toEqual([{ tenant: tenants[0] }]);
      expect(roundTrips.count).toBe(1);
      roundTrips.count = 0;
      const [withParameters, without, explicit] = await Promise.all([
        db.transaction((trx) =>
          sql<{
            tenant: string;
          }>`select current_setting('app.tenant_id', true) as tenant where ${1} = 1`.execute(trx),
        ),
        db.transaction((trx) =>
          sql<{ tenant: string }>`select current_setting('app.tenant_id', true) as tenant`.execute(trx),
        ),
        db.transaction(
          (trx) =>
            sql<{
              tenant: string;
            }>`select current_setting('app.tenant_id', true) as tenant where ${1} = 1`.execute(trx),
          { settings: { 'app.tenant_id': tenants[1] as string } },
        ),
      ]);
      expect(roundTrips.count).toBe(6);
      // The settings reached the first statement, with parameters or without (simple protocol).
      expect([withParameters.rows, without.rows, explicit.rows]).toEqual([
        [{ tenant: tenants[0] }],
        [{ tenant: tenants[0] }],
        [{ tenant: tenants[1] }],
      ]);
    });

    it('keeps the transaction open after its first statement, and rolls all of it back on failure', async () => {
      await db.withConnection(
        (connection) => connection.execute('create table pipelined (n int primary key)'),
        'owner',
      );
      const insert = (trx: Parameters<Parameters<Database['transaction']>[0]>[0], n: number) =>
        sql`insert into pipelined (n) values (${n})`.execute(trx);
      await db.transaction(async (trx) => {
        await insert(trx, 1);
        // Still in the transaction the first statement opened: the same transaction id.
        const ids = await sql<{ id: string }>`select txid_current()::text as id where ${1} = 1`.execute(trx);
        const again = await sql<{ id: string }>`select txid_current()::text as id where ${2} = 2`.execute(
          trx,
        );
        expect(ids.rows).toEqual(again.rows);
      });
      // The first statement fails (duplicate key): nothing of the transaction stays.
      await expect(db.transaction((trx) => insert(trx, 1))).rejects.toThrow(/duplicate key/);
      // A later statement fails: the first one's row is rolled back with it.
      await expect(
        db.transaction(async (trx) => {
          await insert(trx, 2);
          await insert(trx, 1);
        }),
      ).rejects.toThrow(/duplicate key/);
      // Pool of one: the session is usable, not left in a transaction.
      const rows = await db.transaction((trx) =>
        sql<{ n: number }>`select n from pipelined where ${0} < n order by n`.execute(trx),
      );
      expect(rows.rows).toEqual([{ n: 1 }]);
    });

    it('sends nothing for a transaction that runs no statement, whether it commits or throws', async () => {
      roundTrips.count = 0;
      expect(await db.transaction(async () => 'nothing')).toBe('nothing');
      await expect(
        db.transaction(async () => {
          throw new Error('refused before any statement');
        }),
      ).rejects.toThrow('refused before any statement');
      expect(roundTrips.count).toBe(0);
      expect((await tenantOf()).rows).toEqual([{ tenant: tenants[0] }]);
    });

    it('costs one round trip with explicit settings (db.withSettings), with parameters or without', async () => {
      // Over the provider's tenants[0]: the explicit settings win.
      const [, first, second] = tenants as [string, string, string];
      const tenantOf = () =>
        sql<{
          tenant: string;
        }>`select current_setting('app.tenant_id', true) as tenant where ${1} = 1`.execute(
          db.withSettings({ 'app.tenant_id': first }),
        );
      await tenantOf(); // parses the named statements once
      roundTrips.count = 0;
      expect((await tenantOf()).rows).toEqual([{ tenant: first }]);
      expect(roundTrips.count).toBe(1);
      roundTrips.count = 0;
      const { rows } = await sql<{
        tenant: string;
      }>`select current_setting('app.tenant_id', true) as tenant`.execute(
        db.withSettings({ 'app.tenant_id': second }),
      );
      expect(rows).toEqual([{ tenant: second }]);
      expect(roundTrips.count).toBe(1);
    });

    it('describes a prepared statement once per session, and still parses every column', async () => {
      const typed = () =>
        sql<{ tenant: string; count: number; at: Date; nothing: string | null; yes: boolean }>`
          select current_setting('app.tenant_id', true) as tenant, ${41}::int + 1 as count,
            timestamptz '2026-01-02 03:04:05+00' as at, null::text as nothing, true as yes`.execute(
          db.kysely,
        );
      const expected = {
        tenant: tenants[0],
        count: 42,
        at: new Date('2026-01-02T03:04:05Z'),
        nothing: null,
        yes: true,
      };
      expect((await typed()).rows).toEqual([expected]);
      rowDescriptions.count = 0;
      roundTrips.count = 0;
      expect((await typed()).rows).toEqual([expected]);
      expect((await typed()).rows).toEqual([expected]);
      expect({ rowDescriptions: rowDescriptions.count, roundTrips: roundTrips.count }).toEqual({
        rowDescriptions: 0,
        roundTrips: 2,
      });
    });

    it('reports affected rows of a repeated statement without result columns', async () => {
      await db.withConnection((connection) => connection.execute('create table counted (n int)'), 'owner');
      const insert = (n: number) =>
        db.kysely
          .insertInto('counted' as never)
          .values({ n } as never)
          .executeTakeFirst();
      for (const n of [1, 2, 3]) expect((await insert(n)).numInsertedOrUpdatedRows).toBe(1n);
      const update = () =>
        db.kysely
          .updateTable('counted' as never)
          .set({ n: 0 } as never)
          .where('n' as never, '>=', 0 as never)
          .executeTakeFirst();
      expect((await update()).numUpdatedRows).toBe(3n);
      expect((await update()).numUpdatedRows).toBe(3n);
    });
  },
);
