import { randomBytes } from 'node:crypto';
import { Type } from '@fastify/type-provider-typebox';
import { loadConfig } from '../kernel/config/index.js';
import { SocleError } from '../kernel/errors/index.js';
import { createSilentLogger } from '../kernel/log/index.js';
import { defineModule } from '../kernel/modules/index.js';
import { defineJob } from '../kernel/queue/index.js';
import { createSocle, type Socle } from '../kernel/socle.js';
import { createFilesModule, defineBucket } from '../modules/files/index.js';
import { createIdentityModule } from '../modules/identity/index.js';
import { createBuiltInModules } from '../modules/index.js';
import { createLogSender, createMailModule } from '../modules/mail/index.js';
import { createRealtimeModule, type Realtime } from '../modules/realtime/index.js';
import { requireOrg } from '../modules/tenancy/index.js';
import {
  CALIBRATION_BUCKET,
  CALIBRATION_CHANNEL,
  CALIBRATION_EVENT,
  CALIBRATION_ITEMS,
  CALIBRATION_PASSWORD,
  CALIBRATION_REALTIME_KEY,
  CALIBRATION_UPLOAD_BYTES,
  type CalibrationChildMessage,
  type CalibrationChildSettings,
  calibrationEmail,
  isCalibrationParentMessage,
} from './calibrate-protocol.js';

/**
 * The server `socle bench --calibrate` measures, started by it as a child process (never by a
 * user): Socle with the built-in modules, the files module (one bucket, on a local directory or
 * `BLOB_URL`'s store) and a small calibration module (a tenant table read by id and patched, a
 * no-op job), on the throwaway database the parent made. It sets the data up
 * through Socle's own routes, listens, then answers the parent's CPU questions over IPC
 * (`process.cpuUsage()`: this process's CPU alone, not the load generator's).
 */

const Item = Type.Object({ id: Type.Integer(), name: Type.String(), priceCents: Type.Integer() });
const ItemParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const PriceChange = Type.Object(
  { priceCents: Type.Integer({ minimum: 0, maximum: 1_000_000 }) },
  { additionalProperties: false },
);

interface ItemTable {
  id: number;
  tenant_id: string;
  name: string;
  price_cents: number;
}

/** What an app author writes for a tenant table (docs/modules.md): forced RLS on the current tenant. */
const CREATE_ITEMS_SQL = `
create table items (
  id integer not null,
  tenant_id uuid not null default socle.current_tenant_id(),
  name text not null,
  price_cents integer not null,
  primary key (tenant_id, id)
);
alter table items enable row level security;
alter table items force row level security;
create policy tenant_isolation on items
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
`;

const itemNotFound = (id: number) =>
  new SocleError('calibration.item_not_found', `Item ${id} does not exist`, { status: 404, details: { id } });

/** The server, once ready. */
let current: Socle | undefined;

/** Counts processed no-op jobs; the jobs phase waits on it. */
const processed = { count: 0, waiter: undefined as { target: number; resolve: () => void } | undefined };

function calibrationModule() {
  return defineModule<{ 'calibration.items': ItemTable }>({
    name: 'calibration',
    dependsOn: ['tenancy'],
    migrations: [{ name: '0001_create_items.sql', sql: CREATE_ITEMS_SQL }],
    jobs: {
      noop: defineJob({
        async handler() {
          processed.count++;
          const waiter = processed.waiter;
          if (waiter !== undefined && processed.count >= waiter.target) {
            processed.waiter = undefined;
            waiter.resolve();
          }
        },
      }),
    },
    routes(app, { db }) {
      const findItem = db.prepare((kysely, params: { id: number }) =>
        kysely
          .selectFrom('calibration.items')
          .select(['id', 'name', 'price_cents as priceCents'])
          .where('id', '=', params.id),
      );
      const setPrice = db.prepare((kysely, params: { id: number; priceCents: number }) =>
        kysely
          .updateTable('calibration.items')
          .set({ price_cents: params.priceCents })
          .where('id', '=', params.id)
          .returning(['id', 'name', 'price_cents as priceCents']),
      );
      app.get(
        '/calibration/items/:id',
        { schema: { params: ItemParams, response: { 200: Item } } },
        async (request) => {
          requireOrg(request);
          const row = await findItem.executeTakeFirst({ id: request.params.id });
          if (row === undefined) throw itemNotFound(request.params.id);
          return row;
        },
      );
      app.patch(
        '/calibration/items/:id',
        { schema: { params: ItemParams, body: PriceChange, response: { 200: Item } } },
        async (request) => {
          requireOrg(request);
          const row = await setPrice.executeTakeFirst({
            id: request.params.id,
            priceCents: request.body.priceCents,
          });
          if (row === undefined) throw itemNotFound(request.params.id);
          return row;
        },
      );
    },
  });
}

