import { randomBytes, randomUUID } from 'node:crypto';
import type { Bus, Clock, LatencyEstimate, Logger, RateLimiter, Realtime, ReceivedClientEvent } from 'socle';
import { buzzerErrors } from './buzzer.errors.js';
import type { BuzzerSettings } from './buzzer.settings.js';
import type { BuzzerStore, ChatMessage, RoomEnding, RoomRecord } from './buzzer.store.js';
import type { Coins } from './coins.js';
import { fleetTime, forwardedArrival, type RoomMessage, type SnapshotReply } from './fleet.js';
import { createRoom, type Result, type Room, type RoomEvent } from './game.js';
import { matchTickets, type Ticket } from './matchmaker.js';

/** The channels of the game (declared with their authorizers in the module). */
export const channels = {
  player: (userId: string) => `private-sb-player-${userId}`,
  room: (roomId: string) => `private-sb-room-${roomId}`,
  chat: (roomId: string) => `private-sb-chat-${roomId}`,
};
const PLAYER_CHANNEL = /^private-sb-player-([0-9a-f-]{36})$/;
/** Bus channels between the game's nodes: a room's (its host listens), a node's (answers to it). */
const busChannels = {
  room: (roomId: string) => `strategybuzzer:room:${roomId}`,
  node: (nodeId: string) => `strategybuzzer:node:${nodeId}`,
};
/** How long a node waits for a room's host to draw the room for a player's `GET /me`. */
const SNAPSHOT_TIMEOUT_MS = 2000;
/** Bus channel where a node says it made a ticket (the matchmakers of the fleet look). */
const TICKETS_CHANNEL = 'strategybuzzer:tickets';
/** Matchmaking looks again this soon when another node held a region's turn. */
const MATCH_RETRY_MS = 250;
/** Matchmaking looks at least this often, whatever it was told. */
const MATCH_FALLBACK_MS = 5000;

export interface PlayInput {
  readonly mode: 'classic' | 'premium';
  readonly language: string;
  readonly region?: string | undefined;
  readonly code?: string | undefined;
}

interface RoomEntry {
  readonly room: Room;
  /** The room as the database holds it (what is saved when it ends). */
  readonly record: RoomRecord;
  /** Events of the room leave in the order the room emitted them. */
  publishing: Promise<void>;
  /** When a finished room is forgotten (monotonic ms). */
  dropAt: number | undefined;
  /** Receives what other nodes send the room (its players' events, snapshot requests). */
  readonly onMessage: (message: string) => void;
}

/** How long a finished room's results stay readable by its players. */
const FINISHED_ROOM_KEPT_MS = 60_000;
/** Recent chat messages sent to a player who joins. */
export const CHAT_HISTORY = 50;

export interface BuzzerServiceOptions {
  readonly store: BuzzerStore;
  readonly coins: Coins;
  readonly realtime: Realtime;
  /** The kernel's bus: Redis pub/sub on a fleet, in process when embedded. */
  readonly bus: Bus;
  readonly rateLimiter: RateLimiter;
  readonly clock: Clock;
  readonly log: Logger;
  readonly settings: BuzzerSettings;
  /** The monotonic clock buzzes are ordered on: `monotonicNow` of Socle (tests pass their own). */
  readonly now: () => number;
  /**
   * Told when this node starts hosting its first room (true) and stops hosting its last (false):
   * the module runs the game's tick only in between, so an idle node wakes for nothing.
   */
  readonly onHosting?: (hosting: boolean) => void;
}

/**
 * The game on this node of the fleet. Tickets and seats live in the database (one row per
 * player: never two rooms, whichever nodes the requests reach); a room is hosted in the memory
 * of the node that formed it (affinity), which holds its clock and decides its order. A player's
 * socket may be on any node: that node reads the arrival instant and the socket's latency, and
 * forwards the event to the host over the bus (or hands it over directly when it is the host).
 * A host that dies is noticed by the others (its heartbeat stops) and its rooms end cleanly
 * with the scores of their last answer kept.
 */
