import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineModule, Type } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { requireOrg } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  type ProbeCaller,
  probeCrossTenantAccess,
  type TestSocle,
} from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';

/** An app with a classic bug: reading one note by id forgets the tenant (and the table has no RLS). */
const leaky = defineModule<{ 'leaky.notes': { id: string; tenant_id: string; body: string } }>({
  name: 'leaky',
  dependsOn: ['tenancy'],
  globalTables: { notes: 'deliberately unprotected: this module exists to prove the probe catches leaks' },
  migrations: [
    {
      name: '0001_notes.sql',
      sql: 'create table notes (id uuid primary key, tenant_id uuid not null, body text not null);',
    },
  ],
  routes(app, { db }) {
    const headers = Type.Object({ 'x-org-id': Type.String({ format: 'uuid' }) });
    app.post(
      '/leaky/notes',
      { schema: { headers, body: Type.Object({ body: Type.String({ examples: ['hello'] }) }) } },
      async (request, reply) => {
        const org = requireOrg(request);
        const id = randomUUID();
        await db.kysely
          .insertInto('leaky.notes')
          .values({ id, tenant_id: org.orgId, body: request.body.body })
          .execute();
        return reply.code(201).send({ id });
      },
    );
    app.get('/leaky/notes', { schema: { headers } }, async (request) =>
      db.kysely
        .selectFrom('leaky.notes')
        .select(['id', 'body'])
        .where('tenant_id', '=', requireOrg(request).orgId)
        .execute(),
    );
    app.get(
      '/leaky/notes/:id',
      { schema: { headers, params: Type.Object({ id: Type.String({ format: 'uuid' }) }) } },
      async (request) => {
        requireOrg(request);
        return db.kysely
          .selectFrom('leaky.notes')
          .selectAll()
          .where('id', '=', request.params.id)
          .executeTakeFirstOrThrow();
      },
    );
  },
});

describeEachDatabase('Cross-tenant probe over every route of /openapi.json', (target) => {
  let socle: TestSocle;
  let a: ProbeCaller;
  let b: ProbeCaller;

  async function tenant(name: string): Promise<ProbeCaller> {
    const email = `${name.replaceAll(' ', '-').toLowerCase()}-${randomUUID().slice(0, 8)}@example.com`;
    const tenant = await socle.newTenant({ owner: await socle.newUser({ email, password: PASSWORD }), name });
    return { accessToken: tenant.owner.token, orgId: tenant.id };
  }

  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [...createBuiltInModules(), leaky] });
    a = await tenant('Cabinet A');
    b = await tenant('Cabinet B');
  });
  afterAll(() => socle?.dispose());

  it("lets tenant B reach none of tenant A's resources through the built-in routes", async () => {
    const { findings, probed } = await probeCrossTenantAccess(socle, a, b);
    expect(findings.filter((finding) => !finding.route.includes('/leaky/'))).toEqual([]);
    // It really went through the built-in routes that take an id, and the list routes.
    expect(probed).toEqual(
      expect.arrayContaining([
        'PATCH /org/members/{userId}',
        'DELETE /org/members/{userId}',
        'DELETE /org/invitations/{id}',
        'DELETE /org/api-keys/{id}',
        'DELETE /auth/sessions/{id}',
        'GET /org/members',
        'GET /org/invitations',
        'GET /org/api-keys',
        'POST /realtime/apps/{id}/rotate-secret',
        'POST /realtime/apps/{id}/rotate-encryption-key',
        'DELETE /realtime/apps/{id}',
        'GET /realtime/apps',
      ]),
    );
  });

  it('catches a route that forgets the tenant', async () => {
    const { findings } = await probeCrossTenantAccess(socle, a, b);
    expect(findings).toContainEqual({
      route: 'GET /leaky/notes/{id}',
      problem: "answered 200 to tenant B for tenant A's resource (expected 404)",
    });
  });
});
