import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import {
  type Bus,
  type Clock,
  databaseErrors,
  httpErrors,
  type Logger,
  type MemberChange,
  type PresenceMember,
  type SharedState,
  writeProblemOnSocket,
} from '../../kernel/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import { createFanoutWriter, type FanoutRecipient, framedText } from './fanout-writer.js';
import {
  type ChannelType,
  CLOSE,
  channelAuth,
  channelType,
  ERROR,
  encodeFrame,
  memberProblem,
  needsAuthorization,
  newSocketId,
  PROTOCOL_VERSION,
  parseJsonObject,
  SERVER_TO_USER_PREFIX,
  sameSecret,
  userAuth,
} from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';
import { noWebhooks, type WebhookEvent, type WebhookSink } from './webhooks.js';

/** How long the server waits for `pusher:pong` after its `pusher:ping`. */
const PONG_TIMEOUT_MS = 30_000;
/** How long the last event of a cache channel is kept (Pusher keeps it 30 minutes). */
const CACHE_TTL_MS = 30 * 60 * 1000;
/** Presence channels refuse members beyond this many (Pusher's limit). */
const MAX_PRESENCE_MEMBERS = 100;
const CONTROL_CHANNEL = 'rt:#control';

export interface GatewayOptions {
  readonly apps: AppDirectory;
  readonly bus: Bus;
  readonly state: SharedState;
  readonly clock: Clock;
  readonly log: Logger;
  readonly maxMessageBytes: number;
  readonly activityTimeoutSeconds: number;
  /** Bytes a socket may hold in server memory before it is closed with 4100 (slow consumer). */
  readonly maxBufferedBytes: number;
  /** Largest presence `user_info`, serialized as JSON, in bytes. */
  readonly maxUserInfoBytes: number;
  /** Channels one socket may be subscribed to at once. */
  readonly maxChannelsPerConnection: number;
  readonly webhooks?: WebhookSink;
  /** Counts sockets closed because they did not read fast enough (a Prometheus counter). */
  readonly slowDisconnects?: { inc(): void };
}

/** An event to send to channels from the HTTP API or from server code. */
export interface PublishInput {
  readonly app: RealtimeApp;
  readonly channels: readonly string[];
  readonly event: string;
  /** A string is sent as is; anything else is JSON-encoded (clients receive a string either way). */
  readonly data: unknown;
  /** A socket that must not receive the event (the sender's own, usually). */
  readonly excludeSocketId?: string | undefined;
}

interface Connection extends FanoutRecipient {
  readonly socket: WebSocket;
  readonly socketId: string;
  readonly app: RealtimeApp;
  /** Channels joined, with the presence member the socket joined as. */
  readonly channels: Map<string, PresenceMember | null>;
  userId: string | undefined;
  lastActivity: number;
  pingSentAt: number | undefined;
  clientEventWindow: number;
  clientEventCount: number;
  closed: boolean;
  /** The socket's handlers, chained: one frame at a time, then the cleanup of its close. */
  handling: Promise<void>;
}

type BusChannelHandler = (message: string) => void;

/**
 * Why an upgrade request is not a WebSocket handshake `ws` accepts (RFC 6455 §4.2.1: GET,
 * `Upgrade: websocket`, a 16-byte base64 `Sec-WebSocket-Key`, version 13 or 8), or undefined.
 */
function invalidHandshake(request: IncomingMessage): string | undefined {
  if (request.method !== 'GET') return 'the method must be GET';
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return 'only websocket upgrades are served';
  const key = request.headers['sec-websocket-key'];
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key.trim()))
    return 'Sec-WebSocket-Key must be 16 bytes in base64';
  const version = request.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return 'Sec-WebSocket-Version must be 13';
  return undefined;
}

/** The bus channel carrying a Pusher channel of an app. */
const busChannel = (appId: string, channel: string) => `rt:${appId}:${channel}`;

/**
 * The WebSocket side of the realtime module: accepts `ws://host/app/{key}`, speaks the Pusher
 * protocol (version 7), keeps each node's sockets per channel, and fans events out through the
 * bus (a node listens only to the channels its sockets joined).
 */
