import { afterEach, expect, it } from 'vitest';
import { defineModule, type MigrationSource, sql } from '../src/index.js';
import { applyMigrations, migrationStatus } from '../src/kernel/db/index.js';
import { collectMigrations } from '../src/kernel/socle.js';
import {
  createTestSocle,
  type TestDatabase,
  type TestSocle,
  type TestSocleOptions,
} from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const catalog = (migrations: MigrationSource[]) => defineModule({ name: 'catalog', migrations });
const orders = defineModule({
  name: 'orders',
  dependsOn: ['catalog'],
  migrations: [
    {
      name: '0001_orders.sql',
      sql: 'create table orders (id integer primary key, product_id integer not null references catalog.products (id));',
    },
  ],
});
const V1: MigrationSource[] = [
  { name: '0001_products.sql', sql: 'create table products (id integer primary key, name text not null);' },
  { name: '0002_seed.sql', sql: "insert into products values (1, 'tea'), (2, 'coffee');" },
];

async function count(socle: TestSocle, query: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*) as n from ${sql.raw(query)}`.execute(
    socle.db.kysely,
  );
  return Number(rows[0]?.n);
}

describeEachDatabase('Migrations', (target) => {
  const open: TestSocle[] = [];
  let database: TestDatabase | undefined;
  afterEach(async () => {
    for (const socle of open.splice(0)) await socle.close();
    await database?.drop();
    database = undefined;
  });
  async function start(modules: TestSocleOptions['modules']) {
    database ??= await target.create();
    const socle = await createTestSocle(target, { modules, database });
    open.push(socle);
    return socle;
  }

  it('applies each module in its own schema, dependencies first, and records checksums', async () => {
    const socle = await start([orders, catalog(V1)]);
    expect(await count(socle, 'catalog.products')).toBe(2);
    await sql`insert into orders.orders values (1, 2)`.execute(socle.db.kysely);
    const { rows } = await sql<{ module: string; name: string; checksum: string }>`
      select module, name, checksum from socle.migrations order by applied_at, module, name`.execute(
      socle.db.kysely,
    );
    expect(rows.map((row) => `${row.module}/${row.name}`)).toEqual([
      'catalog/0001_products.sql',
      'catalog/0002_seed.sql',
      'orders/0001_orders.sql',
    ]);
    expect(rows.every((row) => /^[0-9a-f]{64}$/.test(row.checksum))).toBe(true);
  });

  it('applies nothing twice when started again, and only the new migration', async () => {
    await (await start([catalog(V1)])).close();
    const socle = await start([
      catalog([...V1, { name: '0003_more.sql', sql: "insert into products values (3, 'mate');" }]),
    ]);
    expect(await count(socle, 'catalog.products')).toBe(3);
    expect(await count(socle, 'socle.migrations')).toBe(3);
  });

  it('refuses to start when an applied migration was edited, naming the file, and applies nothing', async () => {
    await (await start([catalog(V1)])).close();
    const edited = catalog([
      V1[0] as MigrationSource,
      { name: '0002_seed.sql', sql: "insert into products values (1, 'green tea'), (2, 'coffee');" },
      { name: '0003_more.sql', sql: "insert into products values (3, 'mate');" },
    ]);
    await expect(start([edited])).rejects.toMatchObject({
      code: 'migration.edited',
      message: expect.stringContaining('catalog/0002_seed.sql was changed after it was applied'),
    });
    const socle = await start([catalog(V1)]);
    expect(await count(socle, 'socle.migrations')).toBe(2);
    expect(await count(socle, 'catalog.products')).toBe(2);
  });

  it('rolls back a failing migration entirely and applies it once fixed', async () => {
    const broken = catalog([
      ...V1,
      {
        name: '0003_prices.sql',
        sql: 'create table prices (id integer primary key); insert into nowhere values (1);',
      },
    ]);
    await expect(start([broken])).rejects.toMatchObject({
      code: 'migration.failed',
      message: expect.stringMatching(/catalog\/0003_prices\.sql failed and was rolled back: .*nowhere/),
    });
    const fixed = catalog([
      ...V1,
      { name: '0003_prices.sql', sql: 'create table prices (id integer primary key);' },
    ]);
    const socle = await start([fixed]);
    // 0001 and 0002 were committed before 0003 failed; 0003's table did not survive the failure.
    expect(await count(socle, 'socle.migrations')).toBe(3);
    expect(await count(socle, 'catalog.prices')).toBe(0);
  });

  it('reports status: applied, pending, edited and unknown', async () => {
    const socle = await start([catalog(V1)]);
    const next = collectMigrations([
      catalog([
        V1[0] as MigrationSource,
        { name: '0002_seed.sql', sql: 'select 1;' },
        { name: '0004_new.sql', sql: 'select 1;' },
      ]),
    ]);
    await socle.db.withConnection(
      (connection) =>
        connection.execute(
          "insert into socle.migrations (module, name, checksum, duration_ms) values ('gone', '0001_x.sql', 'x', 0)",
        ),
      'owner',
    );
    const statuses = await migrationStatus(socle.db, next);
    expect(statuses.map((status) => `${status.state} ${status.module}/${status.name}`)).toEqual([
      'applied catalog/0001_products.sql',
      'edited catalog/0002_seed.sql',
      'pending catalog/0004_new.sql',
      'unknown gone/0001_x.sql',
    ]);
  });

  it('applies each migration exactly once when several starters race', async () => {
    // Not idempotent on purpose: a second run of 0001 would fail, a second run of 0002 would double the rows.
    const module = catalog([
      {
        name: '0001_products.sql',
        sql: 'create table products (id integer primary key, name text not null);',
      },
      {
        name: '0002_seed.sql',
        sql: "insert into products select g, 'p' || g from generate_series(1, 100) g;",
      },
    ]);
    const starters = 5;
    if (target.dialect === 'postgres') {
      // Separate servers, each with its own pool, on one database: a fleet starting together.
      database = await target.create();
      const nodes = await Promise.all(Array.from({ length: starters }, () => start([module])));
      expect(await count(nodes[0] as TestSocle, 'catalog.products')).toBe(100);
    } else {
      // One embedded database serves one process; racing migrators inside it must still be safe.
      const socle = await start([]);
      const migrations = collectMigrations([module]);
      await Promise.all(
        Array.from({ length: starters }, () =>
          applyMigrations(socle.db, migrations, socle.log, { appRole: socle.config.databaseAppRole }),
        ),
      );
      expect(await count(socle, 'catalog.products')).toBe(100);
    }
    const socle = open[0] as TestSocle;
    expect(await count(socle, 'socle.migrations')).toBe(2);
  });
});
