/**
 * How the fan-out scenario talks to its subscriber processes: settings go down in one environment
 * variable, phases and reports travel over the IPC channel.
 *
 * Timing: every benchmark event carries its publish time, `process.hrtime.bigint()` in
 * nanoseconds taken by the publisher just before the HTTP call. On Linux that clock is
 * CLOCK_MONOTONIC, one clock for every process of the machine (not a per-process origin like
 * `performance.now()`), so a subscriber process subtracts it from its own reading at arrival.
 * Below 104 days of uptime the nanoseconds fit a double exactly.
 */

/** The two wire protocols measured: Pusher 7 (Socle) and Engine.IO 4 / Socket.IO 5 (baseline). */
export type WireProtocol = 'pusher' | 'socket.io';

/** Environment variable carrying the JSON of {@link SubscriberSettings}. */
export const SUBSCRIBER_SETTINGS_ENV = 'BENCH_SUBSCRIBER_SETTINGS';

export interface SubscriberSettings {
  /** The server's base URL (`http://127.0.0.1:<port>`). */
  readonly url: string;
  readonly protocol: WireProtocol;
  /** Sockets this process opens; each joins the benchmark channel. */
  readonly sockets: number;
  /** Source address of its sockets (127.0.0.x): each has its own 28k ephemeral ports. */
  readonly localAddress: string;
}

/** The benchmark event's data: `@<message number>@<publish time, ns>@`, the same on both servers. */
export function benchPayload(message: number, publishedAtNs: number): string {
  return `@${message}@${publishedAtNs}@`;
}

/** Sent by the harness. */
export type SubscriberCommand =
  /** Latency phase: record each delivery's latency; report `received` once every socket got a message. */
  | { readonly type: 'latency'; readonly messages: number }
  /** Throughput phase: count deliveries only. */
  | { readonly type: 'throughput' }
  /** Answer `drained` once `expected` deliveries of the throughput phase arrived (or after `timeoutMs`). */
  | { readonly type: 'drain'; readonly expected: number; readonly timeoutMs: number }
  /** Answer `latencies` with every latency recorded in the latency phase. */
  | { readonly type: 'report' };

/** Sent by a subscriber process. */
export type SubscriberReport =
  /** Every socket joined; `retries`: handshakes tried again after the server refused or dropped them. */
  | { readonly type: 'ready'; readonly retries: number }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'received'; readonly message: number }
  | {
      readonly type: 'drained';
      readonly deliveries: number;
      /** hrtime (ns) of the last delivery. */
      readonly lastAtNs: number;
    }
  /** Every latency of the latency phase, in microseconds. */
  | { readonly type: 'latencies'; readonly micros: number[] };
