import type { LatencyEstimate } from 'socle';

/** How the server turns the instant a buzz arrived into the instant it was pressed. */
export interface FairnessPolicy {
  /** False: buzzes are ordered by arrival alone (the nearest player wins ties). */
  readonly compensate: boolean;
  /**
   * The most a player's estimated one-way latency may move their buzz earlier, in milliseconds:
   * a player who delays their pongs to look far away gains at most this.
   */
  readonly maxCompensationMs: number;
}

/**
 * The instant a buzz was pressed as the server estimates it, on the server's monotonic clock:
 * its arrival minus the player's one-way latency (half the median round trip of server pings,
 * measured by Socle's realtime module), capped. The client's clock is never read; a player with no
 * sample yet gets no correction.
 */
export function pressedAt(
  receivedAt: number,
  latency: LatencyEstimate | undefined,
  policy: FairnessPolicy,
): number {
  if (!policy.compensate || latency === undefined) return receivedAt;
  return receivedAt - Math.min(Math.max(latency.oneWayMs, 0), policy.maxCompensationMs);
}
