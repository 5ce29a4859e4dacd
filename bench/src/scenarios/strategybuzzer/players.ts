/**
 * The simulated players of the strategybuzzer scenario, on real websockets, with one behaviour on
 * both servers: when a question opens, each presses the buzzer after a random 0–100 ms (people do
 * not press at the same instant), and notes when the first `order` broadcast naming it arrives;
 * the player given the floor (by the order of the first buzz, or by `floor` when it passes on)
 * answers right 500 ms later. Both servers speak the game's protocol as the app does. Socle's players speak the Pusher protocol
 * with pusher-js (as the game's clients do); Colyseus's use its SDK.
 */
import { Client as ColyseusClient, type Room as ColyseusRoom } from '@colyseus/sdk';
import PusherModule from 'pusher-js';
import { BUZZER_APP, ROOM_SIZE } from './game-rules.js';

/** pusher-js's class (its typings describe an ES default export; at run time it is the CJS export). */
type PusherClass = typeof import('pusher-js/types/src/core/pusher.js')['default'];
type PusherJs = InstanceType<PusherClass>;
const Pusher = PusherModule as unknown as PusherClass;

const PRESS_SPREAD_MS = 100;
/**
 * The floor holder answers this long after getting the floor (a person reads the choices): the
 * other players' buzzes of the question, pressed within `PRESS_SPREAD_MS`, are all ordered before
 * the answer closes it, so every player's buzz is measured.
 */
const ANSWER_DELAY_MS = 500;
/** How long a room may take to form and open its first question. */
const START_TIMEOUT_MS = 120_000;

/** The room's `order` message: the floor rides on the order that gave it (the first buzz). */
interface OrderMessage {
  no: number;
  order: string[];
  floor?: { userId: string };
}

/** Where every player's buzz → order latency goes while a step is measured. */
export interface LatencySink {
  recording: boolean;
  readonly samples: number[];
  /** Questions seen by all players (whether recorded or not). */
  questions: number;
}

export interface BenchRoom {
  /** Resolves once every player of the room has seen its first question. */
  readonly started: Promise<void>;
  close(): void;
}

/** One player's game logic, whatever the transport. */
function playerLogic(
  sink: LatencySink,
  me: () => string,
  buzz: (no: number) => void,
  answer: (no: number) => void,
) {
  const pressedAt = new Map<number, number>();
  return {
    question(no: number) {
      sink.questions++;
      setTimeout(() => {
        pressedAt.set(no, performance.now());
        buzz(no);
      }, Math.random() * PRESS_SPREAD_MS);
    },
    order(no: number, order: readonly string[]) {
      const at = pressedAt.get(no);
      if (at === undefined || !order.includes(me())) return;
      pressedAt.delete(no);
      if (sink.recording) sink.samples.push(performance.now() - at);
    },
    floor(no: number, userId: string) {
      if (userId === me()) setTimeout(() => answer(no), ANSWER_DELAY_MS);
    },
  };
}

function timeout(ms: number, what: string) {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms);
  });
  return { promise, clear: () => clearTimeout(timer) };
}

