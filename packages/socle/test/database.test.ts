import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineModule, sql } from '../src/index.js';
import { quoteLiteral } from '../src/kernel/db/quote-literal.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

interface Tables {
  'ledger.entries': { id: number; amount: string; note: string | null };
}

const ledger = defineModule<Tables>({
  name: 'ledger',
  migrations: [
    {
      name: '0001_entries.sql',
      sql: 'create table entries (id integer primary key, amount bigint not null, note text);',
    },
  ],
});

/** Values that would break out of a naively quoted literal. */
const trickyValues = [
  "O'Reilly\\'; drop table x; --",
  "''",
  '\\',
  "\\'",
  'a\\nb\\tc\\x41\\101\\u0041',
  '$$ $tag$ "quoted" ;',
  'ünïcødé 日本 🙂',
  'line\nbreak\ttab',
  '',
];

describe('quoteLiteral', () => {
  it('writes an escape string with quotes and backslashes doubled', () => {
    expect(quoteLiteral('plain')).toBe("E'plain'");
    expect(quoteLiteral("O'Reilly")).toBe("E'O''Reilly'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
    expect(quoteLiteral("\\'")).toBe("E'\\\\'''");
    expect(quoteLiteral('')).toBe("E''");
  });

  it('refuses NUL characters and non-strings', () => {
    expect(() => quoteLiteral('a\0b')).toThrow('NUL');
    expect(() => quoteLiteral(5 as unknown as string)).toThrow('must be a string');
  });
});

describeEachDatabase('Database access', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [ledger], config: { databasePoolMax: 1 } });
  });
  afterAll(() => socle?.dispose());
  const db = () => socle.db.withTables<Tables>();

  it.runIf(target.dialect === 'postgres')(
    'runs its sessions with JIT off (short OLTP statements)',
    async () => {
      const { rows } = await socle.db.withConnection((connection) =>
        connection.query<{ jit: string }>("select current_setting('jit') as jit"),
      );
      expect(rows).toEqual([{ jit: 'off' }]);
    },
  );

  it('sets transaction-local settings for the transaction only', async () => {
    const inside = await db().transaction(
      async (trx) =>
        (
          await sql<{
            tenant: string;
            user: string;
          }>`select current_setting('app.tenant_id', true) as tenant, current_setting('app.user_id', true) as user`.execute(
            trx,
          )
        ).rows[0],
      { settings: { 'app.tenant_id': 'tenant-a', 'app.user_id': 'user-1' } },
    );
    expect(inside).toEqual({ tenant: 'tenant-a', user: 'user-1' });
    const after = await sql<{
      tenant: string | null;
    }>`select nullif(current_setting('app.tenant_id', true), '') as tenant`.execute(db().kysely);
    expect(after.rows[0]?.tenant).toBeNull();
  });

  it('applies the installed context provider to every transaction', async () => {
    socle.db.setTransactionContextProvider(() => ({ 'app.tenant_id': 'from-provider' }));
    try {
      const tenant = await db().transaction(
        async (trx) =>
          (
            await sql<{ tenant: string }>`select current_setting('app.tenant_id', true) as tenant`.execute(
              trx,
            )
          ).rows[0]?.tenant,
      );
      expect(tenant).toBe('from-provider');
    } finally {
      socle.db.setTransactionContextProvider(undefined);
    }
  });

  it('refuses a malformed setting name before touching the database', async () => {
    await expect(
      db().transaction(async () => 1, { settings: { "x'; drop table y; --": '1' } }),
    ).rejects.toThrow('must look like "app.tenant_id"');
  });

  it('round-trips quoted values exactly, whatever standard_conforming_strings says', async () => {
    for (const conforming of ['on', 'off']) {
      const values = await db().transaction(async (trx) => {
        await sql.raw(`set local standard_conforming_strings = ${conforming}`).execute(trx);
        const { rows } = await sql
          .raw<Record<string, string>>(
            `select ${trickyValues.map((v, i) => `${quoteLiteral(v)} as v${i}`).join(', ')}`,
          )
          .execute(trx);
        return Object.values(rows[0] ?? {});
      });
      expect(values).toEqual(trickyValues);
    }
  });

  it('passes setting values with quotes and backslashes through exactly', async () => {
    for (const value of trickyValues) {
      const seen = await db().transaction(
        async (trx) =>
          (
            await sql<{
              tenant: string;
              user: string;
            }>`select current_setting('app.tenant_id') as tenant, current_setting('app.user_id') as user`.execute(
              trx,
            )
          ).rows[0],
        { settings: { 'app.tenant_id': value, 'app.user_id': `${value}!` } },
      );
      expect(seen).toEqual({ tenant: value, user: `${value}!` });
    }
  });

  it('refuses a setting value with a NUL character before touching the database', async () => {
    await expect(db().transaction(async () => 1, { settings: { 'app.tenant_id': 'a\0b' } })).rejects.toThrow(
      'without NUL characters',
    );
  });

  it('sends settings together with the isolation level', async () => {
    const seen = await db().transaction(
      async (trx) =>
        (
          await sql<{
            isolation: string;
            tenant: string;
          }>`select current_setting('transaction_isolation') as isolation, current_setting('app.tenant_id') as tenant`.execute(
            trx,
          )
        ).rows[0],
      { settings: { 'app.tenant_id': 'tenant-s' }, isolation: 'serializable' },
    );
    expect(seen).toEqual({ isolation: 'serializable', tenant: 'tenant-s' });
  });

  it('never swaps settings between 50 concurrent transactions', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        // Every fifth has no settings of its own: it must see none, not a neighbour's.
        const tenant = i % 5 === 4 ? undefined : `tenant-${i}`;
        await sleep(i % 3);
        const seen = await db().transaction(
          async (trx) => {
            await sleep(i % 2);
            return (
              await sql<{
                tenant: string | null;
              }>`select nullif(current_setting('app.tenant_id', true), '') as tenant`.execute(trx)
            ).rows[0]?.tenant;
          },
          tenant === undefined ? {} : { settings: { 'app.tenant_id': tenant, 'app.user_id': `user-${i}` } },
        );
        return { expected: tenant ?? null, seen };
      }),
    );
    for (const { expected, seen } of results) expect(seen).toBe(expected);
  });

  it('rolls back everything when the work throws', async () => {
    await expect(
      db().transaction(async (trx) => {
        await trx.insertInto('ledger.entries').values({ id: 1, amount: '100', note: null }).execute();
        throw new Error('payment provider said no');
      }),
    ).rejects.toThrow('payment provider said no');
    const rows = await db().kysely.selectFrom('ledger.entries').selectAll().execute();
    expect(rows).toEqual([]);
  });

  it('runs after-commit work once the transaction committed, never after a rollback', async () => {
    const seen: string[] = [];
    // What the work sees is committed: a statement of its own (another session) reads the row.
    const committed = await db().transaction(async (trx) => {
      await trx.insertInto('ledger.entries').values({ id: 7, amount: '1', note: 'kept' }).execute();
      await db().afterCommit(trx, async () => {
        const row = await db()
          .kysely.selectFrom('ledger.entries')
          .select('note')
          .where('id', '=', 7)
          .executeTakeFirst();
        seen.push(`after commit: ${row?.note}`);
      });
      await db().afterCommit(trx, async () => {
        throw new Error('a failed push does not fail the committed transaction');
      });
      await db().afterCommit(trx, async () => {
        seen.push('second');
      });
      seen.push('in transaction');
      return 'done';
    });
    expect(committed).toBe('done');
    expect(seen).toEqual(['in transaction', 'after commit: kept', 'second']);

    await expect(
      db().transaction(async (trx) => {
        await db().afterCommit(trx, async () => {
          seen.push('rolled back');
        });
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(seen).not.toContain('rolled back');

    // Outside a transaction the statement committed already: the work runs now. A transaction
    // that ended is refused rather than left waiting forever.
    await db().afterCommit(db().kysely, async () => {
      seen.push('now');
    });
    expect(seen.at(-1)).toBe('now');
    let ended: object | undefined;
    await db().transaction(async (trx) => {
      ended = trx;
    });
    expect(() => db().afterCommit(ended as object, async () => undefined)).toThrow(TypeError);
    await db().kysely.deleteFrom('ledger.entries').execute();
  });

  it('never lets a concurrent caller see or join an open transaction', async () => {
    const seen: number[] = [];
    const writer = db().transaction(async (trx) => {
      await trx.insertInto('ledger.entries').values({ id: 2, amount: '5', note: 'pending' }).execute();
      await sleep(100);
      throw new Error('abort');
    });
    const reader = (async () => {
      await sleep(20);
      const rows = await db().kysely.selectFrom('ledger.entries').select('id').execute();
      seen.push(rows.length);
    })();
    await expect(writer).rejects.toThrow('abort');
    await reader;
    expect(seen).toEqual([0]);
  });

  it('returns the same JavaScript values on PGlite and Postgres', async () => {
    const { rows } = await sql<Record<string, unknown>>`
      select 9007199254740993::int8 as big, 12.50::numeric as money, '2026-03-01'::date as day,
             '2026-03-01T10:00:00Z'::timestamptz as at, '{"a":[1,2]}'::jsonb as doc, true as flag,
             7::int4 as small, array['x','y'] as tags, null::text as nothing`.execute(db().kysely);
    expect(rows[0]).toEqual({
      big: '9007199254740993',
      money: '12.50',
      day: '2026-03-01',
      at: new Date('2026-03-01T10:00:00Z'),
      doc: { a: [1, 2] },
      flag: true,
      small: 7,
      tags: ['x', 'y'],
      nothing: null,
    });
  });

  it('keeps working when a table changes under a prepared statement', async () => {
    await db().kysely.insertInto('ledger.entries').values({ id: 3, amount: '1', note: null }).execute();
    const select = () =>
      sql<Record<string, unknown>>`select * from ledger.entries where id = ${3}`.execute(db().kysely);
    expect(Object.keys((await select()).rows[0] ?? {})).toEqual(['id', 'amount', 'note']);
    // A deploy's migration, run by the owner role while this server keeps its prepared statements.
    await socle.db.withConnection(
      (connection) =>
        connection.execute("alter table ledger.entries add column currency text not null default 'EUR'"),
      'owner',
    );
    expect((await select()).rows[0]).toEqual({ id: 3, amount: '1', note: null, currency: 'EUR' });
    expect((await select()).rows[0]).toMatchObject({ currency: 'EUR' });
  });

  it('runs a prepared query with new values each time, inside or outside a transaction', async () => {
    const findEntry = db().prepare((kysely, params: { id: number; minimum: string }) =>
      kysely
        .selectFrom('ledger.entries')
        .select(['id', 'amount'])
        .where('id', '=', params.id)
        .where('amount', '>=', params.minimum)
        .where('note', 'is not', null),
    );
    expect(findEntry.sql).toMatch(/where "id" = \$1 and "amount" >= \$2 and "note" is not null$/);
    await db()
      .kysely.insertInto('ledger.entries')
      .values([
        { id: 10, amount: '50', note: 'a' },
        { id: 11, amount: '70', note: 'b' },
      ])
      .execute();
    expect(await findEntry.executeTakeFirst({ id: 10, minimum: '1' })).toEqual({ id: 10, amount: '50' });
    expect(await findEntry.executeTakeFirst({ id: 11, minimum: '1' })).toEqual({ id: 11, amount: '70' });
    expect(await findEntry.execute({ id: 11, minimum: '100' })).toEqual([]);
    const inside = await db().transaction(async (trx) => {
      await trx.updateTable('ledger.entries').set({ amount: '999' }).where('id', '=', 10).execute();
      return findEntry.executeTakeFirst({ id: 10, minimum: '1' }, trx);
    });
    expect(inside).toEqual({ id: 10, amount: '999' });
    await expect(findEntry.execute({ id: 10 } as never)).rejects.toThrow(
      'Prepared query parameter "minimum" is missing',
    );
  });
});
