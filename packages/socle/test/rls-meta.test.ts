import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFilesModule, defineModule } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, findTenantIsolationProblems, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

describeEachDatabase('Row-level security on every table of every module', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    // With the opt-in modules too: their tables follow the same rule.
    socle = await createTestSocle(target, { modules: [...createBuiltInModules(), createFilesModule()] });
  });
  afterAll(() => socle?.dispose());

  it('finds RLS enabled, forced and with a policy on every built-in table not declared global', async () => {
    expect(await findTenantIsolationProblems(socle.db, socle.modules)).toEqual([]);
  });

  it('flags a table without RLS, one not forced, and a stale global declaration', async () => {
    const careless = defineModule({
      name: 'careless',
      globalTables: { removed_long_ago: 'used to hold deployment-wide settings' },
      migrations: [
        {
          name: '0001_tables.sql',
          sql: `
            create table notes (id int primary key, tenant_id uuid not null);
            create table half (id int primary key, tenant_id uuid not null);
            alter table half enable row level security;
            create policy p on half using (tenant_id = socle.current_tenant_id());
          `,
        },
      ],
    });
    const other = await createTestSocle(target, { modules: [careless] });
    try {
      expect(await findTenantIsolationProblems(other.db, other.modules)).toEqual([
        { table: 'careless.half', problem: 'row level security is not forced (the owner would bypass it)' },
        {
          table: 'careless.notes',
          problem:
            'row level security is not enabled; row level security is not forced (the owner would bypass it); has no policy',
        },
        { table: 'careless.removed_long_ago', problem: 'is declared global but does not exist' },
      ]);
    } finally {
      await other.dispose();
    }
  });
});
