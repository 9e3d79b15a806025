/**
 * The acceptor: each node's vote in the protocol. Per name it keeps the highest promised ballot, the
 * accepted value with its ballot and seq, and the local monotonic time of the last renewal. Entries live
 * in shards (a map each) so cleanup walks one shard at a time; their fields are stored flat (entries.ts).
 *
 * Rules (see DESIGN.md, "The protocol"):
 * - prepare(b) promises only a term above every term promised, accepted or abandoned here and the term
 *   floor, and, unless it is an authorised takeover or handoff of exactly the accepted ballot, only when the
 *   name is free here (absent, tombstoned, or expired: 3 heartbeats without renewal by this acceptor's own
 *   clock); a prepare that carries a value is also accepted at once when no value is held here at all
 *   (absent or tombstoned: an expired value needs the guard to ask its holder's node first);
 * - commit(b) accepts only the exact promised ballot (and never an older seq under the same ballot);
 * - repair installs a value only if the acceptor still shows what the guard saw and nothing above it;
 *   sync (the lease holder's full list) installs unless a higher ballot was *accepted* here;
 * - renew(count, digest) from a node renews every entry that node's guards hold when both sides agree;
 * - a promise never followed by a commit is withdrawn (abandon, or after `promiseTtl`), so a leftover
 *   never blocks the guard that holds the name; abandon also takes back a value accepted with the promise
 *   (a void tombstone, which a lease holder's sync may replace like a promise);
 * - a node that restarted without state does not vote (read, prepare) until told it may.
 */
import type { Clock } from '../clock.js';
import { compareBallots, sameBallot } from '../protocol/ballot.js';
import type {
  AbandonMsg, Ballot, CommitMsg, CommitReply, EntryView, PrepareMsg, PrepareReply, ReadMsg, ReadReply,
  RenewMsg, RenewReply, RepairMsg, RepairReply, SyncEntry, SyncMsg, SyncReply, Value,
} from '../protocol/messages.js';
import { Leases } from './leases.js';
import { EntryTable, type Entry } from './entries.js';

/** Settings the acceptor reads on every use (they may change cluster-wide at run time). */
export interface AcceptorSettings {
  /** Entries expired (or tombstoned) longer than this are deleted by cleanup. */
  readonly deleteTimeThreshold: number;
  /** At most this many entries are deleted per cleanup pass. */
  readonly deleteLimit: number;
  /** A promise not followed by a commit within this many ms is withdrawn. */
  readonly promiseTtl: number;
}

export interface AcceptorComponents {
  readonly clock: Clock;
  readonly settings: () => AcceptorSettings;
  /** Told of every value change this acceptor accepts (not of renewals): ownership watches read it. */
  readonly onChange?: (change: AcceptedChange) => void;
  /** The version of this node's member list (see {@link Acceptor.unsettled}). */
  readonly listVersion?: () => number;
}

/** A value change as this acceptor accepted it. */
export interface AcceptedChange {
  readonly name: string;
  readonly before: { readonly ballot: Ballot | undefined; readonly value: Value | null; readonly live: boolean };
  readonly ballot: Ballot;
  readonly value: Value | null;
  readonly seq: number;
}

/** A live value this acceptor holds (for snapshots). */
export interface LiveEntry {
  readonly name: string; readonly ballot: Ballot; readonly value: Value; readonly seq: number;
  /** Known decided (see Entry.confirmed); an unconfirmed value may still be a loser's commit. */
  readonly confirmed: boolean;
}

export interface AcceptorOptions {
  /** Number of shards (must match cluster-wide). */
  readonly shards: number;
  /** Lowest term a grant may use here (a clock-derived floor so tokens rise across whole-cluster restarts). */
  readonly termFloor: number;
  /** Whether the acceptor votes from the start (false after a restart without state). */
  readonly voting: boolean;
}

// Per entry (entries.ts): the promise; `maxTerm`, the highest term ever promised here (a withdrawn promise
// included: deleting the entry raises the floor above it); the accepted ballot, value and seq; `renewedAt`
// and `hb` of the last per-entry renewal; `voided`, a tombstone left by abandon over a value accepted in
// one round trip and never granted (it stands for nothing but its term, so a lease holder's sync may
// replace it as it may replace a promise); `confirmed`, whether the value is known decided (installed from
// its lease holder by sync or adoption, or renewed since its commit: a commit alone may be a loser's,
// taken back later); and `attached`, the guard node whose batched renewals cover it, with its digest hash.

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

