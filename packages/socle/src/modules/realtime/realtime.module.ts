import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { JobBackoff } from '../../kernel/index.js';
import {
  defineModule,
  isRedisUnavailable,
  type ModuleDefinition,
  type SetupContext,
  type SharedState,
  webClientPath,
} from '../../kernel/index.js';
import { createActivityService } from './activity.service.js';
import { type AppDirectory, configuredApp, type RealtimeApp } from './apps.js';
import { registerAppRoutes } from './apps.routes.js';
import { type AppsService, createAppsService } from './apps.service.js';
import { createAppsStore } from './apps.store.js';
import { registerAuthRoutes } from './auth.routes.js';
import { encryptEventData } from './encryption.js';
import { createGateway, type Gateway, type SocketClosedHandler } from './gateway.js';
import type { ClientEventHandler } from './gateway-client-events.js';
import type { LatencyEstimate } from './gateway-latency.js';
import { registerHttpApiRoutes } from './http-api.routes.js';
import { createHttpApiService, type HttpApiService } from './http-api.service.js';
import {
  type ConsoleNotice,
  createOperatorApp,
  createOperatorFeed,
  type OperatorFeed,
} from './operator-feed.js';
import { registerOperatorFeedRoutes } from './operator-feed.routes.js';
import { channelType, newSocketId } from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';
import { createRealtimePrivacy } from './realtime.privacy.js';
import { type RealtimeSettings, realtimeSettings } from './realtime.settings.js';
import type { RealtimeTables } from './realtime.tables.js';
import { createSignatureService, type SignatureService } from './signature.service.js';
import {
  createJobWebhookDelivery,
  createWebhookSink,
  defineWebhookJob,
  type WebhookDelivery,
  type WebhookSink,
} from './webhooks.js';

const PUSHER_JS_BROWSER_DIR = dirname(
  createRequire(import.meta.url).resolve('pusher-js/dist/web/pusher.min.js'),
);

export interface RealtimeOptions {
  /** Apps besides the one of `REALTIME_APP_ID/KEY/SECRET` (which, when set, comes first). */
  readonly apps?: readonly RealtimeApp[];
  /** Receives webhook events (channel_occupied, member_added, …) instead of the default sink. */
  readonly webhooks?: WebhookSink;
  /** Sends signed webhook requests; by default one durable job each (`realtime.deliverWebhook`). */
  readonly webhookDelivery?: WebhookDelivery;
  /** Backoff between attempts of the webhook job (default 1 s doubling, capped at 5 min). */
  readonly webhookBackoff?: JobBackoff;
}

