import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  type Bus,
  type Clock,
  databaseErrors,
  httpErrors,
  type Logger,
  type SharedState,
  writeProblemOnSocket,
} from '../../kernel/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import { createSocketOutput } from './gateway-backpressure.js';
import { createChannelRouter } from './gateway-channels.js';
import { type ClientEventHandler, createClientMessageHandler } from './gateway-client-events.js';
import { type Connection, invalidHandshake, userKey } from './gateway-connection.js';
import { type LatencyEstimate, latencyEstimate, monotonicNow, newLatencyState } from './gateway-latency.js';
import { createPresence } from './gateway-presence.js';
import { createSubscriptions } from './gateway-subscriptions.js';
import { CLOSE, channelType, encodeFrame, newSocketId, PROTOCOL_VERSION } from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';
import { noWebhooks, type WebhookEvent, type WebhookSink } from './webhooks.js';

/** A socket of this node that closed: its app, id and the user it signed in as, if any. */
export type SocketClosedHandler = (socket: {
  readonly appId: string;
  readonly socketId: string;
  readonly userId: string | undefined;
}) => void;

/** How long the server waits for `pusher:pong` after its `pusher:ping`. */
const PONG_TIMEOUT_MS = 30_000;
/** How long the last event of a cache channel is kept (Pusher keeps it 30 minutes). */
const CACHE_TTL_MS = 30 * 60 * 1000;
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
  /** Milliseconds a just-written socket's next fan-out frames are held to share one write (0: none). */
  readonly writeCoalesceMs?: number;
  /** Largest presence `user_info`, serialized as JSON, in bytes. */
  readonly maxUserInfoBytes: number;
  /** Channels one socket may be subscribed to at once. */
  readonly maxChannelsPerConnection: number;
  readonly webhooks?: WebhookSink;
  /** Counts sockets closed because they did not read fast enough (a Prometheus counter). */
  readonly slowDisconnects?: { inc(): void };
  /**
   * Called when an app's sockets, occupied channels or presence members changed on this node
   * (not for client events): the operator feed pushes the change to the console.
   */
  readonly onAppActivity?: (appId: string) => void;
  /**
   * Called when a socket of this node joins (+1) or leaves (-1) a channel: the operator feed
   * learns whether a console watches from it, without reading the shared state.
   */
  readonly onLocalSubscriber?: (appId: string, channel: string, delta: 1 | -1) => void;
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