async function postJson(url: string, body: unknown, token?: string): Promise<unknown> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${await response.text()}`);
  return response.status === 204 ? undefined : response.json();
}

/**
 * A room of `ROOM_SIZE` players on Socle's StrategyBuzzer: their accounts (the bench server's
 * `POST /bench/players`, signed in, without a password hash each), a friends' code, play.
 */
export async function socleRoom(baseUrl: string, sink: LatencySink): Promise<BenchRoom> {
  const { players } = (await postJson(`${baseUrl}/bench/players`, { count: ROOM_SIZE })) as {
    players: { userId: string; token: string }[];
  };
  const users = players.map(({ userId, token }) => ({ id: userId, token }));
  const { code } = (await postJson(`${baseUrl}/strategybuzzer/codes`, {}, users[0]?.token)) as {
    code: string;
  };
  const { hostname, port } = new URL(baseUrl);
  const clients: PusherJs[] = [];
  const started: Promise<void>[] = [];
  for (const user of users) {
    const pusher = new Pusher(BUZZER_APP.key, {
      cluster: 'local',
      wsHost: hostname,
      wsPort: Number(port),
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      channelAuthorization: {
        endpoint: `${baseUrl}/realtime/auth`,
        transport: 'ajax',
        headers: { authorization: `Bearer ${user.token}` },
      },
    });
    clients.push(pusher);
    const own = pusher.subscribe(`private-sb-player-${user.id}`);
    await new Promise<void>((resolve) => own.bind('pusher:subscription_succeeded', () => resolve()));
    let roomId = '';
    const logic = playerLogic(
      sink,
      () => user.id,
      (no) => own.trigger('client-buzz', { roomId, no }),
      (no) => own.trigger('client-answer', { roomId, no, choice: 0 }),
    );
    started.push(
      new Promise<void>((resolve) => {
        own.bind('matched', (matched: { roomId: string }) => {
          roomId = matched.roomId;
          const room = pusher.subscribe(`private-sb-room-${roomId}`);
          room.bind('question', ({ no }: { no: number }) => {
            logic.question(no);
            resolve();
          });
          room.bind('order', ({ no, order, floor }: OrderMessage) => {
            logic.order(no, order);
            if (floor !== undefined) logic.floor(no, floor.userId);
          });
          room.bind('floor', ({ no, userId }: { no: number; userId: string }) => logic.floor(no, userId));
        });
      }),
    );
    own.trigger('client-hello', {});
  }
  for (const user of users) {
    try {
      await postJson(`${baseUrl}/strategybuzzer/play`, { mode: 'classic', language: 'fr', code }, user.token);
    } catch (error) {
      // Seated already (a request the HTTP client sent again after a reset connection, on a loaded
      // machine): what `play` asked for is done.
      if (!String(error).includes('strategybuzzer.already_in_room')) throw error;
    }
  }
  const limit = timeout(START_TIMEOUT_MS, 'a Socle room to start');
  return {
    started: Promise.race([Promise.all(started).then(() => undefined), limit.promise]).finally(limit.clear),
    close: () => {
      for (const client of clients) client.disconnect();
    },
  };
}

/** A room of `ROOM_SIZE` players on the Colyseus baseline: one creates the room, the others join it. */
export async function colyseusRoom(baseUrl: string, sink: LatencySink): Promise<BenchRoom> {
  const client = new ColyseusClient(baseUrl);
  const rooms: ColyseusRoom[] = [];
  const started: Promise<void>[] = [];
  const seat = (room: ColyseusRoom) => {
    rooms.push(room);
    const logic = playerLogic(
      sink,
      () => room.sessionId,
      (no) => room.send('buzz', { no }),
      (no) => room.send('answer', { no, choice: 0 }),
    );
    started.push(
      new Promise<void>((resolve) => {
        room.onMessage('question', ({ no }: { no: number }) => {
          logic.question(no);
          resolve();
        });
      }),
    );
    room.onMessage('order', ({ no, order, floor }: OrderMessage) => {
      logic.order(no, order);
      if (floor !== undefined) logic.floor(no, floor.userId);
    });
    room.onMessage('floor', ({ no, userId }: { no: number; userId: string }) => logic.floor(no, userId));
    for (const type of ['answer', 'reveal', 'finished']) room.onMessage(type, () => {});
  };
  const first = await client.create('buzz');
  seat(first);
  for (let index = 1; index < ROOM_SIZE; index++) seat(await client.joinById(first.roomId));
  const limit = timeout(START_TIMEOUT_MS, 'a Colyseus room to start');
  return {
    started: Promise.race([Promise.all(started).then(() => undefined), limit.promise]).finally(limit.clear),
    close: () => {
      for (const room of rooms) void room.leave().catch(() => {});
    },
  };
}
