import * as wsModule from 'ws';
import { WebSocket } from 'ws';

/** A text message as a payload and as a complete WebSocket frame (header + payload). */
export interface FramedText {
  readonly payload: Buffer;
  /** Undefined when ws's frame builder is not available: recipients then get `send(payload)`. */
  readonly framed: Buffer | undefined;
}

/** What the writer keeps on each recipient: `heldInTurn` and `heldInWindow` start at 0. */
export interface FanoutRecipient {
  readonly socket: WebSocket;
  /** The writer's turn in which writes to this socket were last held (corked). */
  heldInTurn: number;
  /** The coalescing window in which writes to this socket were last held (see `coalesceMs`). */
  heldInWindow: number;
  /** When this socket's held writes were last released (`performance.now()`); -Infinity before. */
  releasedAt: number;
}

// ws's own frame builder (`Sender.frame`, exported by ws but not declared by @types/ws).
const frameBuilder = (
  wsModule as unknown as {
    Sender?: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
  }
).Sender;

/** Encodes and frames a text message once, for every recipient of a fan-out. */
export function framedText(text: string): FramedText {
  const payload = Buffer.from(text);
  const parts = frameBuilder?.frame(payload, {
    fin: true,
    rsv1: false,
    opcode: 1,
    mask: false,
    readOnly: true,
  });
  return { payload, framed: parts === undefined ? undefined : Buffer.concat(parts) };
}

interface RawSocket {
  /** Bytes written and not yet taken by the kernel (corked ones included). */
  readonly writableLength: number;
  write(data: Buffer): boolean;
  cork(): void;
  uncork(): void;
}

/**
 * Whether a frame of `frameBytes` must not be queued on a socket that already holds `buffered`
 * bytes in user space: it would go past `limit`. A socket with nothing waiting always takes the
 * frame, so an event larger than the limit still reaches clients that keep up.
 */
function overflows(buffered: number, frameBytes: number, limit: number): boolean {
  return buffered !== 0 && buffered + frameBytes > limit;
}

/**
 * Sockets uncorked (written) per turn of the event loop. ≈ 1 ms of system calls on the bench
 * machine: between two steps the loop reads what arrived (publishes, pings, HTTP requests).
 */
const RELEASE_STEP = 128;

interface FanoutWriterOptions<Recipient extends FanoutRecipient> {
  /** Most bytes a socket may hold in user space (`REALTIME_MAX_BUFFERED_BYTES`). */
  readonly maxBufferedBytes: number;
  /**
   * Called, instead of writing, when a frame would take the recipient past the limit (the frame is
   * dropped); it should close the socket, after which nothing more is written to it.
   */
  readonly onOverflow: (recipient: Recipient, bufferedBytes: number) => void;
  /**
   * A socket released less than this many milliseconds ago has its next frames held until the
   * current window ends (at most this long), then written in one system call
   * (`REALTIME_WRITE_COALESCE_MS`; 0: held until the end of the event loop's turn only).
   */
  readonly coalesceMs?: number;
}

/**
 * The TCP socket under a WebSocket when a pre-framed message may be written to it directly, else
 * undefined. This reaches into ws internals (`_socket`, `_sender._state`): it is safe only while
 * the sender is idle (no compression, nothing queued), which is checked, and the caller falls back
 * to `send` otherwise or if a ws upgrade renames them.
 */
function rawSocketOf(socket: WebSocket): RawSocket | undefined {
  const internals = socket as unknown as {
    _socket?: RawSocket & { writable?: boolean };
    _sender?: { _state?: number; _queue?: unknown[] };
  };
  const sender = internals._sender;
  if (
    internals._socket?.writable !== true ||
    sender === undefined ||
    sender._state !== 0 ||
    (sender._queue?.length ?? 1) !== 0
  )
    return undefined;
  return internals._socket;
}

/**
 * Writes fan-out frames to sockets. Each message is framed once and the same bytes are written to
 * every recipient (one `write` per socket instead of ws's header allocation, cork, two writes and
 * uncork). Writes are held (the socket is corked) until the current turn of the event loop ends
 * (`setImmediate`): a socket that receives several messages in one turn (a burst of publishes, a
 * batch from Redis, a `batch_events` call) gets them in one `writev`.
 *
 * Why: on this path nearly all the CPU is the kernel's, one system call per socket and write
 * (≈ 6–7 µs each on the loopback of the bench machine, against ≈ 1.5 µs of JavaScript), so fewer
 * system calls is the one large saving left. Holding costs a lone message little: its writes all
 * leave at the end of the same turn, before the loop next waits for I/O (measured with the
 * realtime-fanout bench: see bench/README.md).
 *
 * The held sockets are released {@link RELEASE_STEP} at a time, one step per turn of the event
 * loop, not all at once: a fan-out to 10,000 sockets is ≈ 100 ms of system calls, during which a
 * node releasing them in one go would read nothing (no publish, ping or HTTP request). Between
 * steps the loop reads I/O, and what the new publishes write to a socket not yet released joins
 * its held frames (corked twice, it is written when its last hold is released): under a stream
 * of publishes each socket gets several messages per system call instead of one, and messages
 * stay in order per socket. A lone message costs one extra loop turn per step.
 *
 * With `coalesceMs` (`REALTIME_WRITE_COALESCE_MS`), a socket released less than that long ago
 * is held until the current window ends instead (one timer for every socket, set only while
 * something is held): the frames of a burst spread over a few turns (a game's order after each
 * buzz) leave in one system call, each at most `coalesceMs` late. A socket quiet for longer gets
 * its next frame at the end of the turn, as without it: a lone message waits nothing, the way
 * Nagle's algorithm spares the first segment. Frames sent through ws meanwhile (pings, errors)
 * go into the same held write, so the socket's order is kept.
 *
 * Each write first reads what the socket already holds in user space (one property read, no
 * allocation): a frame that would take it past `maxBufferedBytes` is dropped and `onOverflow`
 * closes the socket. Without this, a client that stops reading makes Node buffer everything it is
 * sent, without bound, once the kernel's socket buffers are full.
 */
