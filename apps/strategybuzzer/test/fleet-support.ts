import net from 'node:net';
import type { TestUser } from 'socle/testing';
import { type PusherJs, pusherClient } from './pusher-clients.js';

export const redisUrl = process.env.SOCLE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether Redis answers (the fleet tests need it, as they need Postgres). */
export async function redisReason(): Promise<string | undefined> {
  if (process.env.SOCLE_TEST_REDIS === 'off') return 'SOCLE_TEST_REDIS=off';
  const url = new URL(redisUrl);
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = net.connect(Number(url.port || 6379), url.hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  if (reachable) return undefined;
  if (process.env.CI || process.env.SOCLE_TEST_REDIS === 'required')
    throw new Error(`Redis ${redisUrl} is down`);
  return `no Redis at ${redisUrl}`;
}

/** A player: a pusher-js client connected to one node, their channels, what they received. */
export interface FleetPlayer {
  readonly user: TestUser;
  readonly pusher: PusherJs;
  readonly received: { channel: string; event: string; data: Record<string, unknown> }[];
  roomId: string | undefined;
  trigger(event: string, data: object): void;
}

/** A player on the node at `baseUrl`: signed in, their own channel joined, hello said. */
export async function connectPlayer(baseUrl: string, appKey: string, user: TestUser): Promise<FleetPlayer> {
  const pusher = pusherClient(appKey, baseUrl, user);
  const own = `private-sb-player-${user.userId}`;
  const player: FleetPlayer = {
    user,
    pusher,
    received: [],
    roomId: undefined,
    trigger: (event, data) => pusher.channel(own)?.trigger(event, { roomId: player.roomId, ...data }),
  };
  const record = (channel: string) => (event: string, data: Record<string, unknown>) => {
    if (!event.startsWith('pusher')) player.received.push({ channel, event, data });
  };
  const ownChannel = pusher.subscribe(own);
  ownChannel.bind_global(record('player'));
  await new Promise<void>((resolve) => ownChannel.bind('pusher:subscription_succeeded', () => resolve()));
  ownChannel.bind('matched', ({ roomId }: { roomId: string }) => {
    player.roomId = roomId;
    pusher.subscribe(`private-sb-room-${roomId}`).bind_global(record('room'));
    pusher.subscribe(`private-sb-chat-${roomId}`).bind_global(record('chat'));
  });
  ownChannel.trigger('client-hello', {});
  return player;
}

/** The events `player` got on `channel` named `event`. */
export const eventsOf = (player: FleetPlayer, channel: string, event: string) =>
  player.received.filter((received) => received.channel === channel && received.event === event);