/** What server code may do with the realtime module. */
export interface Realtime {
  /**
   * Sends an event to channels on every node, as the HTTP API does. `appId` defaults to the
   * configured app. On `private-encrypted-` channels the data is encrypted with the app's
   * encryption master key, as the pusher SDKs do (`realtime.no_encryption_key` without one).
   *
   * @example
   * await realtime.publish({ channel: 'private-job-42', event: 'progress', data: { percent: 40 } });
   */
  publish(input: {
    channel?: string;
    channels?: readonly string[];
    event: string;
    data: unknown;
    appId?: string;
    excludeSocketId?: string;
  }): Promise<void>;
  /** Closes every connection of a signed-in user, on every node. */
  terminateUserConnections(userId: string, appId?: string): Promise<void>;
  /** Pings silent sockets and closes those that never answered (runs on a timer; tests call it). */
  checkActivity(): void;
  /** Removes presence members of nodes that stopped heartbeating (runs on a timer; tests call it). */
  sweepDeadNodes(): Promise<void>;
  /** Sockets connected to this node. */
  connectionCount(): number;
  /**
   * Calls `handler` with every `client-` event a socket of this node sends (after the checks of
   * the protocol: a joined private or presence channel, size, rate), with who sent it, when it
   * arrived (this node's monotonic clock) and the socket's measured latency. A module's players
   * press a buzzer, answer, chat over their websocket this way. Returns the handler's removal.
   *
   * @example
   * realtime.onClientEvent(({ channel, event, userId, receivedAt, latency }) => { … });
   */
  onClientEvent(handler: ClientEventHandler): () => void;
  /**
   * Calls `handler` when a socket of this node has closed, after its channels were left (a module
   * keeps a player's seat for a grace period, then frees it). Returns the handler's removal.
   */
  onSocketClosed(handler: SocketClosedHandler): () => void;
  /**
   * Measures a socket's round-trip time: sends `pusher:ping` and times the `pusher:pong`,
   * `samples` times in a row (default 1). False when the socket is not on this node.
   */
  probeLatency(socketId: string, samples?: number): boolean;
  /** A socket's measured latency (median of its recent samples), or undefined. */
  latency(socketId: string): LatencyEstimate | undefined;
  /**
   * The key clients connect with (public by design: every browser holds it), of the configured
   * app by default, for a module's web client to learn it from its own API; undefined when there
   * is no such app.
   */
  clientKey(appId?: string): Promise<string | undefined>;
  /**
   * Sockets of an app on every live node (what its `maxConnections` limit counts): this node's,
   * plus with Redis those the other nodes reported. `appId` defaults to the configured app.
   */
  fleetConnectionCount(appId?: string): Promise<number>;
  /**
   * Tells the operator console, and the organization's admins' console when the notice names one,
   * something they show live (the payments module: an event applied or failed), through this
   * gateway's operator feed. Never throws.
   *
   * @example
   * await realtime.notifyConsole({ event: 'payments', orgId, data: { provider, eventId, status: 'failed' } });
   */
  notifyConsole(notice: ConsoleNotice): Promise<void>;
}

interface RealtimeServices extends Realtime {
  readonly gateway: Gateway;
  readonly state: SharedState;
  readonly apps: AppDirectory;
  readonly appsService: AppsService;
  readonly webhooks: WebhookSink;
  /** Pusher's HTTP API: the signature check of its calls, and what the calls do. */
  readonly signatures: SignatureService;
  readonly httpApi: HttpApiService;
  /** The operator console's live feed (job counts, apps' activity) and the app it goes through. */
  readonly operatorFeed: OperatorFeed;
  readonly operatorApp: RealtimeApp;
  /** The activity and dead-node timers, set by onStart and cleared by onStop. */
  readonly timers: NodeJS.Timeout[];
}

/** The realtime module's definition; its public API ({@link Realtime}) is `socle.servicesOf(realtime)`. */
export type RealtimeModule = ModuleDefinition<unknown, RealtimeServices, RealtimeSettings>;