async function inject(
  socle: Socle,
  method: 'GET' | 'POST',
  url: string,
  payload: Record<string, unknown> | undefined,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const response = await socle.app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload }),
  });
  if (response.statusCode >= 300)
    throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body.slice(0, 300)}`);
  return response.json() as Record<string, unknown>;
}

function send(message: CalibrationChildMessage): void {
  process.send?.(message);
}

async function start(settings: CalibrationChildSettings): Promise<Socle> {
  const config = loadConfig({
    env: {},
    configFile: false,
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'warn',
      shutdownTimeoutMs: 2000,
      dataDir: settings.dataDir,
      ...(settings.databaseUrl === undefined ? {} : { databaseUrl: settings.databaseUrl }),
      ...(settings.blobUrl === undefined ? {} : { blobUrl: settings.blobUrl }),
      secretKey: randomBytes(32).toString('base64'),
      // One load generator on one address opens every connection.
      httpMaxConnectionsPerIp: 0,
    },
  });
  // The built-in modules as a user runs them, but identity without its per-address and per-account
  // sign-in limits (one address signs in thousands of times) and mail without sending.
  const modules = [
    ...createBuiltInModules().filter(
      (module) => module.name !== 'identity' && module.name !== 'mail' && module.name !== 'realtime',
    ),
    createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
    // The realtime phase's app: its sockets join a public channel, the server publishes to it.
    createRealtimeModule({
      apps: [
        {
          id: 'calibration',
          key: CALIBRATION_REALTIME_KEY,
          secret: randomBytes(24).toString('base64url'),
          encryptionMasterKey: undefined,
          orgId: null,
          maxConnections: 0,
          clientEventsPerSecond: 10,
          backendEventsPerSecond: 0,
          webhookUrl: undefined,
        },
      ],
    }),
    createMailModule({ sender: createLogSender(createSilentLogger()) }),
    // The file upload phase's bucket, in the organization's scope.
    createFilesModule({
      buckets: [defineBucket({ name: CALIBRATION_BUCKET, maxBytes: CALIBRATION_UPLOAD_BYTES })],
    }),
    calibrationModule(),
  ];
  const socle = await createSocle({ config, modules, log: createSilentLogger() });
  try {
    for (let index = 0; index < settings.users; index++)
      await inject(socle, 'POST', '/auth/sign-up', {
        email: calibrationEmail(index),
        password: CALIBRATION_PASSWORD,
        name: `Calibration ${index}`,
      });
    const signedIn = await inject(socle, 'POST', '/auth/sign-in', {
      email: calibrationEmail(0),
      password: CALIBRATION_PASSWORD,
    });
    const accessToken = String(signedIn.accessToken);
    const authorization = `Bearer ${accessToken}`;
    const org = await inject(
      socle,
      'POST',
      '/orgs',
      { name: 'Calibration', slug: 'calibration' },
      { authorization },
    );
    const orgId = String(org.id);
    // Seeding is the owner's work: it sets the tenant explicitly.
    await socle.db.withConnection(async (connection) => {
      await connection.query(
        `insert into calibration.items (tenant_id, id, name, price_cents)
         select $1::uuid, n, 'item ' || n, (n * 37) % 100000 from generate_series(1, ${CALIBRATION_ITEMS}) as n`,
        [orgId],
      );
      await connection.execute('analyze calibration.items');
    }, 'owner');
    const url = await socle.listen();
    current = socle;
    send({ type: 'ready', url, headers: { authorization, 'x-org-id': orgId } });
    return socle;
  } catch (error) {
    await socle.close();
    throw error;
  }
}

/**
 * Publishes to the calibration channel until `seconds` passed, `concurrency` publishes in flight:
 * the server's CPU then is the fan-out's (serializing once, writing to every socket).
 */
async function runPublish(socle: Socle, seconds: number, concurrency: number) {
  const realtime = socle.servicesOf<Realtime>('realtime');
  const startedAt = performance.now();
  const cpuBefore = process.cpuUsage();
  let messages = 0;
  const loop = async () => {
    while (performance.now() - startedAt < seconds * 1000) {
      await realtime.publish({
        appId: 'calibration',
        channel: CALIBRATION_CHANNEL,
        event: CALIBRATION_EVENT,
        data: { n: messages },
      });
      messages += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const cpu = process.cpuUsage(cpuBefore);
  return { messages, cpuMicros: cpu.user + cpu.system, elapsedMs: performance.now() - startedAt };
}

/**
 * Memory after garbage collections (the parent starts this process with --expose-gc): resident,
 * and what the program holds (JS heap in use plus buffers outside it). The second is what sockets
 * add; RSS alone moves with what the collector hands back to the system, often more than a hundred
 * idle sockets weigh.
 */
function memoryNow(): { rssBytes: number; heldBytes: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return { rssBytes: usage.rss, heldBytes: usage.heapUsed + usage.external };
}

/** Enqueues batches of no-op jobs until `seconds` passed, waiting for each batch to be processed. */
async function runJobs(socle: Socle, seconds: number, batch: number) {
  const startedAt = performance.now();
  const cpuBefore = process.cpuUsage();
  let jobs = 0;
  while (performance.now() - startedAt < seconds * 1000) {
    const target = processed.count + batch;
    const done = new Promise<void>((resolve) => {
      processed.waiter = { target, resolve };
    });
    await socle.db.transaction(async (trx) => {
      await socle.jobs.enqueueMany(
        trx,
        'calibration.noop',
        Array.from({ length: batch }, () => ({ payload: {} })),
      );
    });
    await done;
    jobs += batch;
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { jobs, cpuMicros: cpu.user + cpu.system, elapsedMs: performance.now() - startedAt };
}

const settings = JSON.parse(process.env.SOCLE_CALIBRATION_CHILD ?? 'null') as CalibrationChildSettings | null;
if (settings === null) {
  process.stderr.write('This is the server socle bench --calibrate starts; run socle bench --calibrate.\n');
  process.exit(2);
}
const stop = async () => {
  await current?.close().catch(() => undefined);
  process.exit(0);
};
process.once('disconnect', () => void stop());
process.once('SIGTERM', () => void stop());
process.on('message', (message: unknown) => {
  if (!isCalibrationParentMessage(message) || current === undefined) return;
  const running = current;
  if (message.type === 'cpu') {
    const usage = process.cpuUsage();
    send({ type: 'cpu', id: message.id, micros: usage.user + usage.system });
    return;
  }
  if (message.type === 'memory') {
    send({ type: 'memory', id: message.id, ...memoryNow() });
    return;
  }
  if (message.type === 'publish') {
    runPublish(running, message.seconds, message.concurrency).then(
      (result) => send({ type: 'publish-done', ...result }),
      (error: unknown) => send({ type: 'failed', message: String((error as Error).stack ?? error) }),
    );
    return;
  }
  runJobs(running, message.seconds, message.batch).then(
    (result) => send({ type: 'jobs-done', ...result }),
    (error: unknown) => send({ type: 'failed', message: String((error as Error).stack ?? error) }),
  );
});
start(settings).then(
  () => undefined,
  (error: unknown) => {
    send({ type: 'failed', message: String((error as Error).stack ?? error) });
    process.exit(1);
  },
);
