import { performance } from 'node:perf_hooks';

/** How many round-trip samples a connection keeps (the most recent ones). */
const SAMPLES_KEPT = 16;

/**
 * A connection's measured round-trip time, from the server's `pusher:ping` to the client's
 * `pusher:pong` (every Pusher client answers a server ping at once), in milliseconds of this
 * node's monotonic clock. The client's clock plays no part: only the server's send and receive
 * instants are compared, so a client can only make itself look slower (a late pong), never faster
 * than its real path: users of `oneWayMs` cap what they grant for it.
 */
export interface LatencyEstimate {
  /** Samples the estimate is made of (at most 16, the most recent). */
  readonly samples: number;
  /** The median round trip: robust to a sample delayed by a lost packet or a busy client. */
  readonly rttMs: number;
  /** The fastest round trip seen. */
  readonly minRttMs: number;
  /** Half the median round trip: the estimate of one direction. */
  readonly oneWayMs: number;
}

/** What a connection holds for its latency: recent samples and the probe in flight. */
export interface LatencyState {
  samples: number[];
  probeSentAt: number | undefined;
  probesLeft: number;
}

export const newLatencyState = (): LatencyState => ({ samples: [], probeSentAt: undefined, probesLeft: 0 });

/** The node's monotonic clock in milliseconds (`performance.now()`), the one receive times use. */
export const monotonicNow = () => performance.now();

/** Records the answer to a probe; returns whether another probe should be sent now. */
export function recordPong(state: LatencyState, receivedAt: number): boolean {
  if (state.probeSentAt === undefined) return false; // unsolicited: it proves nothing
  state.samples.push(Math.max(0, receivedAt - state.probeSentAt));
  if (state.samples.length > SAMPLES_KEPT) state.samples.shift();
  state.probeSentAt = undefined;
  if (state.probesLeft <= 0) return false;
  state.probesLeft -= 1;
  return true;
}

/** The estimate of a connection's samples, or undefined before its first sample. */
export function latencyEstimate(state: LatencyState): LatencyEstimate | undefined {
  if (state.samples.length === 0) return undefined;
  const sorted = [...state.samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[middle] as number)
      : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  return { samples: sorted.length, rttMs: median, minRttMs: sorted[0] as number, oneWayMs: median / 2 };
}
