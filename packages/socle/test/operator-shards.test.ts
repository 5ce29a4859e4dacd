import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAuditModule,
  createIdentityModule,
  createMailModule,
  createRealtimeModule,
  createTenancyModule,
} from '../src/index.js';
import {
  createTestPostgresDatabase,
  createTestSocle,
  type TestDatabase,
  type TestSocle,
  type TestTenant,
  testPostgresAdminUrl,
} from '../src/testing/index.js';
import { postgresTarget } from './support/each-database.js';
import { placeOnShard, rowsOn } from './support/shards.js';

const OPERATOR_TOKEN = 'operator-token-of-the-operator-shards-suite-0123456';
const operator = { 'x-operator-token': OPERATOR_TOKEN };
const CREATE_APP = 'POST /realtime/apps';

// Postgres only, by nature (SHARDS needs DATABASE_URL): the shard is a second database of the
// shared server and an organization is placed on it by writing the directory, before it has rows.
describe.skipIf(!postgresTarget.available)(
  "Operator listings with SHARDS: every shard's audit events and realtime apps (Postgres)",
  () => {
    let socle: TestSocle;
    let shard: TestDatabase;
    const audit = createAuditModule({ flushIntervalMs: 60_000 });
    let onPrimary: TestTenant;
    let onShard: TestTenant;
    const appIds = new Map<string, string>();

    beforeAll(async () => {
      shard = await createTestPostgresDatabase(testPostgresAdminUrl(), 'socle_shard');
      socle = await createTestSocle(postgresTarget, {
        modules: [
          createMailModule(),
          createIdentityModule({ rateLimits: false }),
          createTenancyModule(),
          audit,
          createRealtimeModule(),
        ],
        config: {
          shards: [{ name: 'a', url: shard.url as string }],
          shardsDirectoryCacheMs: 0,
          jobsQueues: [],
        },
        settings: { identity: { operatorToken: OPERATOR_TOKEN } },
      });
      onPrimary = await socle.newTenant({ name: 'On the primary' });
      onShard = await socle.newTenant({ name: 'On shard a' });
      await placeOnShard(socle, onShard.id, 'a');
      // Alternately, so that neither database's rows all come before the other's.
      for (const round of [1, 2])
        for (const tenant of [onPrimary, onShard]) {
          const created = await socle.app.inject({
            method: 'POST',
            url: '/realtime/apps',
            headers: { authorization: `Bearer ${tenant.owner.token}`, 'x-org-id': tenant.id },
            payload: { name: `app ${round}` },
          });
          expect(created.statusCode, created.body).toBe(201);
          appIds.set(created.json<{ id: string }>().id, tenant.id);
        }
      await new Promise((resolve) => setImmediate(resolve));
      await socle.servicesOf(audit).flush();
    }, 180_000);
    afterAll(async () => {
      await socle?.dispose();
      await shard?.drop();
    });

    const get = async (url: string) => {
      const response = await socle.app.inject({ method: 'GET', url, headers: operator });
      expect(response.statusCode, response.body).toBe(200);
      return response.json();
    };

    it("the shard holds its organization's rows, the primary the other's", async () => {
      const onShardApps = await rowsOn(shard.url, 'select tenant_id from realtime.apps');
      expect(new Set(onShardApps.map((row) => row.tenant_id))).toEqual(new Set([onShard.id]));
      const events = await rowsOn(shard.url, 'select tenant_id from audit.events where action = $1', [
        CREATE_APP,
      ]);
      expect(events).toHaveLength(2);
    });

    it("lists every shard's apps, one page after another in id order, each once", async () => {
      const walk = async (query: string) => {
        const seen: { id: string; orgId: string }[] = [];
        let after: string | null = null;
        for (let pages = 0; pages < 10; pages++) {
          const page: { apps: { id: string; orgId: string }[]; next: string | null } = await get(
            `/operator/realtime/apps?limit=1${query}${after === null ? '' : `&after=${after}`}`,
          );
          seen.push(...page.apps);
          after = page.next;
          if (after === null) break;
        }
        return seen;
      };
      const all = await walk('');
      expect(all.map((app) => app.id)).toEqual([...appIds.keys()].sort());
      expect(all.map((app) => app.orgId)).toEqual([...appIds.keys()].sort().map((id) => appIds.get(id)));
      const ofShard = await walk(`&org=${onShard.id}`);
      expect(ofShard.map((app) => app.orgId)).toEqual([onShard.id, onShard.id]);
    });

    it('reads the activity of an app on the shard, by its id alone', async () => {
      const [onShardApp] = [...appIds].find(([, orgId]) => orgId === onShard.id) ?? [];
      const activity = await get(`/operator/realtime/apps/${onShardApp}/activity`);
      expect(activity).toMatchObject({ connections: 0 });
    });

    it("lists every shard's audit events, newest first, the cursor walking them all once", async () => {
      const action = encodeURIComponent(CREATE_APP);
      const seen: { id: string; tenantId: string; occurredAt: string }[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const page: { events: typeof seen; nextCursor: string | null } = await get(
          `/operator/audit-events?action=${action}&limit=1${cursor === null ? '' : `&cursor=${cursor}`}`,
        );
        seen.push(...page.events);
        cursor = page.nextCursor;
        if (cursor === null) break;
      }
      expect(seen.map((event) => event.tenantId)).toEqual([
        onShard.id,
        onPrimary.id,
        onShard.id,
        onPrimary.id,
      ]);
      expect(new Set(seen.map((event) => event.id)).size).toBe(4);
      const whole = await get(`/operator/audit-events?action=${action}`);
      expect(whole.events.map((event: { id: string }) => event.id)).toEqual(seen.map((event) => event.id));
      const ofShard = await get(`/operator/audit-events?action=${action}&org=${onShard.id}`);
      expect(ofShard.events.map((event: { tenantId: string }) => event.tenantId)).toEqual([
        onShard.id,
        onShard.id,
      ]);
    });
  },
);