export function createFanoutWriter<Recipient extends FanoutRecipient>(
  options: FanoutWriterOptions<Recipient>,
) {
  const { maxBufferedBytes, onOverflow } = options;
  const coalesceMs = options.coalesceMs ?? 0;
  let turn = 1;
  /** Sockets held until the end of this turn, and their recipients (same index). */
  let held: Held<Recipient> = { sockets: [], recipients: [] };
  let window = 1;
  /** Sockets held until the current coalescing window ends. */
  let delayed: Held<Recipient> = { sockets: [], recipients: [] };
  let windowTimer: NodeJS.Timeout | undefined;

  /** Uncorks `holds.sockets[from…]`, {@link RELEASE_STEP} of them now and the rest in later turns. */
  const release = (holds: Held<Recipient>, from: number) => {
    const to = Math.min(from + RELEASE_STEP, holds.sockets.length);
    const at = coalesceMs > 0 ? performance.now() : 0;
    for (let index = from; index < to; index++) {
      (holds.sockets[index] as RawSocket).uncork();
      (holds.recipients[index] as Recipient).releasedAt = at;
    }
    if (to < holds.sockets.length) setImmediate(release, holds, to);
  };
  const endTurn = () => {
    const releasing = held;
    held = { sockets: [], recipients: [] };
    turn++;
    release(releasing, 0);
  };
  const endWindow = () => {
    windowTimer = undefined;
    const releasing = delayed;
    delayed = { sockets: [], recipients: [] };
    window++;
    release(releasing, 0);
  };
  /** Corks `raw` until the end of the turn, or of the window when it was released just now. */
  const hold = (recipient: Recipient, raw: RawSocket) => {
    raw.cork();
    if (coalesceMs > 0 && performance.now() - recipient.releasedAt < coalesceMs) {
      if (windowTimer === undefined) windowTimer = setTimeout(endWindow, coalesceMs);
      recipient.heldInWindow = window;
      delayed.sockets.push(raw);
      delayed.recipients.push(recipient);
      return;
    }
    if (held.sockets.length === 0) setImmediate(endTurn);
    recipient.heldInTurn = turn;
    held.sockets.push(raw);
    held.recipients.push(recipient);
  };

  /**
   * Sends a text message through ws, unless the socket's buffer would go past the limit: then
   * `onOverflow` is called instead.
   */
  const send = (recipient: Recipient, data: string | Buffer): void => {
    const { socket } = recipient;
    if (socket.readyState !== WebSocket.OPEN) return;
    // ws's own count: its sender's queue plus the TCP socket's buffer.
    const buffered = socket.bufferedAmount;
    if (overflows(buffered, Buffer.byteLength(data), maxBufferedBytes)) onOverflow(recipient, buffered);
    else socket.send(data, { binary: false });
  };

  return {
    send,
    /**
     * Writes `frame` to `recipient` (or sends it through ws when the socket cannot take raw bytes),
     * unless the socket's buffer would go past the limit: then `onOverflow` is called instead.
     */
    write(recipient: Recipient, frame: FramedText): void {
      const { socket } = recipient;
      if (socket.readyState !== WebSocket.OPEN) return;
      const raw = frame.framed === undefined ? undefined : rawSocketOf(socket);
      if (raw === undefined || frame.framed === undefined) {
        send(recipient, frame.payload);
        return;
      }
      // The sender is idle (rawSocketOf checked), so the TCP socket holds everything buffered.
      const buffered = raw.writableLength;
      if (overflows(buffered, frame.framed.length, maxBufferedBytes)) {
        onOverflow(recipient, buffered);
        return;
      }
      if (recipient.heldInTurn !== turn && recipient.heldInWindow !== window) hold(recipient, raw);
      raw.write(frame.framed);
    },

    /** Writes what the current coalescing window holds now (a shutdown closing its sockets). */
    flush(): void {
      if (windowTimer === undefined) return;
      clearTimeout(windowTimer);
      endWindow();
    },
  };
}

/** Held (corked) sockets and, at the same index, their recipients. */
interface Held<Recipient> {
  readonly sockets: RawSocket[];
  readonly recipients: Recipient[];
}
