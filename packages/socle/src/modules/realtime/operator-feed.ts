import {
  type Bus,
  isRedisUnavailable,
  type JobQueueCounts,
  type Jobs,
  type Logger,
  type SecretBox,
} from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import type { PublishInput } from './gateway.js';

/**
 * The app the operator console's socket connects to. Internal: not an organization's, not the
 * configured one, refused by `/realtime/auth`; only `/operator/realtime/auth` (the operator token)
 * signs for its one channel.
 */
export const OPERATOR_APP_ID = 'socle-operator';
/** The key of the operator app (public, as every app key is: the signatures are what protects). */
export const OPERATOR_APP_KEY = 'socle-operator';
/** The private channel the operator feed's events go to. */
export const OPERATOR_CHANNEL = 'private-socle-operator';

/** How often job counts are read while someone watches the feed. */
const JOBS_SAMPLE_MS = 1000;
/** How long activity changes of apps are gathered before one `realtime` event tells them. */
const ACTIVITY_LINGER_MS = 200;
/** Bus channel where nodes say whether a console watches the feed through them. */
const WATCHERS_BUS_CHANNEL = 'socle-operator-feed:watchers';
/** A node's word that it has watchers holds this long (a node that died stops counting then). */
const WATCHERS_EXPIRY_MS = 15_000;
/** A node with watchers says so again this often, well within the expiry. */
const WATCHERS_RENEW_MS = 5_000;

/** What a node publishes on {@link WATCHERS_BUS_CHANNEL}. */
interface WatchersMessage {
  readonly node: string;
  /** Consoles subscribed to the operator channel through this node now. */
  readonly watchers: number;
  /** A console just subscribed: whoever pushes job counts sends them at its next reading. */
  readonly joined: boolean;
}

/**
 * The operator app. Its secret is derived from SECRET_KEY, so every node of a fleet signs and
 * checks the channel's authorizations alike without storing it anywhere.
 */
export function createOperatorApp(secrets: SecretBox): RealtimeApp {
  return {
    id: OPERATOR_APP_ID,
    key: OPERATOR_APP_KEY,
    secret: secrets.derive('realtime.operator-app').toString('base64url'),
    encryptionMasterKey: undefined,
    orgId: null,
    maxConnections: 0,
    clientEventsPerSecond: 1,
    backendEventsPerSecond: 0,
    webhookUrl: undefined,
  };
}

/** What the feed pushes on {@link OPERATOR_CHANNEL}. */
export interface OperatorFeedEvents {
  /** Job counts of every queue (every tenant's and global jobs), when they changed. */
  readonly jobs: { readonly queues: readonly JobQueueCounts[] };
  /** Apps whose sockets, occupied channels or presence members changed, with their sockets now. */
  readonly realtime: { readonly apps: readonly { readonly appId: string; readonly connections: number }[] };
}

/**
 * Pushes what an operator watches live to the operator channel, through the gateway like any
 * event: job counts (read every second while a console watches somewhere in the fleet, sent when
 * they changed, by one node) and the realtime apps whose activity changed on this node (gathered
 * for 200 ms).
 *
 * Whether anyone watches costs no reading: each node counts the consoles subscribed through it
 * (the gateway tells it) and says so on the bus when one comes or the last leaves, and again
 * every 5 s while it has some; a word expires after 15 s (a node that died). Every node thus
 * knows, in memory, which nodes have watchers; nobody watching, the feed reads nothing. Of the
 * nodes with watchers, the one with the smallest id reads and pushes the job counts (one push per
 * change for the whole fleet; a push is delivered to every node with a console by the bus).
 */
