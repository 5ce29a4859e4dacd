import { WebSocket } from 'ws';
import type { Logger } from '../../kernel/index.js';
import { createFanoutWriter, type FramedText } from './fanout-writer.js';
import type { Connection } from './gateway-connection.js';
import { CLOSE, encodeFrame } from './protocol.js';
import type { WebhookSink } from './webhooks.js';

/** How the gateway writes to its sockets, one frame handler at a time, within bounded memory. */
export interface SocketOutput {
  /** Sends a frame to one socket (closed with 4100 if it would hold more than the limit). */
  send(connection: Connection, text: string): void;
  /** Writes a frame encoded once to one of a fan-out's recipients. */
  write(connection: Connection, frame: FramedText): void;
  sendError(connection: Connection, code: number | null, message: string): void;
  /** Closes the socket if it is still open. */
  close(connection: Connection, code: number, reason: string): void;
  /** Runs `task` after the socket's earlier handlers (frames are handled one at a time). */
  handleInTurn(connection: Connection, task: () => Promise<void>, failure: string): void;
  /** Writes at once what a coalescing window holds (see `REALTIME_WRITE_COALESCE_MS`). */
  flush(): void;
}

export function createSocketOutput(options: {
  readonly log: Logger;
  /** Bytes a socket may hold in server memory before it is closed with 4100 (slow consumer). */
  readonly maxBufferedBytes: number;
  /** Milliseconds a just-written socket's next frames are held to share one write. */
  readonly writeCoalesceMs?: number | undefined;
  readonly webhooks: WebhookSink;
  readonly slowDisconnects?: { inc(): void } | undefined;
  /** The cleanup of a closed socket (its channels, presence, counts). */
  readonly onClose: (connection: Connection) => Promise<void>;
}): SocketOutput {
  const { log, webhooks } = options;
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
    handleInTurn(connection, () => options.onClose(connection), 'Realtime close failed');
  };
  const fanout = createFanoutWriter<Connection>({
    maxBufferedBytes: options.maxBufferedBytes,
    onOverflow: closeSlowConsumer,
    coalesceMs: options.writeCoalesceMs ?? 0,
  });
  const send = fanout.send;
  return {
    send,
    write: fanout.write,
    sendError: (connection, code, message) =>
      send(connection, encodeFrame('pusher:error', { code, message })),
    close(connection, code, reason) {
      if (connection.socket.readyState === WebSocket.OPEN) connection.socket.close(code, reason);
    },
    handleInTurn,
    flush: fanout.flush,
  };
}