function createRealtimeServices(
  context: SetupContext<unknown, RealtimeSettings>,
  options: RealtimeOptions,
): RealtimeServices {
  const { settings, clock, log, bus } = context;
  const configured = configuredApp(settings);
  const staticApps = [...(configured ? [configured] : []), ...(options.apps ?? [])];
  // Pusher's HTTP API lives under `/apps/{appId}/`, where web clients live too (`/apps/<module>/`):
  // an app named like a module serving there would lose its GET routes to the module's files.
  // (Apps created through the API have UUID ids, which no module name can be.)
  for (const module of context.modules) {
    const path = module.web === undefined ? undefined : webClientPath(module.name, module.web);
    const taken = staticApps.find((app) => path === `/apps/${app.id}/`);
    if (taken) throw realtimeErrors.appIdTaken(taken.id, module.name);
  }
  const db = context.db.withTables<RealtimeTables>();
  const operatorApp = createOperatorApp(context.secrets);
  const appsService = createAppsService({
    db,
    store: createAppsStore(db),
    clock,
    staticApps,
    internalApps: [operatorApp],
    secrets: context.secrets,
    log,
  });
  const apps = appsService.directory;
  const now = () => clock.now().getTime();
  // Presence, subscription and connection counts, cache channels: fleet-wide, whichever adapter
  // the kernel picked (in process when embedded, Redis with REDIS_URL).
  const state = context.sharedState.open({
    area: 'rt',
    nodeId: newSocketId(),
    nodeExpiryMs: settings.nodeExpirySeconds * 1000,
  });
  const delivery =
    options.webhookDelivery ?? createJobWebhookDelivery({ jobs: context.jobs, db: context.db });
  const webhooks = options.webhooks ?? createWebhookSink({ delivery, now, log });
  // Late-bound to the gateway below, which reports activity to it.
  const operatorFeed = createOperatorFeed({
    app: operatorApp,
    publish: (input) => gateway.publish(input),
    fleetConnectionCount: (appId) => gateway.fleetConnectionCount(appId),
    orgOfApp: async (appId) => (await apps.byId(appId))?.orgId ?? null,
    bus,
    nodeId: state.nodeId,
    now,
    jobs: context.jobs,
    log,
  });
  const gateway = createGateway({
    apps,
    bus,
    state,
    clock,
    log,
    maxMessageBytes: settings.maxMessageBytes,
    activityTimeoutSeconds: settings.activityTimeoutSeconds,
    maxBufferedBytes: settings.maxBufferedBytes,
    writeCoalesceMs: settings.writeCoalesceMs,
    maxUserInfoBytes: settings.maxUserInfoBytes,
    maxChannelsPerConnection: settings.maxChannelsPerConnection,
    webhooks,
    slowDisconnects: context.metrics.counter({
      name: 'socle_realtime_slow_disconnects_total',
      help: 'Realtime sockets closed with 4100 because they did not read fast enough (REALTIME_MAX_BUFFERED_BYTES)',
    }),
    onAppActivity: (appId) => operatorFeed.appActivityChanged(appId),
    onLocalSubscriber: (appId, channel, delta) => operatorFeed.localSubscriberChanged(appId, channel, delta),
  });
  context.metrics.gauge({
    name: 'socle_realtime_connections',
    help: 'Realtime sockets connected to this node (every app)',
    collect: (set) => set({}, gateway.connectionCount()),
  });
  const appOf = async (appId: string | undefined) => {
    const app = appId === undefined ? apps.defaultApp : await apps.byId(appId);
    if (app === undefined)
      throw appId === undefined ? realtimeErrors.noDefaultApp() : realtimeErrors.appNotFound();
    return app;
  };
  return {
    gateway,
    state,
    apps,
    appsService,
    webhooks,
    operatorFeed,
    operatorApp,
    signatures: createSignatureService({ apps, clock }),
    httpApi: createHttpApiService({
      gateway,
      state,
      rateLimiter: context.rateLimiter,
      maxMessageBytes: settings.maxMessageBytes,
    }),
    timers: [],
    async publish(input) {
      const channels = input.channels ?? (input.channel === undefined ? [] : [input.channel]);
      const app = await appOf(input.appId);
      const plain = channels.filter((channel) => channelType(channel)?.kind !== 'encrypted');
      const encrypted = channels.filter((channel) => channelType(channel)?.kind === 'encrypted');
      const event = { app, event: input.event, excludeSocketId: input.excludeSocketId };
      // Encrypted channels each get their own ciphertext (each channel has its own key).
      if (encrypted.length > 0 && app.encryptionMasterKey === undefined)
        throw realtimeErrors.noEncryptionKey();
      await Promise.all([
        ...(plain.length > 0 ? [gateway.publish({ ...event, channels: plain, data: input.data })] : []),
        ...encrypted.map((channel) =>
          gateway.publish({
            ...event,
            channels: [channel],
            data: encryptEventData(channel, app.encryptionMasterKey as Buffer, input.data),
          }),
        ),
      ]);
    },
    async terminateUserConnections(userId, appId) {
      await gateway.terminateUserConnections((await appOf(appId)).id, userId);
    },
    checkActivity: () => gateway.checkActivity(),
    sweepDeadNodes: () => gateway.sweepDeadNodes(),
    connectionCount: () => gateway.connectionCount(),
    onClientEvent: (handler) => gateway.onClientEvent(handler),
    onSocketClosed: (handler) => gateway.onSocketClosed(handler),
    probeLatency: (socketId, samples = 1) => gateway.probeLatency(socketId, samples),
    latency: (socketId) => gateway.latency(socketId),
    async clientKey(appId) {
      return (appId === undefined ? apps.defaultApp : await apps.byId(appId))?.key;
    },
    async fleetConnectionCount(appId) {
      return gateway.fleetConnectionCount((await appOf(appId)).id);
    },
    notifyConsole: (notice) => operatorFeed.notify(notice),
  };
}