export function createOperatorFeed(options: {
  readonly app: RealtimeApp;
  readonly publish: (input: PublishInput) => Promise<void>;
  readonly fleetConnectionCount: (appId: string) => Promise<number>;
  readonly bus: Pick<Bus, 'publish' | 'subscribe' | 'unsubscribe'>;
  /** This node's id in the shared state (unique in the fleet). */
  readonly nodeId: string;
  readonly now: () => number;
  readonly jobs: Pick<Jobs, 'counts'>;
  readonly log: Logger;
}) {
  const { app, log, nodeId, now } = options;
  const changedApps = new Set<string>();
  let lingering: NodeJS.Timeout | undefined;
  let lastJobs: string | undefined;
  let sampling = false;
  let failing = false;
  /** Consoles subscribed to the operator channel through this node. */
  let localWatchers = 0;
  /** Nodes with watchers (this one included), until when their word holds. */
  const watchingNodes = new Map<string, number>();
  const timers: NodeJS.Timeout[] = [];

  /** Whether a console watches anywhere in the fleet: memory only. */
  const watched = () => {
    const time = now();
    for (const [node, until] of watchingNodes) if (until <= time) watchingNodes.delete(node);
    return watchingNodes.size > 0;
  };
  /** Whether this node is the one that pushes job counts: the smallest id among those watched through. */
  const pushesJobs = () => {
    if (!watched()) return false;
    for (const node of watchingNodes.keys()) if (node < nodeId) return false;
    return watchingNodes.has(nodeId);
  };
  const send = <E extends keyof OperatorFeedEvents>(event: E, data: OperatorFeedEvents[E]) =>
    options.publish({ app, channels: [OPERATOR_CHANNEL], event, data });
  /**
   * Logs the first failure of a series only; never a Redis outage, which the kernel's connections
   * log once themselves.
   */
  const failed = (error: unknown) => {
    if (!failing && !isRedisUnavailable(error))
      log.warn({ err: error }, 'Realtime operator feed could not be sent');
    failing = true;
  };
  const announce = (joined: boolean) => {
    const message: WatchersMessage = { node: nodeId, watchers: localWatchers, joined };
    options.bus.publish(WATCHERS_BUS_CHANNEL, JSON.stringify(message)).catch(failed);
  };
  const heard = (text: string) => {
    let message: WatchersMessage;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message.node !== 'string') return;
    if (message.watchers > 0) watchingNodes.set(message.node, now() + WATCHERS_EXPIRY_MS);
    else watchingNodes.delete(message.node);
    // A new watcher gets the counts at the next reading, whichever node reads them.
    if (message.joined) lastJobs = undefined;
  };

  async function sendActivity() {
    lingering = undefined;
    const appIds = [...changedApps];
    changedApps.clear();
    if (!watched()) return;
    const apps = await Promise.all(
      appIds.map(async (appId) => ({ appId, connections: await options.fleetConnectionCount(appId) })),
    );
    await send('realtime', { apps });
  }

  return {
    /** An app's activity changed on this node (the gateway's `onAppActivity`). */
    appActivityChanged(appId: string): void {
      // The console's own sockets are not news to it.
      if (appId === app.id) return;
      changedApps.add(appId);
      if (lingering !== undefined) return;
      lingering = setTimeout(() => {
        sendActivity().then(() => {
          failing = false;
        }, failed);
      }, ACTIVITY_LINGER_MS);
      lingering.unref();
    },

    /** A socket of this node joined or left a channel (the gateway's `onLocalSubscriber`). */
    localSubscriberChanged(appId: string, channel: string, delta: 1 | -1): void {
      if (appId !== app.id || channel !== OPERATOR_CHANNEL) return;
      localWatchers = Math.max(0, localWatchers + delta);
      // Said when a console comes and when the last one leaves; in between the renewals say it.
      if (delta === 1 || localWatchers === 0) announce(delta === 1);
    },

    /** Whether a console watches the feed anywhere in the fleet, as this node knows it (memory). */
    watched,

    sampleJobs,

    /** Listens to the other nodes' watchers and starts the readings (cleared by stop). */
    async start(): Promise<void> {
      await options.bus.subscribe(WATCHERS_BUS_CHANNEL, heard);
      const sample = setInterval(() => void sampleJobs(), JOBS_SAMPLE_MS);
      const renew = setInterval(() => {
        if (localWatchers > 0) announce(false);
      }, WATCHERS_RENEW_MS);
      sample.unref();
      renew.unref();
      timers.push(sample, renew);
    },

    async stop(): Promise<void> {
      if (lingering !== undefined) clearTimeout(lingering);
      lingering = undefined;
      for (const timer of timers.splice(0)) clearInterval(timer);
      await options.bus.unsubscribe(WATCHERS_BUS_CHANNEL, heard).catch(() => undefined);
    },
  };

  /** Reads job counts and sends them when they changed; nothing read unless this node pushes them. */
  async function sampleJobs(): Promise<void> {
    if (sampling) return;
    if (!pushesJobs()) {
      // When this node becomes the one that pushes, it sends the counts at its first reading.
      lastJobs = undefined;
      return;
    }
    sampling = true;
    try {
      const queues = await options.jobs.counts(null);
      const text = JSON.stringify(queues);
      if (text !== lastJobs) {
        await send('jobs', { queues });
        lastJobs = text;
      }
      failing = false;
    } catch (error) {
      failed(error);
    } finally {
      sampling = false;
    }
  }
}
export type OperatorFeed = ReturnType<typeof createOperatorFeed>;
