/**
 * Ballot ordering. A ballot is (term, guard id); terms order first, guard ids break ties, so two guards
 * never propose the same ballot.
 */
import type { Ballot } from './messages.js';

/** Negative when a < b, zero when equal, positive when a > b. `undefined` sorts below every ballot. */
export function compareBallots(a: Ballot | undefined, b: Ballot | undefined): number {
  if (a === undefined) return b === undefined ? 0 : -1;
  if (b === undefined) return 1;
  if (a.t !== b.t) return a.t < b.t ? -1 : 1;
  return a.g < b.g ? -1 : a.g > b.g ? 1 : 0;
}

/** True when both are absent or both name the same ballot. */
export function sameBallot(a: Ballot | undefined, b: Ballot | undefined): boolean {
  return compareBallots(a, b) === 0;
}

/** The higher of two ballots. */
export function maxBallot(a: Ballot | undefined, b: Ballot | undefined): Ballot | undefined {
  return compareBallots(a, b) >= 0 ? a : b;
}