export function createGateway(options: GatewayOptions) {
  const { apps, bus, state, clock, log } = options;
  const webhooks = options.webhooks ?? noWebhooks;
  const server = new WebSocketServer({
    noServer: true,
    // Frames carry JSON around the payload; anything much larger than the limit is not an event.
    maxPayload: options.maxMessageBytes * 2 + 4096,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const connections = new Set<Connection>();
  const connectionsPerApp = new Map<string, number>();
  const local = new Map<
    string,
    { members: Set<Connection>; handler: BusChannelHandler; subscribed: Promise<void> }
  >();
  /** Subscription count writes not answered yet (see countSubscriber). */
  const stateWrites = new Set<Promise<void>>();
  const users = new Map<string, Set<Connection>>();
  let acceptingConnections = true;

  const now = () => clock.now().getTime();
  const countConnection = (appId: string, delta: number) => {
    const count = (connectionsPerApp.get(appId) ?? 0) + delta;
    if (count > 0) connectionsPerApp.set(appId, count);
    else connectionsPerApp.delete(appId);
    state.reportConnections(appId, Math.max(count, 0));
  };
  /**
   * Whether the app is at its connection limit across the fleet: this node's sockets (exact) plus
   * those the other nodes reported (a second old at most, see SharedState).
   */
  const atConnectionLimit = async (app: RealtimeApp) => {
    if (app.maxConnections <= 0) return false;
    if ((connectionsPerApp.get(app.id) ?? 0) >= app.maxConnections) return true;
    const others = await state.otherNodesConnections(app.id);
    // Read after the wait: sockets this node accepted meanwhile count too.
    return (connectionsPerApp.get(app.id) ?? 0) + others >= app.maxConnections;
  };
  /** Runs `task` after the socket's earlier handlers (frames are handled one at a time). */
  const handleInTurn = (connection: Connection, task: () => Promise<void>, failure: string) => {
    connection.handling = connection.handling
      .then(async () => {
        // Back-pressure: while webhooks pile up, frames wait (and so, in time, the client's TCP).
        const backlog = webhooks.backlog?.();
        if (backlog !== undefined) await backlog;
        await task();
      })
      .catch((error) => log.error({ err: error }, failure));
  };
  /**
   * Closes a socket that does not read what it is sent fast enough: the next frame would take what
   * the server holds for it past `maxBufferedBytes`. That frame and any later one are dropped (the
   * socket is no longer OPEN); 4100 tells the client to back off, then reconnect. The close frame
   * waits behind the buffered bytes, and ws destroys the socket if the client has not answered
   * within its close timeout (30 s), so what the socket holds stays bounded until then. Its
   * channels, presence and webhooks are cleaned up now rather than when the socket finally goes.
   */
  const closeSlowConsumer = (connection: Connection, bufferedBytes: number) => {
    if (connection.socket.readyState !== WebSocket.OPEN) return;
    log.warn(
      {
        socketId: connection.socketId,
        appId: connection.app.id,
        bufferedBytes,
        maxBufferedBytes: options.maxBufferedBytes,
      },
      'Realtime socket closed: it does not read fast enough (slow consumer)',
    );
    options.slowDisconnects?.inc();
    connection.socket.close(
      CLOSE.overCapacity,
      `Over capacity: more than ${options.maxBufferedBytes} bytes waiting to be sent`,
    );
    handleInTurn(connection, () => onClose(connection), 'Realtime close failed');
  };
  const fanout = createFanoutWriter<Connection>({
    maxBufferedBytes: options.maxBufferedBytes,
    onOverflow: closeSlowConsumer,
  });
  const send = fanout.send;
  const sendError = (connection: Connection, code: number | null, message: string) =>
    send(connection, encodeFrame('pusher:error', { code, message }));
  const close = (connection: Connection, code: number, reason: string) => {
    if (connection.socket.readyState === WebSocket.OPEN) connection.socket.close(code, reason);
  };
  const emit = (app: RealtimeApp, event: WebhookEvent) => {
    try {
      webhooks.notify(app, event);
    } catch (error) {
      log.error({ err: error }, 'Realtime webhook notification failed');
    }
  };

  const controlHandler = (message: string) => {
    let command: { type?: string; appId?: string; userId?: string };
    try {
      command = JSON.parse(message);
    } catch {
      return;
    }
    if (command.type === 'terminate' && command.appId !== undefined && command.userId !== undefined) {
      for (const connection of users.get(`${command.appId}\u0000${command.userId}`) ?? []) {
        close(connection, CLOSE.unauthorized, 'Connections of this user were terminated');
      }
    } else if (command.type === 'terminate-person' && command.userId !== undefined) {
      const { userId } = command;
      for (const connection of connections) {
        const inTheirName =
          connection.userId === userId ||
          [...connection.channels.values()].some((member) => member?.userId === userId);
        if (inTheirName) close(connection, CLOSE.unauthorized, 'The account of this user was closed');
      }
    }
  };
  const controlSubscribed = bus.subscribe(CONTROL_CHANNEL, controlHandler);

  /**
   * Counts a change of a channel's subscribers in the cluster state without holding the socket's
   * next frame: the writes of one node go over one Redis connection in order, so their answers
   * (and the channel_occupied / channel_vacated webhooks they decide) come in order too. A
   * subscribe/unsubscribe therefore costs the socket no round trip but the bus SUBSCRIBE of a
   * channel new to this node; `shutdown` waits for the writes still in flight.
   */
  function countSubscriber(app: RealtimeApp, channel: string, delta: 1 | -1) {
    const write = state
      .occupy(app.id, channel, delta)
      .then((count) => {
        if (delta === 1 && count === 1) emit(app, { name: 'channel_occupied', channel });
        if (delta === -1 && count === 0) emit(app, { name: 'channel_vacated', channel });
      })
      .catch((error) => log.warn({ err: error, channel }, 'Realtime subscription count not written'))
      .finally(() => stateWrites.delete(write));
    stateWrites.add(write);
  }

  /** Adds the socket to the node's recipients of the channel; resolves once the bus delivers it. */
  async function joinLocally(connection: Connection, channel: string): Promise<void> {
    const name = busChannel(connection.app.id, channel);
    let entry = local.get(name);
    if (entry === undefined) {
      const members = new Set<Connection>();
      const handler: BusChannelHandler = (message) => {
        const newline = message.indexOf('\n');
        const exclude = message.slice(0, newline);
        // Encoded and framed once per node and message, then written to every recipient.
        const frame = framedText(message.slice(newline + 1));
        for (const member of members) if (member.socketId !== exclude) fanout.write(member, frame);
      };
      const created = { members, handler, subscribed: bus.subscribe(name, handler) };
      // A SUBSCRIBE that failed is tried again by the next socket joining the channel.
      created.subscribed.catch(() => {
        if (local.get(name) === created) local.delete(name);
      });
      entry = created;
      local.set(name, entry);
    }
    entry.members.add(connection);
    countSubscriber(connection.app, channel, 1);
    // Sockets joining while the node's SUBSCRIBE is on its way wait for it too.
    await entry.subscribed;
  }

  function leaveLocally(connection: Connection, channel: string): void {
    const name = busChannel(connection.app.id, channel);
    const entry = local.get(name);
    if (entry?.members.delete(connection) && entry.members.size === 0) {
      local.delete(name);
      // The bus keeps SUBSCRIBE/UNSUBSCRIBE of a channel in order: no need to wait here.
      bus
        .unsubscribe(name, entry.handler)
        .catch((error) => log.warn({ err: error, channel }, 'Realtime bus unsubscribe failed'));
    }
    countSubscriber(connection.app, channel, -1);
  }

  async function publishFrame(appId: string, channel: string, frame: string, excludeSocketId = '') {
    await bus.publish(busChannel(appId, channel), `${excludeSocketId}\n${frame}`);
  }

  async function subscribe(connection: Connection, data: Record<string, unknown>): Promise<void> {
    const channel = data.channel;
    if (typeof channel !== 'string') return sendError(connection, ERROR.invalidEvent, 'channel is required');
    const type = channelType(channel);
    if (type === undefined) {
      return sendError(connection, ERROR.invalidEvent, `Invalid channel name "${channel.slice(0, 200)}"`);
    }
    if (connection.channels.has(channel)) return;
    const refuse = (message: string, status = 401, type = 'AuthError') =>
      send(connection, encodeFrame('pusher:subscription_error', { type, error: message, status }, channel));
    // Frames are handled one at a time, so the count cannot be raced past.
    if (connection.channels.size >= options.maxChannelsPerConnection) {
      return refuse(
        `A connection may be subscribed to at most ${options.maxChannelsPerConnection} channels`,
        403,
        'LimitReached',
      );
    }
    let member: PresenceMember | null = null;
    if (type.kind === 'server-to-user') {
      if (connection.userId === undefined || channel !== `${SERVER_TO_USER_PREFIX}${connection.userId}`) {
        return refuse('This channel belongs to another user; sign in first', 403);
      }
    } else if (needsAuthorization(type.kind)) {
      const channelData = type.kind === 'presence' ? data.channel_data : undefined;
      if (type.kind === 'presence' && typeof channelData !== 'string') {
        return refuse('channel_data is required on presence channels');
      }
      const expected = channelAuth(
        connection.app,
        connection.socketId,
        channel,
        channelData as string | undefined,
      );
      if (typeof data.auth !== 'string' || !sameSecret(data.auth, expected)) {
        return refuse('Invalid signature: the auth does not match this socket and channel');
      }
      if (type.kind === 'presence') {
        member = parseMember(channelData as string);
        if (member === null) return refuse('channel_data must be JSON with a user_id', 400);
        const problem = memberProblem(member, options.maxUserInfoBytes);
        if (problem !== undefined) return refuse(problem, 400);
      }
    }
    // Presence first: a full channel refuses the socket before it counts as a subscriber.
    const change = member === null ? undefined : await joinPresence(connection, channel, member);
    if (change === 'full') {
      return send(
        connection,
        encodeFrame(
          'pusher:subscription_error',
          {
            type: 'LimitReached',
            error: `Presence channels hold at most ${MAX_PRESENCE_MEMBERS} members`,
            status: 403,
          },
          channel,
        ),
      );
    }
    connection.channels.set(channel, member);
    await joinLocally(connection, channel);
    if (connection.closed) return;
    if (member !== null && change !== undefined) await announceJoin(connection, channel, member, change);
    else send(connection, encodeFrame('pusher_internal:subscription_succeeded', '{}', channel));
    if (type.cache) await sendCached(connection, channel);
  }

  function joinPresence(connection: Connection, channel: string, member: PresenceMember) {
    return state.join(connection.app.id, channel, connection.socketId, member, MAX_PRESENCE_MEMBERS);
  }

  async function announceJoin(
    connection: Connection,
    channel: string,
    member: PresenceMember,
    change: MemberChange,
  ) {
    const appId = connection.app.id;
    const members = await state.members(appId, channel);
    // Keyed by user ids clients choose: no prototype, so "__proto__" is a member like any other.
    const hash: Record<string, unknown> = Object.create(null);
    for (const known of members) hash[known.userId] = known.userInfo ?? null;
    send(
      connection,
      encodeFrame(
        'pusher_internal:subscription_succeeded',
        JSON.stringify({ presence: { ids: Object.keys(hash), hash, count: members.length } }),
        channel,
      ),
    );
    if (change.changed) {
      const added = JSON.stringify({ user_id: member.userId, user_info: member.userInfo ?? null });
      await publishFrame(
        appId,
        channel,
        encodeFrame('pusher_internal:member_added', added, channel),
        connection.socketId,
      );
      emit(connection.app, { name: 'member_added', channel, user_id: member.userId });
    }
  }

  async function sendCached(connection: Connection, channel: string) {
    const cached = await state.cachedEvent(connection.app.id, channel);
    if (cached !== undefined) send(connection, cached);
    else {
      send(connection, encodeFrame('pusher:cache_miss', '{}', channel));
      emit(connection.app, { name: 'cache_miss', channel });
    }
  }

  async function unsubscribe(connection: Connection, channel: string): Promise<void> {
    if (!connection.channels.has(channel)) return;
    const member = connection.channels.get(channel);
    connection.channels.delete(channel);
    if (member) await leavePresence(connection.app, channel, connection.socketId);
    leaveLocally(connection, channel);
  }

  async function leavePresence(app: RealtimeApp, channel: string, socketId: string) {
    const change = await state.leave(app.id, channel, socketId);
    if (change?.changed) {
      const removed = JSON.stringify({ user_id: change.userId });
      await publishFrame(app.id, channel, encodeFrame('pusher_internal:member_removed', removed, channel));
      emit(app, { name: 'member_removed', channel, user_id: change.userId });
    }
  }

  async function clientEvent(connection: Connection, frame: Record<string, unknown>, size: number) {
    const { event, channel, data } = frame;
    if (typeof channel !== 'string' || !connection.channels.has(channel)) {
      return sendError(
        connection,
        ERROR.clientEventRejected,
        'Client events need a channel the socket joined',
      );
    }
    const type = channelType(channel) as ChannelType;
    if (type.kind !== 'private' && type.kind !== 'presence') {
      return sendError(
        connection,
        ERROR.clientEventRejected,
        'Client events are only allowed on private and presence channels',
      );
    }
    if (size > options.maxMessageBytes) {
      return sendError(
        connection,
        ERROR.messageTooLarge,
        `Event is larger than ${options.maxMessageBytes} bytes`,
      );
    }
    // A fixed one-second window per connection: state is two numbers, and a client over its
    // budget is told (4301) without being disconnected, as Pusher does.
    const second = Math.floor(now() / 1000);
    if (connection.clientEventWindow !== second) {
      connection.clientEventWindow = second;
      connection.clientEventCount = 0;
    }
    if (++connection.clientEventCount > connection.app.clientEventsPerSecond) {
      return sendError(
        connection,
        ERROR.clientEventRejected,
        `Client event rejected: more than ${connection.app.clientEventsPerSecond} per second`,
      );
    }
    const member = connection.channels.get(channel);
    const userId = member?.userId;
    const encoded = typeof data === 'string' ? data : JSON.stringify(data ?? null);
    await publishFrame(
      connection.app.id,
      channel,
      encodeFrame(event as string, encoded, channel, userId === undefined ? undefined : { user_id: userId }),
      connection.socketId,
    );
    emit(connection.app, {
      name: 'client_event',
      channel,
      event: event as string,
      data: encoded,
      socket_id: connection.socketId,
      ...(userId === undefined ? {} : { user_id: userId }),
    });
  }

  function signin(connection: Connection, data: Record<string, unknown>) {
    const userData = data.user_data;
    const expected =
      typeof userData === 'string' ? userAuth(connection.app, connection.socketId, userData) : '';
    if (typeof data.auth !== 'string' || expected === '' || !sameSecret(data.auth, expected)) {
      sendError(connection, CLOSE.unauthorized, 'Invalid signin signature');
      return close(connection, CLOSE.unauthorized, 'Invalid signin signature');
    }
    const id = parseJsonObject(userData as string)?.id;
    if (typeof id !== 'string' || id === '') {
      sendError(connection, CLOSE.unauthorized, 'user_data must be JSON with a string id');
      return close(connection, CLOSE.unauthorized, 'Invalid user_data');
    }
    connection.userId = id;
    const key = `${connection.app.id}\u0000${id}`;
    let set = users.get(key);
    if (set === undefined) {
      set = new Set();
      users.set(key, set);
    }
    set.add(connection);
    send(connection, encodeFrame('pusher:signin_success', { user_data: userData }));
  }

  async function onMessage(connection: Connection, raw: RawData, isBinary: boolean) {
    // ws still emits frames that arrive while a socket is closing; once its cleanup ran (a slow
    // consumer, a shutdown), a subscribe would join channels that nothing would ever leave.
    if (connection.closed) return;
    connection.lastActivity = now();
    connection.pingSentAt = undefined;
    const text = isBinary ? undefined : raw.toString();
    const message = text === undefined ? undefined : parseJsonObject(text);
    const event = message?.event;
    if (message === undefined || typeof event !== 'string') {
      sendError(connection, CLOSE.malformedFrame, 'Frames must be JSON objects with an event');
      return close(connection, CLOSE.malformedFrame, 'Malformed frame');
    }
    const data = (typeof message.data === 'object' && message.data !== null ? message.data : {}) as Record<
      string,
      unknown
    >;
    switch (event) {
      case 'pusher:ping':
        return send(connection, encodeFrame('pusher:pong', {}));
      case 'pusher:pong':
        return;
      case 'pusher:subscribe':
        return subscribe(connection, data);
      case 'pusher:unsubscribe':
        return typeof data.channel === 'string' ? unsubscribe(connection, data.channel) : undefined;
      case 'pusher:signin':
        return signin(connection, data);
      default:
        if (event.startsWith('client-')) return clientEvent(connection, message, (text as string).length);
        return sendError(connection, ERROR.invalidEvent, `Unsupported event "${event.slice(0, 200)}"`);
    }
  }

  async function onClose(connection: Connection) {
    if (connection.closed) return;
    connection.closed = true;
    connections.delete(connection);
    countConnection(connection.app.id, -1);
    if (connection.userId !== undefined) {
      const key = `${connection.app.id}\u0000${connection.userId}`;
      const set = users.get(key);
      set?.delete(connection);
      if (set?.size === 0) users.delete(key);
    }
    for (const channel of [...connection.channels.keys()]) {
      try {
        await unsubscribe(connection, channel);
      } catch (error) {
        log.warn({ err: error, channel }, 'Realtime cleanup of a closed socket failed');
      }
    }
  }

  function accept(
    socket: WebSocket,
    app: RealtimeApp | undefined,
    problem: { code: number; message: string } | undefined,
  ) {
    if (problem !== undefined || app === undefined) {
      const { code, message } = problem ?? { code: CLOSE.appNotFound, message: 'Unknown app key' };
      socket.send(encodeFrame('pusher:error', { code, message }));
      socket.close(code, message);
      return;
    }
    const connection: Connection = {
      socket,
      socketId: newSocketId(),
      app,
      channels: new Map(),
      userId: undefined,
      lastActivity: now(),
      pingSentAt: undefined,
      clientEventWindow: 0,
      clientEventCount: 0,
      closed: false,
      heldInTurn: 0,
      handling: Promise.resolve(),
    };
    connections.add(connection);
    countConnection(app.id, 1);
    // Handlers run one frame at a time per socket, so a subscribe finishes before the next frame.
    socket.on('message', (raw, isBinary) =>
      handleInTurn(connection, () => onMessage(connection, raw, isBinary), 'Realtime frame handling failed'),
    );
    socket.on('close', () => handleInTurn(connection, () => onClose(connection), 'Realtime close failed'));
    socket.on('error', (error) => log.debug({ err: error }, 'Realtime socket error'));
    send(
      connection,
      encodeFrame(
        'pusher:connection_established',
        JSON.stringify({ socket_id: connection.socketId, activity_timeout: options.activityTimeoutSeconds }),
      ),
    );
  }

  /**
   * Handles an HTTP upgrade: `/app/{key}` is a Pusher connection; any other path gets Pusher's
   * `pusher:error` 4005 "Path not found" and a close with that code.
   */
  function handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const match = /^\/app\/([^/]+)\/?$/.exec(url.pathname);
    if (!acceptingConnections) {
      writeProblemOnSocket(socket, httpErrors.shuttingDown());
      return;
    }
    // What `ws` would refuse with a bare 400: refused here as problem+json like every other answer.
    const handshakeProblem = invalidHandshake(request);
    if (handshakeProblem !== undefined) {
      writeProblemOnSocket(socket, realtimeErrors.invalidHandshake(handshakeProblem));
      return;
    }
    if (match === null) {
      // Pusher's answer to a WebSocket on any other path: error 4005, then close.
      server.handleUpgrade(request, socket, head, (webSocket) =>
        accept(webSocket, undefined, { code: CLOSE.pathNotFound, message: 'Path not found' }),
      );
      return;
    }
    let key: string;
    try {
      key = decodeURIComponent(match[1] as string);
    } catch {
      server.handleUpgrade(request, socket, head, (webSocket) =>
        accept(webSocket, undefined, { code: CLOSE.appNotFound, message: 'Unknown app key' }),
      );
      return;
    }
    const protocol = url.searchParams.get('protocol');
    void apps
      .byKey(key)
      .then(async (app) => {
        let problem: { code: number; message: string } | undefined;
        if (protocol === null) problem = { code: CLOSE.noVersion, message: 'No protocol version supplied' };
        else if (!/^\d+$/.test(protocol))
          problem = { code: CLOSE.invalidVersion, message: 'Invalid protocol version' };
        else if (Number(protocol) < 5 || Number(protocol) > PROTOCOL_VERSION)
          problem = { code: CLOSE.unsupportedVersion, message: `Unsupported protocol version ${protocol}` };
        else if (app !== undefined && (await atConnectionLimit(app)))
          problem = { code: CLOSE.overConnectionQuota, message: 'This app is over its connection quota' };
        server.handleUpgrade(request, socket, head, (webSocket) => accept(webSocket, app, problem));
      })
      .catch((error) => {
        log.error({ err: error }, 'Realtime app lookup failed');
        writeProblemOnSocket(socket, databaseErrors.unavailable(error));
      });
  }

  /** Pings sockets that were silent for the activity timeout; closes those that never answered. */
  function checkActivity(): void {
    const at = now();
    const idleLimit = options.activityTimeoutSeconds * 1000;
    for (const connection of connections) {
      if (connection.pingSentAt !== undefined) {
        if (at - connection.pingSentAt >= PONG_TIMEOUT_MS)
          close(connection, CLOSE.pongNotReceived, 'Pong reply not received');
      } else if (at - connection.lastActivity >= idleLimit) {
        connection.pingSentAt = at;
        send(connection, encodeFrame('pusher:ping', {}));
      }
    }
  }

  /** Sends an event to channels on every node (through the bus). */
  async function publish(input: PublishInput): Promise<void> {
    const data = typeof input.data === 'string' ? input.data : JSON.stringify(input.data ?? null);
    await Promise.all(
      input.channels.map(async (channel) => {
        const frame = encodeFrame(input.event, data, channel);
        if (channelType(channel)?.cache) await state.cacheEvent(input.app.id, channel, frame, CACHE_TTL_MS);
        await publishFrame(input.app.id, channel, frame, input.excludeSocketId ?? '');
      }),
    );
  }

  return {
    handleUpgrade,
    checkActivity,
    publish,
    /** Resolves once this node listens to its control channel (terminations). */
    ready: () => controlSubscribed,
    /** Closes every connection of the user on every node. */
    async terminateUserConnections(appId: string, userId: string) {
      await bus.publish(CONTROL_CHANNEL, JSON.stringify({ type: 'terminate', appId, userId }));
    },
    /**
     * Closes, on every node and in every app, the connections in a person's name: signed in as
     * them, or in a presence channel as them (an erased person is fenced out at once).
     */
    async terminatePersonConnections(userId: string) {
      await bus.publish(CONTROL_CHANNEL, JSON.stringify({ type: 'terminate-person', userId }));
    },
    /**
     * Removes what dead nodes left in the cluster state and announces it: `member_removed` to the
     * presence channels' subscribers on every node, and the `member_removed` / `channel_vacated`
     * webhooks. Each dead node is claimed by one sweeping node, so each is announced once.
     */
    async sweepDeadNodes() {
      const { removed, vacated } = await state.sweepDeadNodes();
      for (const { appId, channel, userId } of removed) {
        const frame = JSON.stringify({ user_id: userId });
        await publishFrame(appId, channel, encodeFrame('pusher_internal:member_removed', frame, channel));
        const app = await apps.byId(appId);
        if (app !== undefined) emit(app, { name: 'member_removed', channel, user_id: userId });
      }
      for (const { appId, channel } of vacated) {
        const app = await apps.byId(appId);
        if (app !== undefined) emit(app, { name: 'channel_vacated', channel });
      }
      if (removed.length > 0 || vacated.length > 0)
        log.info(
          { members: removed.length, channels: vacated.length },
          'Realtime: removed and announced what dead nodes left',
        );
    },
    /** Sockets connected to this node. */
    connectionCount: () => connections.size,
    /** Sockets of an app on every live node, read now (this node's exact, the others' as reported). */
    async fleetConnectionCount(appId: string): Promise<number> {
      return (
        (connectionsPerApp.get(appId) ?? 0) + (await state.otherNodesConnections(appId, { fresh: true }))
      );
    },
    /**
     * Stops accepting sockets, closes every one with 4200 (clients reconnect at once, to another
     * node) and removes their presence and subscriptions from the cluster state.
     */
    async shutdown(): Promise<void> {
      acceptingConnections = false;
      const open = [...connections];
      for (const connection of open) close(connection, CLOSE.reconnect, 'Server shutting down');
      await Promise.all(open.map((connection) => onClose(connection)));
      while (stateWrites.size > 0) await Promise.all([...stateWrites]);
      await bus.unsubscribe(CONTROL_CHANNEL, controlHandler);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;

function parseMember(channelData: string): PresenceMember | null {
  const parsed = parseJsonObject(channelData);
  if (parsed === undefined) return null;
  const { user_id: userId, user_info: userInfo } = parsed;
  if ((typeof userId !== 'string' || userId === '') && typeof userId !== 'number') return null;
  return userInfo === undefined ? { userId: String(userId) } : { userId: String(userId), userInfo };
}