export function createBuzzerService(options: BuzzerServiceOptions) {
  const { store, coins, realtime, bus, settings, log, clock, now } = options;
  const regions = settings.regions
    .split(',')
    .map((region) => region.trim())
    .filter(Boolean);
  const nodeRegion = settings.nodeRegion ?? (regions[0] as string);
  if (!regions.includes(nodeRegion)) throw buzzerErrors.badRegion(nodeRegion, regions);
  const rules = {
    roomSize: settings.roomSize,
    minPlayers: settings.minPlayers,
    waitMs: settings.matchWaitSeconds * 1000,
  };
  /** This node, as rooms name their host. */
  const nodeId = randomUUID();
  /** Rooms this node hosts. */
  const rooms = new Map<string, RoomEntry>();
  /** The room each player of a room hosted here sits in (until it ends). */
  const seats = new Map<string, string>();
  /** The room each player last played in here, kept while its results are (`FINISHED_ROOM_KEPT_MS`). */
  const lastRooms = new Map<string, string>();
  /** Host side: the socket each seated player last spoke from (whatever node holds it). */
  const sockets = new Map<string, string>();
  /** Host side: seated players whose socket closed, and when their seat goes (monotonic ms). */
  const away = new Map<string, number>();
  /** Sockets of this node that said hello, by player (latency samples are taken here). */
  const localSockets = new Map<string, string>();
  /** Other room events (voice), handled on the room's host like the game's (see `onHostEvent`). */
  const hostHandlers: {
    readonly prefix: string;
    readonly handler: (userId: string, event: string, data: string) => Promise<void>;
  }[] = [];
  /** Snapshot requests of this node waiting for a host's answer. */
  const snapshotRequests = new Map<string, (room: unknown) => void>();
  let starting = Promise.resolve();
  /** Other nodes may exist (Redis): rooms are watched and checkpointed for them. */
  const fleet = bus.kind === 'redis';
  /** A ticket was made since the last match (told on the bus by the node that made it). */
  let matchDue = true;
  /** When the oldest waiting ticket's wait is over (monotonic ms). */
  let nextMatchAt = Number.NEGATIVE_INFINITY;
  const onTicketNotice = () => {
    matchDue = true;
  };
  /** Whether `onHosting` was last told that rooms are hosted here. */
  let hosting = false;
  /** Tells `onHosting` when the set of rooms hosted here becomes empty or stops being so. */
  const hostingChanged = () => {
    if (hosting === rooms.size > 0) return;
    hosting = rooms.size > 0;
    options.onHosting?.(hosting);
  };

  const publish = (channel: string, event: string, data: unknown) =>
    realtime
      .publish({ channel, event, data })
      .catch((error) => log.warn({ err: error, channel }, 'Publish failed'));

  const tellPlayer = (userId: string, event: string, data: unknown) =>
    publish(channels.player(userId), event, data);

  function emitFor(roomId: string) {
    return (event: RoomEvent) => {
      const entry = rooms.get(roomId);
      // The event's name says its type: `data` does not repeat it (each byte goes to every player).
      const { type, ...data } = event;
      const send = () => publish(channels.room(roomId), type, data);
      if (entry === undefined) {
        void send();
        return;
      }
      entry.publishing = entry.publishing.then(send);
      if ((event.type === 'answer' || (event.type === 'reveal' && event.winner !== null)) && fleet) {
        // The scores as of this answer (a wrong one, or the right one the reveal names), kept in
        // the database: what is saved if this node dies.
        // Only on a fleet: embedded, no other node could take them over, and the database runs
        // in this event loop, where a write at each answer would delay the next buzzes' frames.
        const results = entry.room.results();
        entry.publishing = entry.publishing.then(() =>
          store
            .checkpoint(roomId, results)
            .catch((error) => log.warn({ err: error, roomId }, 'Room checkpoint failed')),
        );
      }
      if (event.type === 'finished') void finish(roomId);
    };
  }

  const gameRecord = (room: RoomRecord, results: readonly Result[]) => ({
    id: room.id,
    region: room.region,
    mode: room.mode,
    language: room.language,
    code: room.code,
    startedAt: room.startedAt,
    endedAt: clock.now(),
    results,
  });

  async function finish(roomId: string) {
    const entry = rooms.get(roomId);
    if (entry === undefined) return;
    entry.dropAt = now() + FINISHED_ROOM_KEPT_MS;
    for (const userId of entry.room.players()) {
      if (seats.get(userId) === roomId) seats.delete(userId);
      lastRooms.set(userId, roomId);
    }
    try {
      // The results and the end of the room in one transaction: the seats are free once the
      // results are readable.
      await store.saveGame(gameRecord(entry.record, entry.room.results()), 'finished');
    } catch (error) {
      log.error({ err: error, roomId }, 'The results of a game could not be saved');
    }
  }

  /** Stops hosting a room: its bus channel left, its memory freed. */
  function forget(roomId: string) {
    const entry = rooms.get(roomId);
    if (entry === undefined) return;
    rooms.delete(roomId);
    hostingChanged();
    for (const userId of entry.room.players()) {
      if (seats.get(userId) === roomId) seats.delete(userId);
      if (lastRooms.get(userId) === roomId) lastRooms.delete(userId);
    }
    bus
      .unsubscribe(busChannels.room(roomId), entry.onMessage)
      .catch((error) => log.warn({ err: error, roomId }, 'Bus unsubscribe failed'));
  }

  /** Hosts a room this node claimed: its questions, the entry fees taken, the players told. */
  async function startRoom(roomId: string, tickets: Ticket[]) {
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
      for (const ticket of tickets)
        if (!players.includes(ticket)) await store.freeSeat(ticket.userId, roomId);
      if (questions.length === 0) throw buzzerErrors.noQuestions(first.language);
      // Too few left to play (the others' entries could not be taken): the room does not start,
      // and those who paid get their fee back as it ends (below).
      if (players.length < Math.min(settings.minPlayers, tickets.length))
        throw buzzerErrors.tooFewPlayers(players.length, settings.minPlayers);
      for (const ticket of players) seats.set(ticket.userId, roomId);
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
      const entry: RoomEntry = {
        room,
        record: {
          id: roomId,
          hostNode: nodeId,
          region: first.region,
          mode: first.mode,
          language: first.language,
          code: first.code,
          players: players.map(({ userId, name }) => ({ userId, name })),
          results: [],
          startedAt: clock.now(),
        },
        publishing: Promise.resolve(),
        dropAt: undefined,
        onMessage: (message) => {
          onRoomMessage(roomId, message).catch((error) =>
            log.error({ err: error, roomId }, 'A message to a room failed'),
          );
        },
      };
      rooms.set(roomId, entry);
      hostingChanged();
      // Listening before anyone is told: a player's first event, on any node, reaches the room.
      await bus.subscribe(busChannels.room(roomId), entry.onMessage);
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
      forget(roomId);
      await endCutShort((ending) => store.endRoom(roomId, 'failed', ending)).catch((endError) =>
        log.error({ err: endError, roomId }, 'A room that could not start could not be ended'),
      );
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

  /**
   * Hands a message to the room's host: at once when it is this node, over the bus otherwise
   * (a room nobody hosts any more drops it: the game is over).
   */
  async function sendToRoom(roomId: string, message: RoomMessage): Promise<void> {
    if (rooms.has(roomId)) return onRoomMessage(roomId, message);
    await bus.publish(busChannels.room(roomId), JSON.stringify(message));
  }

  /** What the room's host does with a message from a node (itself included). */
  async function onRoomMessage(roomId: string, raw: string | RoomMessage): Promise<void> {
    let message: RoomMessage;
    try {
      message = typeof raw === 'string' ? (JSON.parse(raw) as RoomMessage) : raw;
    } catch {
      return;
    }
    const entry = rooms.get(roomId);
    switch (message.kind) {
      case 'event': {
        // Forwarded by another node: its arrival there, on this node's clock (see forwardedArrival).
        const receivedAt =
          typeof raw === 'string'
            ? forwardedArrival(message, now(), settings.maxClockSkewMs)
            : message.receivedAt;
        return handlePlayerEvent(
          message.userId,
          message.event,
          message.data,
          message.socketId,
          receivedAt,
          message.latency ?? undefined,
        );
      }
      case 'closed':
        return playerAway(message.userId, message.socketId);
      case 'snapshot': {
        const room = entry?.room.has(message.userId) ? entry.room.snapshot() : null;
        const reply: SnapshotReply = { requestId: message.requestId, room };
        await bus.publish(message.replyTo, JSON.stringify(reply));
        return;
      }
    }
  }

  const onNodeMessage = (raw: string) => {
    try {
      const reply = JSON.parse(raw) as SnapshotReply;
      snapshotRequests.get(reply.requestId)?.(reply.room);
    } catch {
      // not ours
    }
  };

  /** The room drawn as it is, asked of its host wherever it is; null if it does not answer in time. */
  async function snapshotOf(roomId: string, userId: string): Promise<unknown> {
    const local = rooms.get(roomId);
    if (local !== undefined) return local.room.has(userId) ? local.room.snapshot() : null;
    const requestId = randomUUID();
    const answer = new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => resolve(null), SNAPSHOT_TIMEOUT_MS);
      snapshotRequests.set(requestId, (room) => {
        clearTimeout(timer);
        resolve(room);
      });
    });
    try {
      await sendToRoom(roomId, { kind: 'snapshot', userId, requestId, replyTo: busChannels.node(nodeId) });
      return await answer;
    } finally {
      snapshotRequests.delete(requestId);
    }
  }

  /** Host side: a seated player's socket closed; their seat waits for them the grace period. */
  function playerAway(userId: string, socketId: string) {
    const known = sockets.get(userId);
    // A newer socket of theirs already said hello (perhaps on another node): not away.
    if (known !== undefined && known !== socketId) return;
    sockets.delete(userId);
    if (seats.has(userId)) away.set(userId, now() + settings.reconnectGraceSeconds * 1000);
  }

  /** Host side: what a seated player sent, with its arrival on this node's clock. */
  async function handlePlayerEvent(
    userId: string,
    event: string,
    raw: string,
    socketId: string,
    receivedAt: number,
    latency: LatencyEstimate | undefined,
  ): Promise<void> {
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(raw) ?? {};
    } catch {
      data = {};
    }
    const roomId = typeof data.roomId === 'string' ? data.roomId : '';
    const no = typeof data.no === 'number' ? data.no : -1;
    try {
      switch (event) {
        case 'client-hello':
          sockets.set(userId, socketId);
          away.delete(userId); // back in time: the seat is theirs
          return;
        case 'client-buzz':
          sockets.set(userId, socketId);
          return await service.buzz(userId, roomId, no, receivedAt, latency);
        case 'client-answer':
          service.answer(userId, roomId, no, typeof data.choice === 'number' ? data.choice : -1);
          return;
        case 'client-hint':
          await tellPlayer(userId, 'hint', { no, strike: await service.hint(userId, roomId, no) });
          return;
        case 'client-chat':
          await service.chat(userId, roomId, typeof data.body === 'string' ? data.body : '');
          return;
        default: {
          const other = hostHandlers.find(({ prefix }) => event.startsWith(prefix));
          if (other !== undefined) await other.handler(userId, event, raw);
          return;
        }
      }
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'strategybuzzer.failed';
      if (!code.startsWith('strategybuzzer.') && !code.startsWith('ledger.'))
        log.error({ err: error, event }, 'A player message failed');
      await tellPlayer(userId, 'error', { event, code, message: (error as Error).message });
    }
  }

  /**
   * Ends rooms cut short through `end` (a store call ending them in one transaction), their
   * entry fees given back in that transaction; then tells each refunded player their balance.
   */
  async function endCutShort<T>(end: (ending: RoomEnding | undefined) => Promise<T>): Promise<T> {
    const refunds = await coins.refunds();
    const ended = await end(refunds);
    for (const userId of refunds?.refunded ?? [])
      await tellPlayer(userId, 'coins', { balance: await coins.balance(userId) }).catch((error) =>
        log.warn({ err: error, userId }, 'A refunded balance could not be pushed'),
      );
    return ended;
  }

  /** Ends a room whose host is gone: its last checkpoint saved as its results, its players told. */
  async function endOrphan(room: RoomRecord) {
    const results: readonly Result[] =
      room.results.length > 0
        ? room.results
        : room.players.map(({ userId, name }) => ({
            userId,
            name,
            score: 0,
            streak: 0,
            bestStreak: 0,
            correct: 0,
            wrong: 0,
            rank: 1,
          }));
    await store.saveGame(gameRecord(room, results));
    log.warn({ roomId: room.id, host: room.hostNode }, 'A room lost its host: ended with its scores kept');
    await publish(channels.room(room.id), 'finished', { results, reason: 'host_lost' });
  }

  const service = {
    regions,
    nodeId,

    /** Listens to this node's bus channel (answers to its snapshot requests) and to ticket notices. */
    async start(): Promise<void> {
      await bus.subscribe(busChannels.node(nodeId), onNodeMessage);
      await bus.subscribe(TICKETS_CHANNEL, onTicketNotice);
      // Embedded, this process is the only node: a room still running in the database was
      // hosted by a process that died (a crash, a kill). It ends now, its seats freed.
      if (!fleet)
        for (const room of await endCutShort((ending) => store.endOrphanedRooms(0, ending)))
          await endOrphan(room);
    },

    /** Whether rooms need the fleet's watch (`watchRooms`): other nodes may exist. */
    fleet,

    /**
     * A node stopping (a deploy, SIGTERM): its running rooms end now, cleanly, with their scores
     * (the players are told and may play again at once, on a node that stays).
     */
    async stop(): Promise<void> {
      await starting;
      for (const [roomId, entry] of [...rooms]) {
        if (entry.dropAt === undefined && !entry.room.finished()) {
          const results = entry.room.results();
          try {
            await endCutShort((ending) =>
              store.saveGame(gameRecord(entry.record, results), 'host_stopped', ending),
            );
            await entry.publishing;
            await publish(channels.room(roomId), 'finished', { results, reason: 'host_stopped' });
          } catch (error) {
            log.error({ err: error, roomId }, 'A room could not be ended at shutdown');
          }
        }
        forget(roomId);
      }
      await bus.unsubscribe(busChannels.node(nodeId), onNodeMessage);
      await bus.unsubscribe(TICKETS_CHANNEL, onTicketNotice);
    },

    /** The player's profile, made on first sight. */
    profile: (userId: string, name?: string) =>
      store.ensurePlayer(userId, name ?? `player-${userId.slice(0, 6)}`, clock.now()),

    /** Asks to play: a ticket (the one the player holds if any), in the database the fleet shares. */
    async play(userId: string, input: PlayInput, name?: string): Promise<Ticket> {
      const held = await store.ticketOf(userId);
      if (held?.roomId !== undefined) throw buzzerErrors.inRoom(held.roomId);
      if (held !== undefined) return held.ticket;
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
      const { ticket, roomId } = await store.addTicket({
        id,
        userId,
        name: player.name,
        region,
        mode: input.mode,
        language: input.language,
        level: player.level,
        code: input.code,
        createdAt: fleetTime(now()),
        holdId,
      });
      // Raced by another request of the same player: give back what this one held.
      if (ticket.id !== id && holdId !== undefined) await coins.release(userId, holdId);
      if (roomId !== undefined) throw buzzerErrors.inRoom(roomId);
      if (ticket.id === id) {
        matchDue = true;
        await bus
          .publish(TICKETS_CHANNEL, nodeId)
          .catch((error) => log.warn({ err: error }, 'Ticket notice failed (matched within 5 s anyway)'));
      }
      return ticket;
    },

    /** Leaves the queue; a held entry fee comes back. */
    async cancel(userId: string): Promise<boolean> {
      const ticket = await store.withdrawTicket(userId);
      if (ticket?.holdId !== undefined) await coins.release(userId, ticket.holdId);
      return ticket !== undefined;
    },

    /** A new friends' room code to share. */
    newCode: () => randomBytes(4).toString('hex').slice(0, 6).toUpperCase(),

    /**
     * Where the player is: their ticket, or their room drawn again by its host, on whichever
     * node (a reconnection resyncs with this).
     */
    async current(userId: string) {
      const held = await store.ticketOf(userId);
      const roomId = held?.roomId ?? lastRooms.get(userId);
      const room = roomId === undefined ? null : await snapshotOf(roomId, userId);
      const ticket = held?.roomId === undefined ? held?.ticket : undefined;
      return {
        ticket:
          ticket === undefined
            ? null
            : { id: ticket.id, mode: ticket.mode, region: ticket.region, code: ticket.code ?? null },
        room: room as ReturnType<Room['snapshot']> | null,
        channels: {
          player: channels.player(userId),
          ...(roomId === undefined ? {} : { room: channels.room(roomId), chat: channels.chat(roomId) }),
        },
      };
    },

    /** A room the player sits in or played in (its channels, its chat). */
    canWatch: (userId: string, roomId: string) => store.isPlayerOf(userId, roomId),

    /** A buzz, as it arrived: `receivedAt` on this (host) node's monotonic clock, with the socket's latency. */
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

    /**
     * What a player's socket on this node sent on their own channel (`client-hello`, `-buzz`,
     * `-answer`, `-chat`, `-hint`): handed to the room's host with the arrival instant and the
     * socket's latency, both measured here, where the socket is.
     */
    async onClientEvent(event: ReceivedClientEvent): Promise<void> {
      const userId = PLAYER_CHANNEL.exec(event.channel)?.[1];
      if (userId === undefined) return;
      let roomId: string | undefined;
      if (event.event === 'client-hello') {
        localSockets.set(userId, event.socketId);
        // Five samples once, whatever the ordering (cheap; the estimate is there if it is turned
        // on); the samples every 2 s are taken only when compensation uses them (probeSeated).
        realtime.probeLatency(event.socketId, 5);
        // A hello names no room: the seat says which (none in the lobby).
        roomId = seats.get(userId) ?? (await store.seatOf(userId))?.roomId;
      } else {
        try {
          const data = JSON.parse(event.data);
          if (typeof data?.roomId === 'string') roomId = data.roomId;
        } catch {
          // no room named: refused below
        }
      }
      if (roomId === undefined) {
        if (event.event !== 'client-hello')
          await tellPlayer(userId, 'error', {
            event: event.event,
            code: 'strategybuzzer.not_in_room',
            message: 'You are not playing in a room',
          });
        return;
      }
      await sendToRoom(roomId, {
        kind: 'event',
        userId,
        socketId: event.socketId,
        event: event.event,
        data: event.data,
        // Handed over in process, the arrival stays on this clock; over the bus, in fleet ms.
        receivedAt: rooms.has(roomId) ? event.receivedAt : fleetTime(event.receivedAt),
        sentAt: fleetTime(now()),
        latency: event.latency ?? null,
      });
    },

    /**
     * A socket of this node closed: if it was a seated player's, their room's host keeps the seat
     * SB_RECONNECT_GRACE_SECONDS for a hello from a new socket (on any node).
     */
    async onSocketClosed(socketId: string): Promise<void> {
      for (const [userId, known] of [...localSockets]) {
        if (known !== socketId) continue;
        localSockets.delete(userId);
        const roomId = seats.get(userId) ?? (await store.seatOf(userId))?.roomId;
        if (roomId !== undefined) await sendToRoom(roomId, { kind: 'closed', userId, socketId });
      }
    },

    /**
     * Claims rooms out of this region's waiting tickets (and friends' codes), hosted here. Runs
     * on a timer (every 250 ms) but asks the database only when a room may be due: a ticket was
     * made on some node (each node says so on the bus), the oldest waiting ticket's wait is over,
     * another node held the turn, or (on a fleet) 5 s passed (a notice lost with Redis). An embedded node's
     * database runs in its own event loop: a transaction every 250 ms would delay the very
     * frames whose arrival instants order buzzes. `force` (tests) matches now.
     */
    async match(force = false): Promise<void> {
      const at = now();
      if (!force && !matchDue && at < nextMatchAt) return;
      matchDue = false;
      let waiting: readonly Ticket[] = [];
      const claimed = await store.claimRooms(nodeRegion, nodeId, clock.now(), (tickets) => {
        const matched = matchTickets(tickets, fleetTime(at), rules);
        const seated = new Set(matched.flat());
        waiting = tickets.filter((ticket) => !seated.has(ticket));
        return matched;
      });
      if (claimed === undefined) {
        nextMatchAt = at + MATCH_RETRY_MS; // another node's turn: look again soon
        return;
      }
      // The oldest waiting ticket's wait ends then (fleet ms, moved to this clock).
      const oldest = Math.min(...waiting.map((ticket) => ticket.createdAt));
      const due = at + (oldest + rules.waitMs - fleetTime(at));
      // Embedded, notices go in process and are never lost: no fallback look.
      const fallback = fleet ? at + MATCH_FALLBACK_MS : Number.POSITIVE_INFINITY;
      nextMatchAt = Math.min(fallback, Number.isFinite(due) ? due : Number.POSITIVE_INFINITY);
      if (claimed.length === 0) return;
      starting = starting
        .then(() => Promise.all(claimed.map(({ roomId, tickets }) => startRoom(roomId, tickets))))
        .then(() => undefined);
      await starting;
    },

    /**
     * Moves the hosted rooms on: their deadlines, seats given up past the grace, finished rooms
     * forgotten. Runs on a timer (every 50 ms) while this node hosts a room (see `onHosting`).
     */
    async advance(): Promise<void> {
      const at = now();
      for (const [userId, until] of away) {
        if (at < until) continue;
        away.delete(userId);
        const roomId = seats.get(userId);
        const entry = roomId === undefined ? undefined : rooms.get(roomId);
        seats.delete(userId);
        if (entry === undefined || roomId === undefined) continue;
        entry.room.leave(userId);
        await store.freeSeat(userId, roomId);
        entry.publishing = entry.publishing.then(() => publish(channels.room(roomId), 'left', { userId }));
      }
      for (const [roomId, entry] of rooms) {
        entry.room.tick(at);
        if (entry.dropAt !== undefined && at >= entry.dropAt) forget(roomId);
      }
    },

    /** Both of the above: what tests call after moving their clock. */
    async tick(): Promise<void> {
      await service.match(true);
      await service.advance();
    },

    /**
     * The fleet's watch over its rooms (every 2 s): this node's heartbeat on the rooms it hosts,
     * and the rooms whose host stopped beating for SB_HOST_TIMEOUT_SECONDS ended cleanly (each
     * by one node). A room this node hosts that another ended (this node was cut off that long)
     * is let go.
     */
    async watchRooms(): Promise<void> {
      // Only rooms hosted before the heartbeat read: one claimed meanwhile is not in its answer.
      const hosted = [...rooms];
      const running = new Set(hosted.length === 0 ? [] : await store.heartbeat(nodeId));
      for (const [roomId, entry] of hosted) {
        if (entry.dropAt === undefined && !entry.room.finished() && !running.has(roomId)) {
          log.warn({ roomId }, 'A room hosted here was ended by another node: let go');
          forget(roomId);
        }
      }
      for (const room of await endCutShort((ending) =>
        store.endOrphanedRooms(settings.hostTimeoutSeconds * 1000, ending),
      ))
        await endOrphan(room);
    },

    /** Keeps the latency estimates of this node's players fresh: one more sample each (every 2 s). */
    probeSeated(): void {
      // Ordered by arrival alone, the game reads no latency: no pings every 2 s to every player.
      if (!settings.latencyCompensation) return;
      for (const [userId, socketId] of localSockets)
        if (!realtime.probeLatency(socketId, 1)) localSockets.delete(userId);
    },

    /** Resolves once the room's events so far are published (tests). */
    published: (roomId: string) => rooms.get(roomId)?.publishing ?? Promise.resolve(),
    /** The room the player is seated in, on any node. */
    roomOf: async (userId: string) => (await store.seatOf(userId))?.roomId,
    /** The room the player is seated in among the rooms this node hosts (what a host checks). */
    seatHere: (userId: string): string | undefined => seats.get(userId),
    /**
     * Handles the player events named `prefix…` (naming their `roomId`) on the room's host, as
     * the game's own: whichever node holds the player's socket forwards them there over the bus,
     * so state kept in the host's memory (the voice's members) is one per room across the fleet.
     */
    onHostEvent(
      prefix: string,
      handler: (userId: string, event: string, data: string) => Promise<void>,
    ): void {
      hostHandlers.push({ prefix, handler });
    },
    /** Whether this node hosts the room. */
    hosts: (roomId: string) => rooms.has(roomId),
    async liveRooms() {
      return (await store.liveRooms()).map((room) => ({
        id: room.id,
        host: room.hostNode,
        players: room.players.map((player) => player.userId),
        mode: room.mode,
      }));
    },
    waitingPlayers: () => store.waitingCount(),
  };

  /** A buzz may end its settling window before the next timer tick: wake the room then. */
  function schedule(entry: RoomEntry) {
    // Ordered by arrival, a buzz settles in the call that received it: nothing to wake.
    if (!settings.latencyCompensation) return;
    const timer = setTimeout(() => entry.room.tick(), settings.maxCompensationMs + 1);
    timer.unref();
  }

  return service;
}

export type BuzzerService = ReturnType<typeof createBuzzerService>;
