import { Type } from '@fastify/type-provider-typebox';
import type { Database, Migration } from '../db/index.js';
import { httpErrors } from '../errors/index.js';
import type { HttpServer } from '../http/index.js';
import type { Metrics } from '../metrics/index.js';
import type { RedisConnections } from '../redis/index.js';

export interface CheckResult {
  readonly status: 'ok' | 'failing';
  readonly detail?: string;
  readonly durationMs: number;
}

export interface HealthOptions {
  readonly db: Database;
  /** Every migration this server's modules ship; all must be applied for readiness. */
  readonly migrations: readonly Migration[];
  readonly metrics: Metrics;
  /**
   * With `REDIS_URL`: realtime needs Redis, so readiness fails while it is down or frozen (rate
   * limits would fall back per process, realtime calls answer 503).
   */
  readonly redis?: RedisConnections | undefined;
  /**
   * With `SHARDS`: a session of each shard, by name. A node that cannot reach one of them (or finds
   * its migrations pending) is not ready: its tenants' requests would fail there.
   */
  readonly shards?: readonly { readonly name: string; readonly db: Database }[];
  /** True once shutdown began: the load balancer must stop sending traffic. */
  readonly isDraining: () => boolean;
  readonly checkTimeoutMs?: number;
}

async function runCheck(timeoutMs: number, check: () => Promise<string | undefined>): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const failure = await Promise.race([
      check(),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
      }),
    ]);
    const durationMs = Math.round(performance.now() - started);
    return failure === undefined
      ? { status: 'ok', durationMs }
      : { status: 'failing', detail: failure, durationMs };
  } catch (error) {
    const detail = error instanceof Error ? error.message || error.constructor.name : String(error);
    return { status: 'failing', detail, durationMs: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

const CheckSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('failing')]),
  detail: Type.Optional(Type.String()),
  durationMs: Type.Number(),
});

/**
 * `GET /livez`: the process serves HTTP (restart it if not), and its pid. `GET /readyz`: it can do useful
 * work: database (and each shard of `SHARDS`: check `shard:<name>`) reachable, every migration
 * applied there, not shutting down (take it out of the load
 * balancer if not). `GET /metrics`: Prometheus text.
 */
export function registerHealthRoutes(app: HttpServer, options: HealthOptions): void {
  const timeoutMs = options.checkTimeoutMs ?? 2000;
  const expected = options.migrations.map((migration) => `${migration.module}/${migration.name}`);

  /** Reachable, and every migration applied: failure as text, or undefined. */
  const migrationsApplied = async (db: Database): Promise<string | undefined> => {
    if (expected.length === 0) {
      await db.ping();
      return undefined;
    }
    const { rows } = await db.withConnection((connection) =>
      connection.query<{ id: string }>(
        "select module || '/' || name as id from socle.migrations where module || '/' || name = any($1::text[])",
        [expected],
      ),
    );
    const applied = new Set(rows.map((row) => row.id));
    const pending = expected.filter((id) => !applied.has(id));
    return pending.length === 0 ? undefined : `${pending.length} pending: ${pending.slice(0, 5).join(', ')}`;
  };

  /** The database checks; probes arriving while one runs share it instead of each taking a session. */
  let running: Promise<Record<string, CheckResult>> | undefined;
  const databaseChecks = () => {
    running ??= (async () => {
      const primary = (async () => {
        const database = await runCheck(timeoutMs, async () => {
          await options.db.ping();
          return undefined;
        });
        const migrations =
          database.status === 'ok'
            ? await runCheck(timeoutMs, () => migrationsApplied(options.db))
            : { status: 'failing' as const, detail: 'skipped: database unreachable', durationMs: 0 };
        return { database, migrations };
      })();
      // Each shard in one statement (reachable and migrated), all at once with the primary's.
      const shards = Promise.all(
        (options.shards ?? []).map(
          async (shard) =>
            [`shard:${shard.name}`, await runCheck(timeoutMs, () => migrationsApplied(shard.db))] as const,
        ),
      );
      return { ...(await primary), ...Object.fromEntries(await shards) };
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  app.get(
    '/livez',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness',
        description:
          'Also names the process that answered (`pid`): behind one port shared by several processes (`PROCESSES`), it tells them apart.',
        response: { 200: Type.Object({ status: Type.Literal('ok'), pid: Type.Integer() }) },
      },
    },
    async () => ({ status: 'ok' as const, pid: process.pid }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary:
          'Readiness: database (and each shard, and Redis, when configured) reachable, migrations applied, not draining',
        response: {
          200: Type.Object({ status: Type.Literal('ok'), checks: Type.Record(Type.String(), CheckSchema) }),
        },
      },
    },
    async () => {
      const databases = await databaseChecks();
      const draining: CheckResult = options.isDraining()
        ? { status: 'failing', detail: 'shutting down', durationMs: 0 }
        : { status: 'ok', durationMs: 0 };
      const redis = options.redis;
      const checks = {
        ...databases,
        ...(redis === undefined ? {} : { redis: await runCheck(timeoutMs, () => redis.check()) }),
        shutdown: draining,
      };
      const failing = Object.entries(checks).filter(([, check]) => check.status === 'failing');
      if (failing.length > 0) {
        throw httpErrors.serviceUnavailable(
          `Not ready: ${failing.map(([name, check]) => `${name} (${check.detail})`).join('; ')}`,
          { checks, failing: failing.map(([name]) => name) },
        );
      }
      return { status: 'ok' as const, checks };
    },
  );

  app.get(
    '/metrics',
    { schema: { tags: ['operations'], summary: 'Prometheus metrics', hide: true } },
    async (_request, reply) => {
      const body = await options.metrics.registry.metrics();
      return reply.type(options.metrics.registry.contentType).send(body);
    },
  );
}