/**
 * The realtime gateway: the Pusher Channels protocol on `ws://host/app/{key}`, channel
 * authorization for Socle users, Pusher's HTTP API, fan-out across nodes through the bus.
 */
export function createRealtimeModule(options: RealtimeOptions = {}): RealtimeModule {
  return defineModule({
    name: 'realtime',
    dependsOn: ['identity', 'tenancy'],
    settings: realtimeSettings,
    privacy: ({ services }) =>
      createRealtimePrivacy((userId) => services.gateway.terminatePersonConnections(userId)),
    migrations: new URL('./migrations/', import.meta.url),
    // The browser client (pusher-js, the same release the tests drive) served by Socle itself, so
    // a web client loads `/realtime/client/pusher.min.js` from its own origin: no CDN, strict CSP.
    web: { root: PUSHER_JS_BROWSER_DIR, path: '/realtime/client/' },
    setup: (context) => createRealtimeServices(context, options),
    jobs: { deliverWebhook: defineWebhookJob(options.webhookBackoff) },
    configureHttp(app, { services: { gateway, webhooks } }) {
      app.server.on('upgrade', (request, socket, head) => gateway.handleUpgrade(request, socket, head));
      // Before the HTTP server stops: sockets get 4200 (reconnect now, elsewhere) and their
      // presence is removed while the bus and Redis are still up.
      app.addHook('preClose', async () => {
        await gateway.shutdown();
        // The events of those closes go to the jobs engine while it still takes jobs.
        await webhooks.drain?.(5000);
      });
    },
    routes(app, context) {
      const { apps, appsService, signatures, httpApi, gateway, state } = context.services;
      registerAppRoutes(app, appsService, createActivityService({ apps: appsService, gateway, state }));
      registerAuthRoutes(app, {
        apps,
        modules: context.modules,
        channelRules: context.settings.channelRules,
        maxUserInfoBytes: context.settings.maxUserInfoBytes,
      });
      registerOperatorFeedRoutes(app, context.services.operatorApp);
      app.register(async (scope) => {
        registerHttpApiRoutes(scope as typeof app, { signatures, httpApi });
      });
    },
    async onStart(context) {
      const current = context.services;
      const resealed = await current.appsService.resealSecrets();
      if (resealed > 0)
        context.log.info({ apps: resealed }, 'Realtime app secrets resealed with the current SECRET_KEY');
      await current.gateway.ready();
      const activity = setInterval(() => current.gateway.checkActivity(), 2000);
      // A dead node is found within a quarter of the expiry after it expires: announced within
      // 1.25 × REALTIME_NODE_EXPIRY_SECONDS of its last heartbeat.
      const sweep = setInterval(() => {
        current.gateway.sweepDeadNodes().catch((error) => {
          // A Redis outage is logged once by the connections, not at every sweep.
          if (!isRedisUnavailable(error)) context.log.warn({ err: error }, 'Realtime sweep failed');
        });
      }, context.settings.nodeExpirySeconds * 250);
      activity.unref();
      sweep.unref();
      current.timers.push(activity, sweep);
      await current.operatorFeed.start();
    },
    async onStop({ services }) {
      for (const timer of services.timers) clearInterval(timer);
      await services.operatorFeed.stop();
      await services.state.close();
    },
  });
}
