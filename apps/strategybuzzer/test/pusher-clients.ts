import PusherModule from 'pusher-js';
import type { TestUser } from 'socle/testing';
import type { BuzzerWorld } from './support.js';

/** pusher-js's class (its typings describe an ES default export; at run time it is the CJS export). */
type PusherClass = typeof import('pusher-js/types/src/core/pusher.js')['default'];
export type PusherJs = InstanceType<PusherClass>;
type Channel = ReturnType<PusherJs['subscribe']>;
const Pusher = PusherModule as unknown as PusherClass;

/** A pusher-js client of `user` on the listening server at `baseUrl`, as the web client makes it. */
export function pusherFor(world: BuzzerWorld, baseUrl: string, user: Pick<TestUser, 'token'>): PusherJs {
  return pusherClient(world.app.appKey, baseUrl, user);
}

/** The same, for the realtime app `appKey` (a node of a fleet test, no world). */
export function pusherClient(appKey: string, baseUrl: string, user: Pick<TestUser, 'token'>): PusherJs {
  const url = new URL(baseUrl);
  return new Pusher(appKey, {
    cluster: 'local',
    wsHost: url.hostname,
    wsPort: Number(url.port),
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      endpoint: `${baseUrl}/realtime/auth`,
      transport: 'ajax',
      headers: { authorization: `Bearer ${user.token}` },
    },
  });
}

/** Subscribes and waits until the server accepted the subscription. */
export async function subscribed(client: PusherJs, name: string): Promise<Channel> {
  const channel = client.subscribe(name);
  await new Promise<void>((resolve, reject) => {
    channel.bind('pusher:subscription_succeeded', () => resolve());
    channel.bind('pusher:subscription_error', (error: unknown) =>
      reject(new Error(`subscription to ${name} refused: ${JSON.stringify(error)}`)),
    );
  });
  return channel;
}

/** Every `event` the channel receives, in order, from now on. */
export function collect<T>(channel: Channel, event: string): T[] {
  const received: T[] = [];
  channel.bind(event, (data: T) => received.push(data));
  return received;
}
