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
/** Prefix of an organization's feed channel (its admins' console), followed by the org id. */
const ORG_CHANNEL_PREFIX = 'private-socle-org-';
/** The private channel of an organization's feed: its job counts, its apps' activity, its payment events. */
export const orgFeedChannel = (orgId: string): string => `${ORG_CHANNEL_PREFIX}${orgId}`;
/** The organization of a feed channel, or undefined for any other channel. */
const orgOfFeedChannel = (channel: string): string | undefined =>
  channel.startsWith(ORG_CHANNEL_PREFIX) ? channel.slice(ORG_CHANNEL_PREFIX.length) : undefined;

/** How often job counts are read while someone watches the feed. */
const JOBS_SAMPLE_MS = 1000;
/** How long activity changes of apps are gathered before one `realtime` event tells them. */
const ACTIVITY_LINGER_MS = 200;
/** Bus channel where nodes tell which apps' activity changed on them, for the node that pushes it. */
const ACTIVITY_BUS_CHANNEL = 'socle-operator-feed:activity';
/** Bus channel where nodes say whether a console watches the feed through them. */
const WATCHERS_BUS_CHANNEL = 'socle-operator-feed:watchers';
/** A node's word that it has watchers holds this long (a node that died stops counting then). */
const WATCHERS_EXPIRY_MS = 15_000;
/** A node with watchers says so again this often, well within the expiry. */
const WATCHERS_RENEW_MS = 5_000;

/** What a node publishes on {@link ACTIVITY_BUS_CHANNEL}: apps whose activity changed on it. */
interface ActivityMessage {
  readonly apps: readonly string[];
}

/** A message of another node on the bus, or undefined when it is not JSON (its fields still to check). */
function parseBusMessage<T>(text: string): Partial<T> | undefined {
  try {
    return JSON.parse(text) as Partial<T>;
  } catch {
    return undefined;
  }
}

/** What a node publishes on {@link WATCHERS_BUS_CHANNEL}. */
interface WatchersMessage {
  readonly node: string;
  /** Consoles subscribed to the operator channel through this node now. */
  readonly watchers: number;
  /** Organizations whose feed channel a console (an admin's) watches through this node now. */
  readonly orgs?: readonly string[];
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
  /** A provider event was received and applied, or failed (the payments module tells it, after its commit). */
  readonly payments: {
    readonly provider: string;
    readonly eventId: string;
    readonly status: 'applied' | 'failed';
  };
}

/** What a module tells the consoles watching: the operator's, and the organization's admins' when it names one. */
export interface ConsoleNotice<E extends keyof OperatorFeedEvents = keyof OperatorFeedEvents> {
  readonly event: E;
  /** The organization it is about (its admins' feed gets it too), or null (the operator's only). */
  readonly orgId: string | null;
  readonly data: OperatorFeedEvents[E];
}

/**
 * Pushes what an operator watches live to the operator channel, through the gateway like any
 * event: job counts (read every second while a console watches somewhere in the fleet, sent when
 * they changed, by one node) and the realtime apps whose activity changed (gathered for 200 ms
 * where it changed, told on the bus, gathered 200 ms more and sent by that same one node: one
 * event for the fleet however many nodes saw the change).
 *
 * Whether anyone watches costs no reading: each node counts the consoles subscribed through it
 * (the gateway tells it) and says so on the bus when one comes or the last leaves, and again
 * every 5 s while it has some; a word expires after 15 s (a node that died). Every node thus
 * knows, in memory, which nodes have watchers; nobody watching, the feed reads nothing. Of the
 * nodes with watchers, the one with the smallest id reads and pushes the job counts and the apps'
 * activity (one push per change for the whole fleet; a push is delivered to every node with a
 * console by the bus).
 */
