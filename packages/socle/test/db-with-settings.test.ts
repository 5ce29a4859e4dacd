import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { type NotesTables, notesModule } from './support/tenant-notes.js';

const orgA = randomUUID();
const orgB = randomUUID();

/**
 * `db.withSettings(settings)` (its round trips are counted in scoped-statements.test.ts): single statements that carry explicit settings (not the scope's)
 * in their own implicit transaction. Pool of one, so every statement reuses the session of the
 * one before and a leaked setting would show.
 */
describeEachDatabase('Single statements with explicit settings (db.withSettings)', (target) => {
  let socle: TestSocle;
  const db = () => socle.db.withTables<NotesTables>();
  const inOrg = (tenantId: string) => db().withSettings({ 'app.tenant_id': tenantId });
  const bodies = async (executor: ReturnType<typeof inOrg>) =>
    (await executor.selectFrom('notes.notes').select('body').orderBy('body').execute()).map(
      (row) => row.body,
    );

  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [notesModule], config: { databasePoolMax: 1 } });
    for (const [tenant, name] of [
      [orgA, 'A'],
      [orgB, 'B'],
    ] as const) {
      await db().transaction(
        (trx) =>
          trx
            .insertInto('notes.notes')
            .values([
              { id: 1, body: `${name}1` },
              { id: 2, body: `${name}2` },
            ])
            .execute(),
        { settings: { 'app.tenant_id': tenant } },
      );
    }
  });
  afterAll(() => socle?.dispose());

  it("sees only its organization's rows under forced RLS, whatever the ambient scope", async () => {
    expect(await bodies(inOrg(orgA))).toEqual(['A1', 'A2']);
    expect(await bodies(inOrg(orgB))).toEqual(['B1', 'B2']);
    // The explicit organization wins over the request's.
    const fromScopeB = await socle.scope.run({ tenantId: orgB, userId: randomUUID() }, () =>
      bodies(inOrg(orgA)),
    );
    expect(fromScopeB).toEqual(['A1', 'A2']);
    // No tenant at all: zero rows, never another tenant's.
    expect(await bodies(db().withSettings({ 'app.user_id': randomUUID() }))).toEqual([]);
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
    expect(await bodies(db().kysely)).toEqual([]);
  });

  it("writes in its organization only: another organization's rows are out of reach", async () => {
    await inOrg(orgA).insertInto('notes.notes').values({ id: 3, body: 'A3' }).execute();
    await expect(
      inOrg(orgA).insertInto('notes.notes').values({ id: 4, tenant_id: orgB, body: 'smuggled' }).execute(),
    ).rejects.toThrow(/row-level security/);
    const updated = await inOrg(orgA)
      .updateTable('notes.notes')
      .set({ body: 'overwritten' })
      .where('body', 'like', 'B%')
      .executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(0n);
    expect(await bodies(inOrg(orgA))).toEqual(['A1', 'A2', 'A3']);
    expect(await bodies(inOrg(orgB))).toEqual(['B1', 'B2']);
  });

  it('carries the settings to a prepared query run through it', async () => {
    const byId = db().prepare((kysely, params: { id: number }) =>
      kysely.selectFrom('notes.notes').select('body').where('id', '=', params.id),
    );
    expect(await byId.execute({ id: 1 }, inOrg(orgB))).toEqual([{ body: 'B1' }]);
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
    expect(await bodies(inOrg(orgA))).toEqual(['A1', 'A2', 'A3']);
  });
});
