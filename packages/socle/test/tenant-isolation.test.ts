import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineModule, sql } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

interface Tables {
  'crm.clients': { id: string; tenant_id: string; name: string };
}

/** A tenant table written the way every Socle module writes one. */
const crm = defineModule<Tables>({
  name: 'crm',
  migrations: [
    {
      name: '0001_clients.sql',
      sql: `
        create table clients (
          id uuid primary key,
          tenant_id uuid not null default socle.current_tenant_id(),
          name text not null
        );
        alter table clients enable row level security;
        alter table clients force row level security;
        create policy tenant_isolation on clients
          using (tenant_id = socle.current_tenant_id())
          with check (tenant_id = socle.current_tenant_id());
      `,
    },
  ],
});

/** What Postgres raises for a row a policy's check refuses: insufficient_privilege, naming RLS. */
const ROW_LEVEL_SECURITY_VIOLATION = {
  code: '42501',
  message: expect.stringMatching(/^new row violates row-level security policy for table "clients"/),
};

describeEachDatabase('Tenant isolation by row-level security', (target) => {
  let socle: TestSocle;
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const db = () => socle.db.withTables<Tables>();
  const asTenant = <T>(tenantId: string, work: () => Promise<T>) =>
    socle.scope.run({ tenantId, userId: randomUUID() }, work);

  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [crm] });
    for (const [tenant, name] of [
      [tenantA, 'Cabinet A client'],
      [tenantB, 'Cabinet B client'],
    ] as const) {
      await asTenant(tenant, () =>
        db().transaction((trx) =>
          trx.insertInto('crm.clients').values({ id: randomUUID(), tenant_id: tenant, name }).execute(),
        ),
      );
    }
  });
  afterAll(() => socle?.dispose());

  it("shows a tenant its own rows and never another tenant's", async () => {
    const rows = await asTenant(tenantA, () =>
      db().transaction((trx) => trx.selectFrom('crm.clients').select(['name', 'tenant_id']).execute()),
    );
    expect(rows).toEqual([{ name: 'Cabinet A client', tenant_id: tenantA }]);
  });

  it('yields zero rows, not all rows, when the tenant is forgotten', async () => {
    expect(await db().kysely.selectFrom('crm.clients').selectAll().execute()).toEqual([]);
    expect(await db().transaction((trx) => trx.selectFrom('crm.clients').selectAll().execute())).toEqual([]);
  });

  it("refuses to write a row into another tenant's space", async () => {
    await expect(
      asTenant(tenantA, () =>
        db().transaction((trx) =>
          trx
            .insertInto('crm.clients')
            .values({ id: randomUUID(), tenant_id: tenantB, name: 'smuggled' })
            .execute(),
        ),
      ),
    ).rejects.toMatchObject(ROW_LEVEL_SECURITY_VIOLATION);
    // Moving its own row into another tenant's space is the same violation (the policy's check
    // applies to the new row), not merely some error.
    await expect(
      asTenant(tenantA, () =>
        db().transaction((trx) =>
          trx.updateTable('crm.clients').set({ tenant_id: tenantB }).executeTakeFirst(),
        ),
      ),
    ).rejects.toMatchObject(ROW_LEVEL_SECURITY_VIOLATION);
    const { rows } = await asTenant(tenantA, () =>
      db().transaction((trx) => sql<{ n: number }>`select count(*)::int as n from crm.clients`.execute(trx)),
    );
    expect(rows[0]?.n).toBeGreaterThan(0);
  });

  it('runs requests as a role that owns nothing and cannot switch RLS off', async () => {
    const { rows } = await sql<{ role: string; owner: string }>`
      select current_user as role, tableowner as owner from pg_tables where schemaname = 'crm' and tablename = 'clients'`.execute(
      db().kysely,
    );
    expect(rows[0]?.role).toBe(socle.config.databaseAppRole);
    expect(rows[0]?.owner).not.toBe(socle.config.databaseAppRole);
    await expect(
      sql`alter table crm.clients disable row level security`.execute(db().kysely),
    ).rejects.toThrow(/owner/);
    await expect(sql`drop table crm.clients`.execute(db().kysely)).rejects.toThrow(/owner/);
  });

  it('carries the tenant of the scope into every transaction, and only into transactions', async () => {
    const seen = await asTenant(tenantB, () =>
      db().transaction(async (trx) => {
        const { rows } = await sql<{
          tenant: string;
        }>`select socle.current_tenant_id()::text as tenant`.execute(trx);
        return rows[0]?.tenant;
      }),
    );
    expect(seen).toBe(tenantB);
  });
});
