/**
 * Lease arithmetic. An acceptor counts a value as expired 3 heartbeats after it last received a renewal,
 * by its own clock. The owner's lease runs from the *send* time S of the last renewal a majority acked,
 * and ends early enough that, even with every clock drifting by the bound, it ends before any
 * acceptor of that majority can count the value as expired.
 */

/** Heartbeats are never shorter than this. */
export const HEARTBEAT_FLOOR_MS = 1000;

/** Clock drift bound assumed between any two nodes (fraction of elapsed time). */
export const DRIFT_BOUND = 0.01;

/** Safety margin taken off every lease, for timer lateness on the owner's node. */
export const LEASE_MARGIN_MS = 100;

/** The heartbeat actually used for a requested one. */
export function effectiveHeartbeat(ms: number): number {
  return Math.max(HEARTBEAT_FLOOR_MS, Math.round(ms));
}

/** How long after a renewal's send time the owner may still act on it. */
export function leaseDuration(hb: number): number {
  return 3 * hb * (1 - 2 * DRIFT_BOUND) - LEASE_MARGIN_MS;
}

/** How long an acceptor keeps a value live after receiving a renewal. */
export function expiryDuration(hb: number): number {
  return 3 * hb;
}
