import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock, LatencyEstimate, Logger, RateLimiter, Realtime, ReceivedClientEvent } from 'socle';
import { buzzerErrors } from './buzzer.errors.js';
import type { BuzzerSettings } from './buzzer.settings.js';
import type { BuzzerStore, ChatMessage } from './buzzer.store.js';
import type { Coins } from './coins.js';
import { createRoom, type Room, type RoomEvent } from './game.js';
import { createMatchmaker, type Ticket } from './matchmaker.js';

/** The channels of the game (declared with their authorizers in the module). */
export const channels = {
  player: (userId: string) => `private-sb-player-${userId}`,
  room: (roomId: string) => `private-sb-room-${roomId}`,
  chat: (roomId: string) => `private-sb-chat-${roomId}`,
};
const PLAYER_CHANNEL = /^private-sb-player-([0-9a-f-]{36})$/;

export interface PlayInput {
  readonly mode: 'classic' | 'premium';
  readonly language: string;
  readonly region?: string | undefined;
  readonly code?: string | undefined;
}

interface RoomEntry {
  readonly room: Room;
  readonly tickets: readonly Ticket[];
  readonly startedAt: Date;
  /** Events of the room leave in the order the room emitted them. */
  publishing: Promise<void>;
  /** When a finished room is forgotten (monotonic ms). */
  dropAt: number | undefined;
}

/** How long a finished room's results stay readable by its players. */
const FINISHED_ROOM_KEPT_MS = 60_000;
/** Recent chat messages sent to a player who joins. */
export const CHAT_HISTORY = 50;

export interface BuzzerServiceOptions {
  readonly store: BuzzerStore;
  readonly coins: Coins;
  readonly realtime: Realtime;
  readonly rateLimiter: RateLimiter;
  readonly clock: Clock;
  readonly log: Logger;
  readonly settings: BuzzerSettings;
  /** The monotonic clock buzzes are ordered on: `monotonicNow` of Socle (tests pass their own). */
  readonly now: () => number;
}

/**
 * The game on this node: tickets and the matchmaker, the rooms it hosts, the players' sockets,
 * and what players send over them (buzz, answer, chat) handled as Socle's realtime module hands
 * it over, with the arrival instant and the connection's measured latency.
 */
