/**
 * What an acceptor shares beyond its votes: its live values, for a starting node's catch-up (hello
 * replies) and for ownership snapshots; their adoption on a node that starts; and whether they are
 * all known to sit on a majority of the current member list (a membership change asks).
 */
import { compareBallots, sameBallot } from '../protocol/ballot.js';
import type { Ballot, SyncEntry, Value } from '../protocol/messages.js';
import type { AcceptorState } from './state.js';

/** A live value this acceptor holds (for snapshots). */
export interface LiveEntry {
  readonly name: string; readonly ballot: Ballot; readonly value: Value; readonly seq: number;
  /** Known decided (see Entry.confirmed); an unconfirmed value may still be a loser's commit. */
  readonly confirmed: boolean;
}

/**
 * Whether a live value here is not known to be held by a majority of this node's current member list
 * (one accepted under an older list sits on a majority of that list only, until its node's renewals
 * under the current one have copied it): a membership change waits while a majority says so.
 */
export function unsettled(s: AcceptorState, version: number): boolean {
  let found = false;
  s.entries.forEach((e) => {
    if (found || !e.hasValue || e.ballotTerm < 0 || s.leases.expired(e)) return;
    if (!s.leases.settledUnder(e, version)) found = true;
  });
  return found;
}

/**
 * Every live value as sync entries, or undefined when there are more than `limit` (a starting node
 * then waits out an expiry period instead of copying them).
 */
export function liveEntries(s: AcceptorState, limit: number): { entries: SyncEntry[]; unconfirmed: number[] } | undefined {
  const entries: SyncEntry[] = [];
  const unconfirmed: number[] = [];
  let over = false;
  s.entries.forEach((e) => {
    if (over || !e.hasValue || e.ballotTerm < 0 || s.leases.expired(e)) return;
    if (entries.length >= limit) {
      over = true;
      return;
    }
    if (!s.leases.confirmed(e)) unconfirmed.push(entries.length);
    entries.push([e.name, e.ballot as Ballot, e.value as Value, e.seq]);
  });
  return over ? undefined : { entries, unconfirmed };
}

/**
 * Installs live values another member holds (a starting node catching up before it votes): each one
 * unless a higher ballot (or a newer seq) is already here. A value known decided (not listed in
 * `unconfirmed`) also replaces one here that is not: a value accepted in one round trip by a minority
 * carries a higher ballot than the live registration it raced, and must not hide it. Returns how many
 * were installed.
 */
export function adopt(s: AcceptorState, entries: readonly SyncEntry[], unconfirmed: ReadonlySet<number> = new Set()): number {
  let n = 0;
  entries.forEach(([name, b, v, seq], i) => {
    const decided = !unconfirmed.has(i);
    const e = s.get(name);
    if (e !== undefined) {
      const live = e.value !== null && !s.leases.expired(e);
      const here = live && s.leases.confirmed(e);
      if (sameBallot(e.ballot, b) && seq <= e.seq) {
        if (decided && seq === e.seq) e.confirmed = true;
        return;
      }
      const above = compareBallots(e.promise, b) > 0 || compareBallots(e.ballot, b) > 0;
      // Higher here: keep it, unless it is an undecided value and this one is decided.
      if (above && !(decided && live && !here)) return;
      // A decided live value here is not replaced by another ballot's that nobody has confirmed yet
      // (a later seq of the same ballot, a handoff marker say, comes from the same guard and stands).
      if (!above && !decided && here && !sameBallot(e.ballot, b)) return;
    }
    s.install(name, e ?? s.create(name), b, v, seq, -1, undefined, decided);
    s.stats.repairs++;
    n++;
  });
  return n;
}

/** Live values (not tombstoned, not expired) whose name starts with `prefix`, for snapshots. */
export function live(s: AcceptorState, prefix = ''): LiveEntry[] {
  const out: LiveEntry[] = [];
  s.entries.forEach((e) => {
    if (!e.hasValue || e.ballotTerm < 0 || !e.startsWith(prefix) || s.leases.expired(e)) return;
    out.push({ name: e.name, ballot: e.ballot as Ballot, value: e.value as Value, seq: e.seq, confirmed: s.leases.confirmed(e) });
  });
  return out;
}
