import type Pusher from 'pusher-js';
import { api } from './api.js';

declare global {
  interface Window {
    /** pusher-js, loaded from the realtime module's copy (`/realtime/client/pusher.min.js`). */
    Pusher?: typeof Pusher;
  }
}

/** The route telling where the operator feed is: present when the realtime module is loaded. */
export const FEED_ROUTE = '/operator/realtime/feed';
/** The route telling an organization's admins where its own feed is (same module). */
export const ORG_FEED_ROUTE = '/org/realtime/feed';

/**
 * Which feed to follow: the operator's (every organization, the operator token), or an
 * organization's (its admins: its job counts, its apps, its payment events; `X-Org-Id`).
 */
export type FeedTarget = { readonly operator: true } | { readonly operator: false; readonly orgId: string };
/** The client the realtime module serves (no CDN, allowed by the CSP's `script-src 'self'`). */
const PUSHER_SCRIPT = '/realtime/client/pusher.min.js';

export type LiveListener = (event: string, data: unknown) => void;

/**
 * Events pushed by Socle's own realtime gateway on the operator's or the organization's channel:
 * `jobs` (job counts), `realtime` (apps whose sockets, channels or presence changed) and
 * `payments` (a provider event applied or failed). Pages listen instead of polling.
 */
export interface LiveFeed {
  listen(listener: LiveListener): () => void;
}

function loadPusher(): Promise<typeof Pusher> {
  if (window.Pusher) return Promise.resolve(window.Pusher);
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = PUSHER_SCRIPT;
    script.onload = () => (window.Pusher ? resolve(window.Pusher) : reject(new Error('pusher-js missing')));
    script.onerror = () => reject(new Error(`${PUSHER_SCRIPT} could not be loaded`));
    document.head.append(script);
  });
}

/**
 * Connects to the operator feed (operator token) or an organization's (its admin): the app key and
 * channel from the API, pusher-js to this origin's gateway, the channel authorized by
 * `POST /operator/realtime/auth` (or `/org/realtime/feed/auth`, for that organization only). Resolves once
 * subscribed. `onConnected(false)` when the connection is lost (pusher-js keeps trying; pages then
 * poll), `onConnected(true)` when it is back (pusher-js subscribes again; pages read afresh).
 */
export async function connectLiveFeed(
  target: FeedTarget,
  onConnected: (connected: boolean) => void,
): Promise<{ feed: LiveFeed; close(): void }> {
  const orgOption = target.operator ? {} : { orgId: target.orgId };
  const authRoute = target.operator ? '/operator/realtime/auth' : `${ORG_FEED_ROUTE}/auth`;
  const [PusherClass, where] = await Promise.all([
    loadPusher(),
    api<{ key: string; channel: string }>(target.operator ? FEED_ROUTE : ORG_FEED_ROUTE, orgOption),
  ]);
  const secure = location.protocol === 'https:';
  const port = Number(location.port || (secure ? 443 : 80));
  const pusher = new PusherClass(where.key, {
    cluster: 'local',
    wsHost: location.hostname,
    wsPort: port,
    wssPort: port,
    forceTLS: secure,
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
    channelAuthorization: {
      // Through the console's own API client: the operator token header, problem+json errors.
      customHandler: ({ socketId, channelName }, callback) => {
        api<{ auth: string }>(authRoute, {
          ...orgOption,
          method: 'POST',
          body: { socket_id: socketId, channel_name: channelName },
        }).then(
          (data) => callback(null, data),
          (error: Error) => callback(error, null),
        );
      },
    },
  });
  const listeners = new Set<LiveListener>();
  const channel = pusher.subscribe(where.channel);
  channel.bind_global((event: string, data: unknown) => {
    if (event.startsWith('pusher:')) return;
    for (const listener of listeners) listener(event, data);
  });
  await new Promise<void>((resolve, reject) => {
    channel.bind('pusher:subscription_succeeded', () => resolve());
    channel.bind('pusher:subscription_error', () => reject(new Error('operator feed refused')));
  }).catch((error: unknown) => {
    pusher.disconnect();
    throw error;
  });
  pusher.connection.bind('state_change', ({ current }: { current: string }) => {
    if (current === 'connected' || current === 'unavailable' || current === 'failed')
      onConnected(current === 'connected');
  });
  return {
    feed: {
      listen(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    },
    close: () => pusher.disconnect(),
  };
}