export class Acceptor {
  readonly #clock: Clock;
  readonly #settings: () => AcceptorSettings;
  readonly #onChange: ((change: AcceptedChange) => void) | undefined;
  readonly #listVersion: () => number;
  readonly #entries: EntryTable;
  readonly #leases: Leases;
  #floor: number;
  #voting: boolean;
  #cleanupShard = 0;
  readonly stats: AcceptorStats = { entries: 0, promises: 0, acks: 0, nacks: 0, repairs: 0, renewals: 0, renewMismatches: 0, cleaned: 0 };

  constructor(components: AcceptorComponents, options: AcceptorOptions) {
    this.#clock = components.clock;
    this.#settings = components.settings;
    this.#onChange = components.onChange;
    this.#listVersion = components.listVersion ?? ((): number => 0);
    this.#entries = new EntryTable(options.shards);
    this.#leases = new Leases(this.#clock, this.#entries);
    this.#floor = options.termFloor;
    this.#voting = options.voting;
  }

  /** Whether this acceptor votes (answers reads and prepares). */
  get voting(): boolean {
    return this.#voting;
  }

  /** Lets a recovering acceptor vote: it can no longer contradict a live registration. */
  startVoting(): void {
    this.#voting = true;
  }

  /** Number of entries (live, expired and tombstones). */
  get size(): number {
    return this.#entries.size;
  }

  /** Lowest term a new grant may use. */
  get floor(): number {
    return this.#floor;
  }

