import { performance } from 'node:perf_hooks';
import type { LatencyEstimate } from 'socle';

/**
 * Fleet milliseconds: an instant of this process's monotonic clock (`performance.now()`, the one
 * Socle reads client-event arrivals on) as wall-clock epoch milliseconds
 * (`performance.timeOrigin + monotonic`). Processes on one machine share the wall clock, so their
 * fleet milliseconds agree (to the rounding of their time origins); on a fleet they agree as well
 * as the nodes' clocks do (NTP). Only used where two processes must agree: ticket ages and the
 * transit of a forwarded event.
 */
export const fleetTime = (monotonic: number) => performance.timeOrigin + monotonic;

/** A player's client event, forwarded by the node holding their socket to the room's host. */
export interface ForwardedEvent {
  readonly kind: 'event';
  readonly userId: string;
  readonly socketId: string;
  readonly event: string;
  readonly data: string;
  /** When the frame arrived on the node holding the socket (its fleet milliseconds). */
  readonly receivedAt: number;
  /** When that node forwarded it (its fleet milliseconds). */
  readonly sentAt: number;
  /** The socket's latency, measured on the node holding it (the only one that can). */
  readonly latency: LatencyEstimate | null;
}

/** What nodes send a room's host on the room's bus channel. */
export type RoomMessage =
  | ForwardedEvent
  /** A socket of a seated player closed on another node: the reconnection grace starts. */
  | { readonly kind: 'closed'; readonly userId: string; readonly socketId: string }
  /** Another node asks for the room drawn as it is (a player's `GET /me` landed there). */
  | {
      readonly kind: 'snapshot';
      readonly userId: string;
      readonly requestId: string;
      readonly replyTo: string;
    };

/** The host's answer to a snapshot request, on the asking node's bus channel. */
export interface SnapshotReply {
  readonly requestId: string;
  readonly room: unknown;
}

/**
 * When a forwarded event arrived, on the host's monotonic clock. The time the event waited on the
 * forwarding node (`sentAt − receivedAt`) is read on one clock, that node's, and is exact. The
 * transit between the nodes is the only place two clocks meet (`host now − sentAt`): it is taken
 * as measured but never below 0 (a forwarding clock ahead of the host's cannot put an arrival
 * after the host saw it) nor above `maxSkewMs` (a forwarding clock behind cannot move its
 * players' buzzes earlier by more than that). On one machine the two clocks are one; on a fleet
 * NTP keeps them within a few milliseconds and `maxSkewMs` caps what a worse skew can do.
 */
export function forwardedArrival(forwarded: ForwardedEvent, hostNow: number, maxSkewMs: number): number {
  const held = Math.max(0, forwarded.sentAt - forwarded.receivedAt);
  const transit = Math.min(Math.max(fleetTime(hostNow) - forwarded.sentAt, 0), maxSkewMs);
  return hostNow - transit - held;
}
