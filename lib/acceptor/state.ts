/**
 * The acceptor's state and what every one of its rules shares: the entries (entries.ts) with their
 * leases (leases.ts), finding an entry with a lapsed promise already withdrawn, creating one, installing
 * a value (and telling the change listener), and an entry's wire view. The voting rules (acceptor.ts)
 * and what the acceptor shares with other nodes (knowledge.ts) both work on it.
 */
import type { Clock } from '../clock.js';
import type { Ballot, EntryView, Value } from '../protocol/messages.js';
import { EntryTable } from './entries.js';
import type { Entry } from './entry.js';
import { Leases } from './leases.js';

/** Settings the acceptor reads on every use (they may change cluster-wide at run time). */
export interface AcceptorSettings {
  /** Entries expired (or tombstoned) longer than this are deleted by cleanup. */
  readonly deleteTimeThreshold: number;
  /** At most this many entries are deleted per cleanup pass. */
  readonly deleteLimit: number;
  /** A promise not followed by a commit within this many ms is withdrawn. */
  readonly promiseTtl: number;
}

/** A value change as this acceptor accepted it. */
export interface AcceptedChange {
  readonly name: string;
  readonly before: { readonly ballot: Ballot | undefined; readonly value: Value | null; readonly live: boolean };
  readonly ballot: Ballot;
  readonly value: Value | null;
  readonly seq: number;
}

/** Counters the node's stat() reports. */
export interface AcceptorStats {
  entries: number;
  promises: number;
  acks: number;
  nacks: number;
  repairs: number;
  renewals: number;
  renewMismatches: number;
  cleaned: number;
}

// Per entry (entries.ts): the promise; `maxTerm`, the highest term ever promised here (a withdrawn promise
// included: deleting the entry raises the floor above it); the accepted ballot, value and seq; `renewedAt`
// and `hb` of the last per-entry renewal; `voided`, a tombstone left by abandon over a value accepted in
// one round trip and never granted (it stands for nothing but its term, so a lease holder's sync may
// replace it as it may replace a promise); `confirmed`, whether the value is known decided (installed from
// its lease holder by sync or adoption, or renewed since its commit: a commit alone may be a loser's,
// taken back later); `attached`, the guard node whose batched renewals cover it, with its digest hash; and
// `listVersion`, the member list a majority of which holds the value by its installer's word.

/** One acceptor's entries, leases and counters, with the operations its rules share. */
export class AcceptorState {
  readonly clock: Clock;
  readonly settings: () => AcceptorSettings;
  readonly onChange: ((change: AcceptedChange) => void) | undefined;
  readonly entries: EntryTable;
  readonly leases: Leases;
  readonly stats: AcceptorStats = { entries: 0, promises: 0, acks: 0, nacks: 0, repairs: 0, renewals: 0, renewMismatches: 0, cleaned: 0 };

  constructor(clock: Clock, settings: () => AcceptorSettings, onChange: ((change: AcceptedChange) => void) | undefined, shards: number) {
    this.clock = clock;
    this.settings = settings;
    this.onChange = onChange;
    this.entries = new EntryTable(shards);
    this.leases = new Leases(clock, this.entries);
  }

  /** The entry of `name`, with a lapsed promise already withdrawn (so every rule sees the same state). */
  get(name: string): Entry | undefined {
    const e = this.entries.get(name);
    if (e !== undefined) this.expirePromise(e);
    return e;
  }

  create(name: string): Entry {
    const e = this.entries.create(name, this.clock.now());
    this.stats.entries++;
    return e;
  }

  /** Whether `(b, seq)` may replace what `e` holds: nothing above b promised or accepted, no older seq. */
  mayInstall(e: Entry, b: Ballot, seq: number): boolean {
    this.expirePromise(e);
    if (e.comparePromise(b) > 0 || e.compareBallot(b) > 0) return false;
    return !(e.compareBallot(b) === 0 && seq < e.seq);
  }

  /** `listVersion`: the member list a majority of which the installer asked (-1: it vouches for none). */
  install(name: string, e: Entry, b: Ballot, v: Value | null, seq: number, listVersion: number, hb?: number, confirmed = false): void {
    const changed = e.compareBallot(b) !== 0 || e.seq !== seq;
    // Built only for a listener: a renewal by sync installs the same value again and tells nobody.
    const before = changed && this.onChange !== undefined
      ? { ballot: e.ballot, value: e.value, live: e.hasValue && !this.leases.expired(e) } : undefined;
    this.leases.detach(e);
    e.promise = b;
    e.maxTerm = Math.max(e.maxTerm, b.t);
    e.ballot = b;
    e.value = v;
    e.seq = seq;
    e.voided = false;
    // The same value again (a sync, a notice after the commit) keeps what the first install vouched for.
    e.listVersion = changed ? listVersion : Math.max(e.listVersion, listVersion);
    e.renewedAt = this.clock.now();
    e.hb = hb ?? v?.hb ?? 0;
    // A commit never confirms by itself (a duplicate of a loser's commit must not); only what kept it does.
    e.confirmed = confirmed || (!changed && e.confirmed);
    // A handoff marker is not renewed by its old node: it lives 3 heartbeats from its own commit.
    if (v !== null && v.handoffTo === undefined) {
      this.leases.attach(e, v.gnode, name, b, seq);
    }
    if (before !== undefined) this.onChange?.({ name, before, ballot: b, value: v, seq });
  }

  /** Withdraws a promise that no commit followed within `promiseTtl`. */
  expirePromise(e: Entry): void {
    if (e.promiseVsBallot() > 0 && this.clock.now() - e.promisedAt >= this.settings().promiseTtl) e.withdrawPromise();
  }

  view(e: Entry): EntryView {
    const v: { -readonly [K in keyof EntryView]: EntryView[K] } = { value: e.value, seq: e.seq, expired: this.leases.expired(e) };
    if (e.promise !== undefined) v.promise = e.promise;
    if (e.ballot !== undefined) v.ballot = e.ballot;
    return v;
  }
}