  read(m: ReadMsg): ReadReply {
    if (!this.#voting) return { type: 'readR', rid: m.rid, name: m.name, ok: false };
    const e = this.#get(m.name);
    return e === undefined
      ? { type: 'readR', rid: m.rid, name: m.name, ok: true }
      : { type: 'readR', rid: m.rid, name: m.name, ok: true, entry: this.#view(e) };
  }

  // Replies spread `base` last: `{ ...base, ok }` (a spread, then keys the source lacks) makes V8 (Node 20)
  // allocate each reply several times over and move it to the old generation; a spread last costs nothing.
  prepare(m: PrepareMsg): PrepareReply {
    const e = this.#get(m.name);
    // The lowest term this acceptor lets a grant of this name use (the guard learns it from every reply).
    const floor = e === undefined ? this.#floor : Math.max(this.#floor, e.maxTerm + 1);
    const base = { type: 'prepR', rid: m.rid, name: m.name, b: m.b, floor } as const;
    if (!this.#voting) return { ok: false, why: 'recovering', ...base };
    // A strictly higher term, not just a higher ballot: the term is the fencing token, and it must rise.
    // maxTerm also covers abandoned terms, so a prepare overtaken by its own abandon installs nothing.
    if (m.b.t < floor) return this.#refuse(base, 'ballot', e);
    if (e !== undefined && e.value !== null && !this.#leases.expired(e) && !this.#mayTakeOver(m, e)) return this.#refuse(base, 'held', e);
    const entry = e ?? this.#create(m.name);
    this.stats.promises++;
    // Not over a void tombstone: a rival that just took its value back here may be racing a lease holder
    // whose sync must be able to reach this acceptor (a promise never blocks that sync; a value does).
    if (m.v !== undefined && m.mode === 'free' && entry.value === null && !entry.voided) {
      this.#install(m.name, entry, m.b, m.v, 1, m.mv ?? -1);
      this.stats.acks++;
      return { type: 'prepR', rid: m.rid, name: m.name, b: m.b, floor, ok: true, acc: true };
    }
    entry.promise = m.b;
    entry.maxTerm = Math.max(entry.maxTerm, m.b.t);
    entry.promisedAt = this.#clock.now();
    return { type: 'prepR', rid: m.rid, name: m.name, b: m.b, floor, ok: true, entry: this.#view(entry) };
  }

  commit(m: CommitMsg): CommitReply {
    const base = { type: 'comR', rid: m.rid, name: m.name, b: m.b, seq: m.seq } as const;
    const e = this.#get(m.name);
    if (e === undefined || !sameBallot(e.promise, m.b) || (sameBallot(e.ballot, m.b) && m.seq < e.seq)) {
      this.stats.nacks++;
      return e === undefined ? { ok: false, why: 'ballot', ...base } : { ok: false, why: 'ballot', entry: this.#view(e), ...base };
    }
    this.#install(m.name, e, m.b, m.v, m.seq, m.mv ?? -1);
    this.stats.acks++;
    return { type: 'comR', rid: m.rid, name: m.name, b: m.b, seq: m.seq, ok: true };
  }

  repair(m: RepairMsg): RepairReply {
    const base = { type: 'repR', rid: m.rid, name: m.name, b: m.b } as const;
    const e = this.#get(m.name);
    const ok = e === undefined
      ? m.expectPromise === undefined && m.expectBallot === undefined
      : sameBallot(e.promise, m.expectPromise) && sameBallot(e.ballot, m.expectBallot) && this.#mayInstall(e, m.b, m.seq);
    if (!ok) {
      this.stats.nacks++;
      return e === undefined ? { ok: false, ...base } : { ok: false, entry: this.#view(e), ...base };
    }
    this.#install(m.name, e ?? this.#create(m.name), m.b, m.v, m.seq, -1);
    this.stats.repairs++;
    return { ok: true, ...base };
  }

  abandon(m: AbandonMsg): void {
    // Recorded even where the prepare never arrived: a prepare of `b` still in flight must find its term used.
    const e = this.#get(m.name) ?? this.#create(m.name);
    e.maxTerm = Math.max(e.maxTerm, m.b.t);
    if (sameBallot(e.promise, m.b) && compareBallots(e.ballot, m.b) < 0) {
      e.promise = e.ballot;
    } else if (sameBallot(e.ballot, m.b) && e.value !== null && e.seq === 1) {
      // Accepted in one round trip, never granted: the guard has moved on, so the value stands for nobody.
      this.#install(m.name, e, m.b, null, 2, -1);
      e.voided = true;
    }
  }

  /** One renewal for every entry node `from`'s guards hold, if both sides agree on which entries those are. */
  renew(from: string, m: RenewMsg): RenewReply {
    const r = this.#leases.renewNode(from, m.count, m.digest, m.hb, m.mv ?? -1);
    if (r.ok) this.stats.renewals++;
    else this.stats.renewMismatches++;
    return { type: 'renewR', rid: m.rid, ok: r.ok, count: r.count, digest: r.digest };
  }

  /** A node's full list of held names after a renewal mismatch: renew or repair each, report refusals. */
  sync(from: string, m: SyncMsg): SyncReply {
    if (m.part === 0) this.#leases.detachAll(from);
    const refused: [number, EntryView][] = [];
    m.entries.forEach(([name, b, v, seq], i) => {
      const e = this.#get(name);
      if (v.gnode !== from) {
        refused.push([i, e === undefined ? { value: null, seq: 0, expired: false } : this.#view(e)]);
        return;
      }
      // A sync comes from the guard holding the lease: while it holds it no rival can gather a majority,
      // so a rival's promise here may be overridden (its commit will then be refused), and so may a void
      // tombstone (a rival's abandoned one-round-trip value); any other value above its ballot may not.
      if (e !== undefined && !e.voided && (compareBallots(e.ballot, b) > 0 || (sameBallot(e.ballot, b) && seq < e.seq))) {
        refused.push([i, this.#view(e)]);
        return;
      }
      const fresh = e !== undefined && sameBallot(e.ballot, b) && e.seq === seq && sameBallot(e.promise, b);
      if (!fresh) this.stats.repairs++;
      this.#install(name, e ?? this.#create(name), b, v, seq, -1, m.hb, true);
    });
    return { type: 'syncR', rid: m.rid, part: m.part, refused };
  }

  /**
   * Deletes up to `deleteLimit` entries that have been free (tombstoned or expired) for longer than
   * `deleteTimeThreshold`, walking one shard per call; entries with a promise in flight are kept.
   * Returns how many were deleted.
   */
  cleanup(): number {
    const { deleteTimeThreshold, deleteLimit } = this.#settings();
    const now = this.#clock.now();
    let removed = 0;
    // One shard per pass: an idle acceptor with many live names must not scan them all every period.
    {
      const shard = this.#cleanupShard;
      this.#cleanupShard = (this.#cleanupShard + 1) % this.#entries.shards;
      this.#entries.forEachIn(shard, (e) => {
        if (removed >= deleteLimit) return false;
        this.#expirePromise(e);
        if (e.promiseVsBallot() > 0) return true;
        const freeSince = this.#leases.lastRenewal(e) + (e.hasValue ? this.#leases.expiry(e) : 0);
        if (now - freeSince <= deleteTimeThreshold) return true;
        this.#floor = Math.max(this.#floor, e.maxTerm + 1, Math.max(e.ballotTerm, 0) + 1);
        this.#leases.detach(e);
        this.#entries.remove(e);
        removed++;
        return true;
      });
    }
    this.stats.cleaned += removed;
    this.stats.entries = this.size;
    return removed;
  }

  // ---- internals --------------------------------------------------------------------------------

  /** The entry of `name`, with a lapsed promise already withdrawn (so every rule sees the same state). */
  #get(name: string): Entry | undefined {
    const e = this.#entries.get(name);
    if (e !== undefined) this.#expirePromise(e);
    return e;
  }

  #create(name: string): Entry {
    const e = this.#entries.create(name, this.#clock.now());
    this.stats.entries++;
    return e;
  }

  /** Whether `(b, seq)` may replace what `e` holds: nothing above b promised or accepted, no older seq. */
  #mayInstall(e: Entry, b: Ballot, seq: number): boolean {
    this.#expirePromise(e);
    if (e.comparePromise(b) > 0 || e.compareBallot(b) > 0) return false;
    return !(e.compareBallot(b) === 0 && seq < e.seq);
  }

  /** `listVersion`: the member list a majority of which the installer asked (-1: it vouches for none). */
  #install(name: string, e: Entry, b: Ballot, v: Value | null, seq: number, listVersion: number, hb?: number, confirmed = false): void {
    const changed = e.compareBallot(b) !== 0 || e.seq !== seq;
    // Built only for a listener: a renewal by sync installs the same value again and tells nobody.
    const before = changed && this.#onChange !== undefined
      ? { ballot: e.ballot, value: e.value, live: e.hasValue && !this.#leases.expired(e) } : undefined;
    this.#leases.detach(e);
    e.promise = b;
    e.maxTerm = Math.max(e.maxTerm, b.t);
    e.ballot = b;
    e.value = v;
    e.seq = seq;
    e.voided = false;
    // The same value again (a sync, a notice after the commit) keeps what the first install vouched for.
    e.listVersion = changed ? listVersion : Math.max(e.listVersion, listVersion);
    e.renewedAt = this.#clock.now();
    e.hb = hb ?? v?.hb ?? 0;
    // A commit never confirms by itself (a duplicate of a loser's commit must not); only what kept it does.
    e.confirmed = confirmed || (!changed && e.confirmed);
    // A handoff marker is not renewed by its old node: it lives 3 heartbeats from its own commit.
    if (v !== null && v.handoffTo === undefined) {
      this.#leases.attach(e, v.gnode, name, b, seq);
    }
    if (before !== undefined) this.#onChange?.({ name, before, ballot: b, value: v, seq });
  }

  /**
   * Whether a live value here is not known to be held by a majority of this node's current member list
   * (one accepted under an older list sits on a majority of that list only, until its node's renewals
   * under the current one have copied it): a membership change waits while a majority says so.
   */
  unsettled(): boolean {
    const version = this.#listVersion();
    let found = false;
    this.#entries.forEach((e) => {
      if (found || !e.hasValue || e.ballotTerm < 0 || this.#leases.expired(e)) return;
      if (!this.#leases.settledUnder(e, version)) found = true;
    });
    return found;
  }

  /**
   * Every live value as sync entries, or undefined when there are more than `limit` (a starting node
   * then waits out an expiry period instead of copying them).
   */
  liveEntries(limit: number): { entries: SyncEntry[]; unconfirmed: number[] } | undefined {
    const entries: SyncEntry[] = [];
    const unconfirmed: number[] = [];
    let over = false;
    this.#entries.forEach((e) => {
      if (over || !e.hasValue || e.ballotTerm < 0 || this.#leases.expired(e)) return;
      if (entries.length >= limit) {
        over = true;
        return;
      }
      if (!this.#leases.confirmed(e)) unconfirmed.push(entries.length);
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
  adopt(entries: readonly SyncEntry[], unconfirmed: ReadonlySet<number> = new Set()): number {
    let n = 0;
    entries.forEach(([name, b, v, seq], i) => {
      const decided = !unconfirmed.has(i);
      const e = this.#get(name);
      if (e !== undefined) {
        const live = e.value !== null && !this.#leases.expired(e);
        const here = live && this.#leases.confirmed(e);
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
      this.#install(name, e ?? this.#create(name), b, v, seq, -1, undefined, decided);
      this.stats.repairs++;
      n++;
    });
    return n;
  }

  /** Live values (not tombstoned, not expired) whose name starts with `prefix`, for snapshots. */
  live(prefix = ''): LiveEntry[] {
    const out: LiveEntry[] = [];
    this.#entries.forEach((e) => {
      if (!e.hasValue || e.ballotTerm < 0 || !e.startsWith(prefix) || this.#leases.expired(e)) return;
      out.push({ name: e.name, ballot: e.ballot as Ballot, value: e.value as Value, seq: e.seq, confirmed: this.#leases.confirmed(e) });
    });
    return out;
  }

  /** The value of `name` under `ballot` is known decided (its guard said a majority accepted it). */
  confirm(name: string, ballot: Ballot): void {
    const e = this.#entries.get(name);
    if (e !== undefined && e.compareBallot(ballot) === 0) e.confirmed = true;
  }

  /**
   * A guard's grant notice: `(b, v, seq)` is decided. The copy here is confirmed; an acceptor that was
   * not asked (a grant needs only a majority) or missed the accept installs it, unless something above
   * it was promised or accepted here since. `listVersion`: the member list a majority of which accepted
   * the grant. Returns whether the value is now held here.
   */
  learn(name: string, b: Ballot, v: Value, seq: number, listVersion = -1): boolean {
    const e = this.#get(name);
    if (e !== undefined && sameBallot(e.ballot, b) && e.seq === seq) {
      e.confirmed = true;
      e.listVersion = Math.max(e.listVersion, listVersion);
      return true;
    }
    if (e !== undefined && !this.#mayInstall(e, b, seq)) return false;
    this.#install(name, e ?? this.#create(name), b, v, seq, listVersion, undefined, true);
    return true;
  }

  /**
   * What this acceptor knows of the value of `name` under `ballot`: 'expired' only when it holds that
   * very value and it went 3 heartbeats without renewal; 'other' when it holds something else (it lags,
   * or has moved on), which says nothing about that value.
   */
  stateOf(name: string, ballot: Ballot): 'live' | 'expired' | 'other' {
    const e = this.#entries.get(name);
    if (e === undefined || !e.hasValue || e.compareBallot(ballot) !== 0) return 'other';
    return this.#leases.expired(e) ? 'expired' : 'live';
  }

  #mayTakeOver(m: PrepareMsg, e: Entry): boolean {
    if (m.from === undefined || !sameBallot(m.from, e.ballot)) return false;
    // A handoff marker names the one guard that may take it; anyone else waits for it to expire.
    if (m.mode === 'takeover') return e.value?.handoffTo === undefined;
    return m.mode === 'handoff' && e.value?.handoffTo === m.b.g;
  }

  /** Withdraws a promise that no commit followed within `promiseTtl`. */
  #expirePromise(e: Entry): void {
    if (e.promiseVsBallot() > 0 && this.#clock.now() - e.promisedAt >= this.#settings().promiseTtl) e.withdrawPromise();
  }

  #view(e: Entry): EntryView {
    const v: { -readonly [K in keyof EntryView]: EntryView[K] } = { value: e.value, seq: e.seq, expired: this.#leases.expired(e) };
    if (e.promise !== undefined) v.promise = e.promise;
    if (e.ballot !== undefined) v.ballot = e.ballot;
    return v;
  }

  #refuse(base: { type: 'prepR'; rid: number; name: string; b: Ballot; floor: number }, why: 'ballot' | 'held', e: Entry | undefined): PrepareReply {
    this.stats.nacks++;
    return e === undefined ? { ok: false, why, ...base } : { ok: false, why, entry: this.#view(e), ...base };
  }
}
