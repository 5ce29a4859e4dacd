import type { RawData } from 'ws';
import type { Logger } from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import type { SocketOutput } from './gateway-backpressure.js';
import type { ChannelRouter } from './gateway-channels.js';
import type { Connection } from './gateway-connection.js';
import { type LatencyEstimate, latencyEstimate, monotonicNow, recordPong } from './gateway-latency.js';
import type { Subscriptions } from './gateway-subscriptions.js';
import {
  type ChannelType,
  CLOSE,
  channelType,
  ERROR,
  encodeFrame,
  parseJsonObject,
  sameSecret,
  userAuth,
} from './protocol.js';
import type { WebhookEvent } from './webhooks.js';

/**
 * A `client-` event as the node that received it saw it, for server code
 * (`realtime.onClientEvent`); the frame is relayed to the channel's other subscribers as well.
 */
export interface ReceivedClientEvent {
  readonly appId: string;
  readonly channel: string;
  readonly event: string;
  /** The event's `data` as the client sent it (a string; JSON when the client sent an object). */
  readonly data: string;
  readonly socketId: string;
  /**
   * Who sent it, as the server knows it: the presence member the socket joined the channel as, or
   * else the user it signed in as (`pusher:signin`); undefined for neither. On a `private-`
   * channel a module's authorizer may tie the channel name itself to one user.
   */
  readonly userId: string | undefined;
  /**
   * When the frame arrived, in this node's monotonic milliseconds (`performance.now()`), read
   * before it waited behind the socket's earlier frames. Never the client's clock.
   */
  readonly receivedAt: number;
  /** The socket's measured latency at that moment (`realtime.probeLatency` takes samples). */
  readonly latency: LatencyEstimate | undefined;
}

export type ClientEventHandler = (event: ReceivedClientEvent) => void | Promise<void>;

/**
 * The frames a client sends: ping/pong, subscribe/unsubscribe, sign-in and `client-` events
 * (private and presence channels, within the app's per-second budget).
 */
export function createClientMessageHandler(options: {
  readonly output: SocketOutput;
  readonly channels: ChannelRouter;
  readonly subscriptions: Subscriptions;
  readonly emit: (app: RealtimeApp, event: WebhookEvent) => void;
  /** Records a socket signed in as `userId` (for terminations). */
  readonly signedIn: (connection: Connection, userId: string) => void;
  readonly now: () => number;
  readonly maxMessageBytes: number;
  /** Server code listening to client events (`realtime.onClientEvent`). */
  readonly handlers: ReadonlySet<ClientEventHandler>;
  readonly log: Logger;
}): (connection: Connection, raw: RawData, isBinary: boolean, receivedAt: number) => Promise<void> {
  const { output, channels, subscriptions, emit, now } = options;
  const { send, sendError, close } = output;

  function notifyHandlers(received: ReceivedClientEvent) {
    for (const handler of options.handlers) {
      try {
        const result = handler(received);
        if (result instanceof Promise)
          result.catch((error) => options.log.error({ err: error }, 'Realtime client event handler failed'));
      } catch (error) {
        options.log.error({ err: error }, 'Realtime client event handler failed');
      }
    }
  }

  async function clientEvent(
    connection: Connection,
    frame: Record<string, unknown>,
    size: number,
    receivedAt: number,
  ) {
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
    if (options.handlers.size > 0) {
      notifyHandlers({
        appId: connection.app.id,
        channel,
        event: event as string,
        data: encoded,
        socketId: connection.socketId,
        userId: userId ?? connection.userId,
        receivedAt,
        latency: latencyEstimate(connection.latency),
      });
    }
    if (channels.mayReachOthers(connection.app.id, channel, connection.socketId))
      await channels.publishFrame(
        connection.app.id,
        channel,
        encodeFrame(
          event as string,
          encoded,
          channel,
          userId === undefined ? undefined : { user_id: userId },
        ),
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
    options.signedIn(connection, id);
    send(connection, encodeFrame('pusher:signin_success', { user_data: userData }));
  }

  async function onMessage(connection: Connection, raw: RawData, isBinary: boolean, receivedAt: number) {
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
        // The answer to a latency probe: one more sample, and the next probe if more were asked.
        if (recordPong(connection.latency, receivedAt)) {
          connection.latency.probeSentAt = monotonicNow();
          send(connection, encodeFrame('pusher:ping', {}));
        }
        return;
      case 'pusher:subscribe':
        return subscriptions.subscribe(connection, data);
      case 'pusher:unsubscribe':
        return typeof data.channel === 'string'
          ? subscriptions.unsubscribe(connection, data.channel)
          : undefined;
      case 'pusher:signin':
        return signin(connection, data);
      default:
        if (event.startsWith('client-'))
          return clientEvent(connection, message, (text as string).length, receivedAt);
        return sendError(connection, ERROR.invalidEvent, `Unsupported event "${event.slice(0, 200)}"`);
    }
  }

  return onMessage;
}