/**
 * The WebSocket side of the realtime module: accepts `ws://host/app/{key}`, speaks the Pusher
 * protocol (version 7), keeps each node's sockets per channel, and fans events out through the
 * bus (a node listens only to the channels its sockets joined).
 *
 * This file holds the connection lifecycle (upgrade, accept, activity, close, shutdown) and the
 * gateway's API; the seams are in `gateway-*.ts`: backpressure (writes, slow consumers), channels
 * (this node's recipients, the bus, subscription counts), presence, subscriptions, client events.
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
  const users = new Map<string, Set<Connection>>();
  let acceptingConnections = true;

  const now = () => clock.now().getTime();
  const countConnection = (appId: string, delta: number) => {
    const count = (connectionsPerApp.get(appId) ?? 0) + delta;
    if (count > 0) connectionsPerApp.set(appId, count);
    else connectionsPerApp.delete(appId);
    state.reportConnections(appId, Math.max(count, 0));
    options.onAppActivity?.(appId);
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
  const emit = (app: RealtimeApp, event: WebhookEvent) => {
    if (event.name !== 'client_event' && event.name !== 'cache_miss') options.onAppActivity?.(app.id);
    try {
      webhooks.notify(app, event);
    } catch (error) {
      log.error({ err: error }, 'Realtime webhook notification failed');
    }
  };
  const output = createSocketOutput({
    log,
    maxBufferedBytes: options.maxBufferedBytes,
    writeCoalesceMs: options.writeCoalesceMs,
    webhooks,
    slowDisconnects: options.slowDisconnects,
    onClose: (connection) => onClose(connection),
  });
  const { send, close, handleInTurn } = output;
  const channels = createChannelRouter({
    bus,
    state,
    log,
    output,
    emit,
    onLocalSubscriber: options.onLocalSubscriber,
  });
  const presence = createPresence({ apps, state, log, output, channels, emit });
  const subscriptions = createSubscriptions({
    state,
    output,
    channels,
    presence,
    emit,
    maxUserInfoBytes: options.maxUserInfoBytes,
    maxChannelsPerConnection: options.maxChannelsPerConnection,
  });
  const clientEventHandlers = new Set<ClientEventHandler>();
  const closeHandlers = new Set<SocketClosedHandler>();
  const bySocketId = new Map<string, Connection>();
  const onMessage = createClientMessageHandler({
    output,
    channels,
    subscriptions,
    emit,
    now,
    handlers: clientEventHandlers,
    log,
    maxMessageBytes: options.maxMessageBytes,
    signedIn(connection, userId) {
      const key = userKey(connection.app.id, userId);
      let set = users.get(key);
      if (set === undefined) {
        set = new Set();
        users.set(key, set);
      }
      set.add(connection);
    },
  });

  const controlHandler = (message: string) => {
    let command: { type?: string; appId?: string; userId?: string };
    try {
      command = JSON.parse(message);
    } catch {
      return;
    }
    if (command.type === 'terminate' && command.appId !== undefined && command.userId !== undefined) {
      for (const connection of users.get(userKey(command.appId, command.userId)) ?? []) {
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

  async function onClose(connection: Connection) {
    if (connection.closed) return;
    connection.closed = true;
    connections.delete(connection);
    bySocketId.delete(connection.socketId);
    countConnection(connection.app.id, -1);
    if (connection.userId !== undefined) {
      const key = userKey(connection.app.id, connection.userId);
      const set = users.get(key);
      set?.delete(connection);
      if (set?.size === 0) users.delete(key);
    }
    for (const channel of [...connection.channels.keys()]) {
      try {
        await subscriptions.unsubscribe(connection, channel);
      } catch (error) {
        log.warn({ err: error, channel }, 'Realtime cleanup of a closed socket failed');
      }
    }
    for (const handler of closeHandlers) {
      try {
        handler({ appId: connection.app.id, socketId: connection.socketId, userId: connection.userId });
      } catch (error) {
        log.error({ err: error }, 'Realtime socket close handler failed');
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
      latency: newLatencyState(),
      closed: false,
      heldInTurn: 0,
      heldInWindow: 0,
      releasedAt: Number.NEGATIVE_INFINITY,
      handling: Promise.resolve(),
    };
    connections.add(connection);
    bySocketId.set(connection.socketId, connection);
    countConnection(app.id, 1);
    // Handlers run one frame at a time per socket, so a subscribe finishes before the next frame.
    // The arrival instant is read here, before the frame waits for the socket's earlier ones:
    // what modules order client events by, and the end of a latency probe.
    socket.on('message', (raw, isBinary) => {
      const receivedAt = monotonicNow();
      handleInTurn(
        connection,
        () => onMessage(connection, raw, isBinary, receivedAt),
        'Realtime frame handling failed',
      );
    });
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
        await channels.publishFrame(input.app.id, channel, frame, input.excludeSocketId ?? '');
      }),
    );
  }

  /** Sends `samples` pings in a row (each after the previous pong) to a socket of this node. */
  function probeLatency(socketId: string, samples: number): boolean {
    const connection = bySocketId.get(socketId);
    if (connection === undefined || connection.closed) return false;
    connection.latency.probesLeft = Math.max(connection.latency.probesLeft, Math.max(1, samples) - 1);
    if (connection.latency.probeSentAt === undefined) {
      connection.latency.probeSentAt = monotonicNow();
      send(connection, encodeFrame('pusher:ping', {}));
    }
    return true;
  }

  return {
    handleUpgrade,
    checkActivity,
    publish,
    probeLatency,
    /** The measured latency of a socket of this node (undefined: unknown socket or no sample yet). */
    latency(socketId: string): LatencyEstimate | undefined {
      const connection = bySocketId.get(socketId);
      return connection === undefined ? undefined : latencyEstimate(connection.latency);
    },
    /** Calls `handler` for every client event this node receives; returns its removal. */
    onClientEvent(handler: ClientEventHandler): () => void {
      clientEventHandlers.add(handler);
      return () => clientEventHandlers.delete(handler);
    },
    /** Calls `handler` when a socket of this node has closed (its channels left); returns its removal. */
    onSocketClosed(handler: SocketClosedHandler): () => void {
      closeHandlers.add(handler);
      return () => closeHandlers.delete(handler);
    },
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
    /** Removes what dead nodes left in the cluster state and announces it (see Presence). */
    sweepDeadNodes: () => presence.sweepDeadNodes(),
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
      // Close frames held in a coalescing window leave now.
      output.flush();
      await Promise.all(open.map((connection) => onClose(connection)));
      await channels.drainCountWrites();
      await bus.unsubscribe(CONTROL_CHANNEL, controlHandler);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;