export function createOperatorFeed(options: {
  readonly app: RealtimeApp;
  readonly publish: (input: PublishInput) => Promise<void>;
  readonly fleetConnectionCount: (appId: string) => Promise<number>;
  /** The organization an app belongs to (null: the configured app, an internal one). */
  readonly orgOfApp: (appId: string) => Promise<string | null>;
  readonly bus: Pick<Bus, 'publish' | 'subscribe' | 'unsubscribe'>;
  /** This node's id in the shared state (unique in the fleet). */
  readonly nodeId: string;
  readonly now: () => number;
  readonly jobs: Pick<Jobs, 'counts'>;
  readonly log: Logger;
}) {
  const { app, log, nodeId, now } = options;
  /** Apps whose activity changed on this node, not yet told on the bus. */
  const changedApps = new Set<string>();
  let lingering: NodeJS.Timeout | undefined;
  /** Apps whose activity changed on some node (told on the bus), not yet sent to the consoles. */
  const heardApps = new Set<string>();
  let heardLingering: NodeJS.Timeout | undefined;
  let lastJobs: string | undefined;
  let sampling = false;
  let failing = false;
  /** Consoles subscribed to the operator channel through this node. */
  let localWatchers = 0;
  /** Consoles subscribed to an organization's feed channel through this node, by organization. */
  const localOrgWatchers = new Map<string, number>();
  /** The job counts last sent to each organization's channel. */
  const lastOrgJobs = new Map<string, string>();
  /** Nodes with watchers (this one included), until when their word holds, and the organizations they watch. */
  const watchingNodes = new Map<string, { until: number; operator: boolean; orgs: readonly string[] }>();
  const timers: NodeJS.Timeout[] = [];

  /** Nodes whose word still holds (memory only). */
  const liveNodes = () => {
    const time = now();
    for (const [node, word] of watchingNodes) if (word.until <= time) watchingNodes.delete(node);
    return watchingNodes;
  };
  /** Whether the operator's console watches anywhere in the fleet: memory only. */
  const watched = () => [...liveNodes().values()].some((word) => word.operator);
  /** Organizations whose feed a console watches anywhere in the fleet. */
  const watchedOrgs = () => new Set([...liveNodes().values()].flatMap((word) => word.orgs));
  /**
   * Whether this node pushes the job counts and apps' activity of the operator's feed (`orgId`
   * null) or of an organization's: the smallest id among the nodes a console of that feed watches
   * through.
   */
  const pushesFeed = (orgId: string | null) => {
    const watching = [...liveNodes()].filter(([, word]) =>
      orgId === null ? word.operator : word.orgs.includes(orgId),
    );
    return (
      watching.length > 0 &&
      watching.every(([node]) => node >= nodeId) &&
      watching.some(([node]) => node === nodeId)
    );
  };
  const send = <E extends keyof OperatorFeedEvents>(
    event: E,
    data: OperatorFeedEvents[E],
    channels: readonly string[] = [OPERATOR_CHANNEL],
  ) => options.publish({ app, channels, event, data });
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
    const message: WatchersMessage = {
      node: nodeId,
      watchers: localWatchers,
      orgs: [...localOrgWatchers.keys()],
      joined,
    };
    options.bus.publish(WATCHERS_BUS_CHANNEL, JSON.stringify(message)).catch(failed);
  };
  const heard = (text: string) => {
    const message = parseBusMessage<WatchersMessage>(text);
    if (typeof message?.node !== 'string') return;
    const orgs = Array.isArray(message.orgs) ? message.orgs.filter((org) => typeof org === 'string') : [];
    const operator = typeof message.watchers === 'number' && message.watchers > 0;
    if (operator || orgs.length > 0)
      watchingNodes.set(message.node, {
        until: now() + WATCHERS_EXPIRY_MS,
        operator,
        orgs,
      });
    else watchingNodes.delete(message.node);
    // A new watcher gets the counts at the next reading, whichever node reads them.
    if (message.joined) {
      lastJobs = undefined;
      lastOrgJobs.clear();
    }
  };

  /** Tells the fleet which apps' activity changed on this node, when a console watches anywhere. */
  async function tellActivity() {
    lingering = undefined;
    const apps = [...changedApps];
    changedApps.clear();
    if (!watched() && watchedOrgs().size === 0) return;
    const message: ActivityMessage = { apps };
    await options.bus.publish(ACTIVITY_BUS_CHANNEL, JSON.stringify(message));
  }

  /** A node told of apps whose activity changed: the node that pushes gathers them, then sends. */
  const heardActivity = (text: string) => {
    const apps = parseBusMessage<ActivityMessage>(text)?.apps;
    if (!Array.isArray(apps)) return;
    for (const appId of apps) if (typeof appId === 'string') heardApps.add(appId);
    if (heardLingering !== undefined || heardApps.size === 0) return;
    heardLingering = setTimeout(() => {
      sendActivity().then(() => {
        failing = false;
      }, failed);
    }, ACTIVITY_LINGER_MS);
    heardLingering.unref();
  };

  /** Sends the apps heard of to the feeds this node pushes: the operator's, each organization's its own. */
  async function sendActivity() {
    heardLingering = undefined;
    const appIds = [...heardApps];
    heardApps.clear();
    const operator = pushesFeed(null);
    const orgs = [...watchedOrgs()].filter((orgId) => pushesFeed(orgId));
    if (!operator && orgs.length === 0) return;
    const apps = await Promise.all(
      appIds.map(async (appId) => ({
        appId,
        orgId: await options.orgOfApp(appId),
        connections: await options.fleetConnectionCount(appId),
      })),
    );
    const sends: Promise<void>[] = [];
    if (operator)
      sends.push(send('realtime', { apps: apps.map(({ appId, connections }) => ({ appId, connections })) }));
    // An organization's admins hear of its own apps only.
    for (const orgId of orgs) {
      const own = apps.filter((entry) => entry.orgId === orgId);
      if (own.length > 0)
        sends.push(
          send('realtime', { apps: own.map(({ appId, connections }) => ({ appId, connections })) }, [
            orgFeedChannel(orgId),
          ]),
        );
    }
    await Promise.all(sends);
  }

  return {
    /** An app's activity changed on this node (the gateway's `onAppActivity`). */
    appActivityChanged(appId: string): void {
      // The console's own sockets are not news to it.
      if (appId === app.id) return;
      changedApps.add(appId);
      if (lingering !== undefined) return;
      lingering = setTimeout(() => {
        tellActivity().then(() => {
          failing = false;
        }, failed);
      }, ACTIVITY_LINGER_MS);
      lingering.unref();
    },

    /** A socket of this node joined or left a channel (the gateway's `onLocalSubscriber`). */
    localSubscriberChanged(appId: string, channel: string, delta: 1 | -1): void {
      if (appId !== app.id) return;
      const orgId = orgOfFeedChannel(channel);
      let left: number;
      if (channel === OPERATOR_CHANNEL) left = localWatchers = Math.max(0, localWatchers + delta);
      else if (orgId !== undefined) {
        left = Math.max(0, (localOrgWatchers.get(orgId) ?? 0) + delta);
        if (left === 0) localOrgWatchers.delete(orgId);
        else localOrgWatchers.set(orgId, left);
      } else return;
      // Said when a console comes and when the last one of a feed leaves; in between the renewals say it.
      if (delta === 1 || left === 0) announce(delta === 1);
    },

    /**
     * Tells the consoles watching: the operator's, and the organization's admins' when the notice
     * names one, through the gateway like any event; never throws (a lost notice only delays a
     * page's reading). A feed nobody watches costs nothing (a notice comes with every payment
     * event: up to hundreds a second): whether one watches is known in memory, from this node's
     * own subscribers (at once) and the other nodes' word on the bus.
     */
    async notify(notice: ConsoleNotice): Promise<void> {
      const channels: string[] = [];
      if (localWatchers > 0 || watched()) channels.push(OPERATOR_CHANNEL);
      if (notice.orgId !== null && (localOrgWatchers.has(notice.orgId) || watchedOrgs().has(notice.orgId)))
        channels.push(orgFeedChannel(notice.orgId));
      if (channels.length === 0) return;
      await send(notice.event, notice.data, channels).catch(failed);
    },

    /** Whether a console watches the feed anywhere in the fleet, as this node knows it (memory). */
    watched,

    sampleJobs,

    /** Listens to the other nodes' watchers and starts the readings (cleared by stop). */
    async start(): Promise<void> {
      await options.bus.subscribe(WATCHERS_BUS_CHANNEL, heard);
      await options.bus.subscribe(ACTIVITY_BUS_CHANNEL, heardActivity);
      const sample = setInterval(() => void sampleJobs(), JOBS_SAMPLE_MS);
      const renew = setInterval(() => {
        if (localWatchers > 0 || localOrgWatchers.size > 0) announce(false);
      }, WATCHERS_RENEW_MS);
      sample.unref();
      renew.unref();
      timers.push(sample, renew);
    },

    async stop(): Promise<void> {
      if (lingering !== undefined) clearTimeout(lingering);
      if (heardLingering !== undefined) clearTimeout(heardLingering);
      lingering = undefined;
      heardLingering = undefined;
      for (const timer of timers.splice(0)) clearInterval(timer);
      await options.bus.unsubscribe(WATCHERS_BUS_CHANNEL, heard).catch(() => undefined);
      await options.bus.unsubscribe(ACTIVITY_BUS_CHANNEL, heardActivity).catch(() => undefined);
    },
  };

  /**
   * Reads job counts and sends them when they changed: every queue's to the operator's channel,
   * an organization's own to its channel (`jobs.counts(orgId)`, its rows only); nothing read for a
   * feed unless this node pushes it.
   */
  async function sampleJobs(): Promise<void> {
    if (sampling) return;
    const operator = pushesFeed(null);
    // When this node becomes the one that pushes, it sends the counts at its first reading.
    if (!operator) lastJobs = undefined;
    const orgs = [...watchedOrgs()].filter((orgId) => pushesFeed(orgId));
    for (const orgId of lastOrgJobs.keys()) if (!orgs.includes(orgId)) lastOrgJobs.delete(orgId);
    if (!operator && orgs.length === 0) return;
    sampling = true;
    try {
      if (operator) {
        const queues = await options.jobs.counts(null);
        const text = JSON.stringify(queues);
        if (text !== lastJobs) {
          await send('jobs', { queues });
          lastJobs = text;
        }
      }
      for (const orgId of orgs) {
        const queues = await options.jobs.counts(orgId);
        const text = JSON.stringify(queues);
        if (text !== lastOrgJobs.get(orgId)) {
          await send('jobs', { queues }, [orgFeedChannel(orgId)]);
          lastOrgJobs.set(orgId, text);
        }
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
