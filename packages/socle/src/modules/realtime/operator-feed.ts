import {
  isRedisUnavailable,
  type JobQueueCounts,
  type Jobs,
  type Logger,
  type SecretBox,
  type SharedState,
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
 * event: job counts (read every second while the channel is occupied somewhere in the fleet, sent
 * when they changed) and the realtime apps whose activity changed on this node (gathered for
 * 200 ms). Each node sends its own changes; job counts read by several nodes may arrive more than
 * once, alike (the console keeps the last).
 */
export function createOperatorFeed(options: {
  readonly app: RealtimeApp;
  readonly publish: (input: PublishInput) => Promise<void>;
  readonly fleetConnectionCount: (appId: string) => Promise<number>;
  readonly state: Pick<SharedState, 'channels'>;
  readonly jobs: Pick<Jobs, 'counts'>;
  readonly log: Logger;
}) {
  const { app, log } = options;
  const changedApps = new Set<string>();
  let lingering: NodeJS.Timeout | undefined;
  let lastJobs: string | undefined;
  let sampling = false;
  let failing = false;

  const watched = async () => (await options.state.channels(app.id)).has(OPERATOR_CHANNEL);
  const send = <E extends keyof OperatorFeedEvents>(event: E, data: OperatorFeedEvents[E]) =>
    options.publish({ app, channels: [OPERATOR_CHANNEL], event, data });
  /**
   * Logs the first failure of a series only; never a Redis outage, which the kernel's connections
   * log once themselves (the watch check reads the shared state every second).
   */
  const failed = (error: unknown) => {
    if (!failing && !isRedisUnavailable(error))
      log.warn({ err: error }, 'Realtime operator feed could not be sent');
    failing = true;
  };

  async function sendActivity() {
    lingering = undefined;
    const appIds = [...changedApps];
    changedApps.clear();
    if (!(await watched())) return;
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

    sampleJobs,

    /** Starts reading job counts every second; returns the timer for onStop to clear. */
    start(): NodeJS.Timeout {
      const timer = setInterval(() => void sampleJobs(), JOBS_SAMPLE_MS);
      timer.unref();
      return timer;
    },

    stop(): void {
      if (lingering !== undefined) clearTimeout(lingering);
      lingering = undefined;
    },
  };

  /** Reads job counts and sends them when they changed; skipped while nobody watches. */
  async function sampleJobs(): Promise<void> {
    if (sampling) return;
    sampling = true;
    try {
      if (!(await watched())) {
        // A new watcher gets the counts at the first reading.
        lastJobs = undefined;
        return;
      }
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