export function createBuzzerService(options: BuzzerServiceOptions) {
  const { store, coins, realtime, settings, log, clock, now } = options;
  const regions = settings.regions
    .split(',')
    .map((region) => region.trim())
    .filter(Boolean);
  const matchmaker = createMatchmaker({
    roomSize: settings.roomSize,
    minPlayers: settings.minPlayers,
    waitMs: settings.matchWaitSeconds * 1000,
  });
  const rooms = new Map<string, RoomEntry>();
  /** The room each player sits in (until it ends): a player is never in two. */
  const seats = new Map<string, string>();
  /** The room each player last played in, kept while its results are (`FINISHED_ROOM_KEPT_MS`). */
  const lastRooms = new Map<string, string>();
  /** The socket each player last said hello from. */
  const sockets = new Map<string, string>();
  /** Seated players whose socket closed, and when their seat goes (monotonic ms). */
  const away = new Map<string, number>();
  let starting = Promise.resolve();

  const publish = (channel: string, event: string, data: unknown) =>
    realtime
      .publish({ channel, event, data })
      .catch((error) => log.warn({ err: error, channel }, 'Publish failed'));

  const tellPlayer = (userId: string, event: string, data: unknown) =>
    publish(channels.player(userId), event, data);

  function emitFor(roomId: string) {
    return (event: RoomEvent) => {
      const entry = rooms.get(roomId);
      const send = () => publish(channels.room(roomId), event.type, event);
      if (entry === undefined) void send();
      else entry.publishing = entry.publishing.then(send);
      if (event.type === 'finished') void finish(roomId);
    };
  }

  async function finish(roomId: string) {
    const entry = rooms.get(roomId);
    if (entry === undefined) return;
    entry.dropAt = now() + FINISHED_ROOM_KEPT_MS;
    for (const userId of entry.room.players()) {
      if (seats.get(userId) === roomId) seats.delete(userId);
      lastRooms.set(userId, roomId);
    }
    const first = entry.tickets[0] as Ticket;
    try {
      await store.saveGame({
        id: roomId,
        region: first.region,
        mode: first.mode,
        language: first.language,
        code: first.code,
        startedAt: entry.startedAt,
        endedAt: clock.now(),
        results: entry.room.results(),
      });
    } catch (error) {
      log.error({ err: error, roomId }, 'The results of a game could not be saved');
    }
  }

  /** Makes a room of matched tickets: its questions, the entry fees taken, the players told. */
  async function startRoom(tickets: Ticket[]) {
    const roomId = randomUUID();
    for (const ticket of tickets) seats.set(ticket.userId, roomId);
    const first = tickets[0] as Ticket;
    const level = Math.round(tickets.reduce((sum, ticket) => sum + ticket.level, 0) / tickets.length);
    let players = tickets;
    try {
      const questions = await store.pickQuestions(first.language, level, settings.questionsPerGame);
      // Premium entry: the held coins are taken now; a hold that cannot be posted (expired)
      // leaves its player out of the room.
      const paid = await Promise.all(
        tickets.map(async (ticket) => {
          if (ticket.holdId === undefined) return true;
          try {
            await coins.post(ticket.userId, ticket.holdId);
            return true;
          } catch (error) {
            log.warn({ err: error, userId: ticket.userId }, 'Premium entry could not be taken');
            return false;
          }
        }),
      );
      players = tickets.filter((_, index) => paid[index]);
      for (const ticket of tickets) if (!players.includes(ticket)) seats.delete(ticket.userId);
      if (questions.length === 0 || players.length === 0) throw buzzerErrors.noQuestions(first.language);
      const room = createRoom({
        id: roomId,
        players: players.map(({ userId, name }) => ({ userId, name })),
        questions,
        timings: {
          startDelayMs: settings.startDelayMs,
          questionMs: settings.questionSeconds * 1000,
          answerMs: settings.answerSeconds * 1000,
          revealMs: settings.revealMs,
        },
        fairness: { compensate: settings.latencyCompensation, maxCompensationMs: settings.maxCompensationMs },
        now,
        emit: emitFor(roomId),
      });
      rooms.set(roomId, {
        room,
        tickets: players,
        startedAt: clock.now(),
        publishing: Promise.resolve(),
        dropAt: undefined,
      });
      const snapshot = room.snapshot();
      await Promise.all(
        players.map((ticket) =>
          tellPlayer(ticket.userId, 'matched', {
            roomId,
            players: snapshot.scores,
            remainingMs: settings.startDelayMs,
          }),
        ),
      );
    } catch (error) {
      for (const ticket of players) if (seats.get(ticket.userId) === roomId) seats.delete(ticket.userId);
      log.error({ err: error, roomId }, 'A room could not start');
      await Promise.all(
        players.map((ticket) => tellPlayer(ticket.userId, 'error', { code: 'strategybuzzer.room_failed' })),
      );
    }
  }

  function seatedRoom(userId: string, roomId?: string): RoomEntry {
    const current = seats.get(userId);
    const entry = current === undefined ? undefined : rooms.get(current);
    if (entry === undefined || (roomId !== undefined && roomId !== current)) throw buzzerErrors.notInRoom();
    return entry;
  }

  const service = {
    regions,

    /** The player's profile, made on first sight. */
    profile: (userId: string, name?: string) =>
      store.ensurePlayer(userId, name ?? `player-${userId.slice(0, 6)}`, clock.now()),

    /** Asks to play: a ticket in the matchmaker (the one the player holds if any). */
    async play(userId: string, input: PlayInput, name?: string): Promise<Ticket> {
      const inRoom = seats.get(userId);
      if (inRoom !== undefined) throw buzzerErrors.inRoom(inRoom);
      const existing = matchmaker.ticketOf(userId);
      if (existing !== undefined) return existing;
      const region = input.region ?? (regions[0] as string);
      if (!regions.includes(region)) throw buzzerErrors.badRegion(region, regions);
      if ((await store.countQuestions(input.language)) === 0) throw buzzerErrors.noQuestions(input.language);
      const player = await service.profile(userId, name);
      const id = randomUUID();
      let holdId: string | undefined;
      if (input.mode === 'premium') {
        holdId = `entry:${id}`;
        await coins.hold(userId, holdId, settings.premiumEntryCoins);
      }
      const ticket = matchmaker.add({
        id,
        userId,
        name: player.name,
        region,
        mode: input.mode,
        language: input.language,
        level: player.level,
        code: input.code,
        createdAt: now(),
        holdId,
      });
      // Raced by another request of the same player: give back what this one held.
      if (ticket.id !== id && holdId !== undefined) await coins.release(userId, holdId);
      return ticket;
    },

    /** Leaves the queue; a held entry fee comes back. */
    async cancel(userId: string): Promise<boolean> {
      const ticket = matchmaker.remove(userId);
      if (ticket?.holdId !== undefined) await coins.release(userId, ticket.holdId);
      return ticket !== undefined;
    },

    /** A new friends' room code to share. */
    newCode: () => randomBytes(4).toString('hex').slice(0, 6).toUpperCase(),

    /** Where the player is: their ticket, or their room drawn again (a reconnection resyncs with this). */
    current(userId: string) {
      const ticket = matchmaker.ticketOf(userId);
      const roomId = seats.get(userId) ?? lastRooms.get(userId);
      const entry = roomId === undefined ? undefined : rooms.get(roomId);
      return {
        ticket:
          ticket === undefined
            ? null
            : { id: ticket.id, mode: ticket.mode, region: ticket.region, code: ticket.code ?? null },
        room: entry === undefined ? null : entry.room.snapshot(),
        channels: {
          player: channels.player(userId),
          ...(entry === undefined || roomId === undefined
            ? {}
            : { room: channels.room(roomId), chat: channels.chat(roomId) }),
        },
      };
    },

    /** A room the player sits in, or played in (results readable for a while after the end). */
    canWatch: (userId: string, roomId: string) => rooms.get(roomId)?.room.has(userId) ?? false,

    /** A buzz, as it arrived: `receivedAt` on the server's monotonic clock, with the socket's latency. */
    async buzz(
      userId: string,
      roomId: string,
      no: number,
      receivedAt: number,
      latency: LatencyEstimate | undefined,
    ) {
      const entry = seatedRoom(userId, roomId);
      const allowed = await options.rateLimiter.consume(`sb-buzz:${userId}`, { limit: 3, windowMs: 1000 });
      if (!allowed.allowed) throw buzzerErrors.buzzTooFast();
      const result = entry.room.buzz(userId, no, receivedAt, latency);
      if (!result.ok) throw buzzerErrors.refused(result.reason);
      schedule(entry);
    },

    answer(userId: string, roomId: string, no: number, choice: number) {
      const result = seatedRoom(userId, roomId).room.answer(userId, no, choice);
      if (!result.ok) throw buzzerErrors.refused(result.reason);
      return result.correct;
    },

    /** A hint for the player holding the floor: two wrong choices struck out, for coins. */
    async hint(userId: string, roomId: string, no: number): Promise<number[]> {
      const { room } = seatedRoom(userId, roomId);
      const refusal = room.canHint(userId, no);
      if (refusal !== undefined) throw buzzerErrors.refused(refusal);
      await coins.spend(userId, `hint:${roomId}:${no}:${userId}`, settings.hintCoins, 'hint');
      void tellPlayer(userId, 'coins', { balance: await coins.balance(userId) });
      return room.hint(userId, no);
    },

    /** A chat line in the player's room: checked, limited, kept, sent to the room's chat channel. */
    async chat(userId: string, roomId: string, body: string): Promise<ChatMessage> {
      seatedRoom(userId, roomId);
      const text = body.trim();
      if (text === '' || text.length > settings.chatMaxLength)
        throw buzzerErrors.badMessage(`A chat message has 1 to ${settings.chatMaxLength} characters`);
      const allowed = await options.rateLimiter.consume(`sb-chat:${userId}`, { limit: 5, windowMs: 10_000 });
      if (!allowed.allowed) throw buzzerErrors.chatTooFast();
      const player = await service.profile(userId);
      const message = {
        id: randomUUID(),
        roomId,
        userId,
        name: player.name,
        body: text,
        createdAt: clock.now(),
      };
      await store.addChat(message);
      await publish(channels.chat(roomId), 'message', {
        ...message,
        createdAt: message.createdAt.toISOString(),
      });
      return message;
    },

    lastChat: (roomId: string) => store.lastChat(roomId, CHAT_HISTORY),

    /** What a player's socket sent on their own channel (`client-hello`, `-buzz`, `-answer`, `-chat`, `-hint`). */
    async onClientEvent(event: ReceivedClientEvent): Promise<void> {
      const userId = PLAYER_CHANNEL.exec(event.channel)?.[1];
      if (userId === undefined) return;
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(event.data) ?? {};
      } catch {
        data = {};
      }
      const roomId = typeof data.roomId === 'string' ? data.roomId : '';
      const no = typeof data.no === 'number' ? data.no : -1;
      try {
        switch (event.event) {
          case 'client-hello':
            sockets.set(userId, event.socketId);
            away.delete(userId); // back in time: the seat is theirs
            realtime.probeLatency(event.socketId, 5);
            return;
          case 'client-buzz':
            sockets.set(userId, event.socketId);
            return await service.buzz(userId, roomId, no, event.receivedAt, event.latency);
          case 'client-answer':
            service.answer(userId, roomId, no, typeof data.choice === 'number' ? data.choice : -1);
            return;
          case 'client-hint':
            await tellPlayer(userId, 'hint', { no, strike: await service.hint(userId, roomId, no) });
            return;
          case 'client-chat':
            await service.chat(userId, roomId, typeof data.body === 'string' ? data.body : '');
            return;
          default:
            return;
        }
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'strategybuzzer.failed';
        if (!code.startsWith('strategybuzzer.') && !code.startsWith('ledger.'))
          log.error({ err: error, event: event.event }, 'A player message failed');
        await tellPlayer(userId, 'error', { event: event.event, code, message: (error as Error).message });
      }
    },

    /** A socket closed: if it was a seated player's, their seat waits SB_RECONNECT_GRACE_SECONDS for them. */
    onSocketClosed(socketId: string): void {
      for (const [userId, known] of sockets) {
        if (known !== socketId) continue;
        sockets.delete(userId);
        if (seats.has(userId)) away.set(userId, now() + settings.reconnectGraceSeconds * 1000);
      }
    },

    /**
     * Moves time on: rooms out of matched tickets, every room's deadlines, finished rooms
     * forgotten. Runs on a timer (every 50 ms); tests call it after moving their clock.
     */
    async tick(): Promise<void> {
      const at = now();
      const matched = matchmaker.match(at);
      if (matched.length > 0) {
        starting = starting.then(() => Promise.all(matched.map(startRoom))).then(() => undefined);
        await starting;
      }
      for (const [userId, until] of away) {
        if (at < until) continue;
        away.delete(userId);
        const roomId = seats.get(userId);
        const entry = roomId === undefined ? undefined : rooms.get(roomId);
        seats.delete(userId);
        if (entry === undefined || roomId === undefined) continue;
        entry.room.leave(userId);
        entry.publishing = entry.publishing.then(() => publish(channels.room(roomId), 'left', { userId }));
      }
      for (const [roomId, entry] of rooms) {
        entry.room.tick(at);
        if (entry.dropAt !== undefined && at >= entry.dropAt) {
          rooms.delete(roomId);
          for (const userId of entry.room.players())
            if (lastRooms.get(userId) === roomId) lastRooms.delete(userId);
        }
      }
    },

    /** Keeps the latency estimates of seated players fresh: one more sample each (every 2 s). */
    probeSeated(): void {
      for (const userId of seats.keys()) {
        const socketId = sockets.get(userId);
        if (socketId !== undefined) realtime.probeLatency(socketId, 1);
      }
    },

    /** Resolves once the room's events so far are published (tests). */
    published: (roomId: string) => rooms.get(roomId)?.publishing ?? Promise.resolve(),
    roomOf: (userId: string) => seats.get(userId),
    liveRooms: () =>
      [...rooms.entries()].map(([id, entry]) => ({
        id,
        players: entry.room.players(),
        finished: entry.room.finished(),
        mode: (entry.tickets[0] as Ticket).mode,
      })),
    waitingPlayers: () => matchmaker.waiting(),
  };

  /** A buzz may end its settling window before the next timer tick: wake the room then. */
  function schedule(entry: RoomEntry) {
    const timer = setTimeout(() => entry.room.tick(), settings.maxCompensationMs + 1);
    timer.unref();
  }

  return service;
}

export type BuzzerService = ReturnType<typeof createBuzzerService>;
