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
 * - a node that restarted without state does not vote (read, prepare) until told it may;
 * - a prepare, commit, renewal or sync from a sender whose member list is older than this node's is
 *   refused (`stale`): once a list is installed at a majority of the one before, a guard still asking
 *   that older list can no longer gather a majority of it, however many changes it missed.
 */
import type { Clock } from '../clock.js';
import { compareBallots, sameBallot } from '../protocol/ballot.js';
import type {
  AbandonMsg, Ballot, CommitMsg, CommitReply, EntryView, PrepareMsg, PrepareReply, ReadMsg, ReadReply,
  RenewMsg, RenewReply, SyncEntry, SyncMsg, SyncReply, Value,
} from '../protocol/messages.js';
import type { Entry } from './entry.js';
import { adopt, live, liveEntries, unsettled, type LiveEntry } from './knowledge.js';
import { AcceptorState, type AcceptedChange, type AcceptorSettings, type AcceptorStats } from './state.js';

export type { AcceptedChange, AcceptorSettings, AcceptorStats } from './state.js';
export type { LiveEntry } from './knowledge.js';

export interface AcceptorComponents {
  readonly clock: Clock;
  readonly settings: () => AcceptorSettings;
  /** Told of every value change this acceptor accepts (not of renewals): ownership watches read it. */
  readonly onChange?: (change: AcceptedChange) => void;
  /** The version of this node's member list (see {@link Acceptor.unsettled}). */
  readonly listVersion?: () => number;
}

export interface AcceptorOptions {
  /** Number of shards (must match cluster-wide). */
  readonly shards: number;
  /** Lowest term a grant may use here (a clock-derived floor so tokens rise across whole-cluster restarts). */
  readonly termFloor: number;
  /** Whether the acceptor votes from the start (false after a restart without state). */
  readonly voting: boolean;
}

export class Acceptor {
  readonly #s: AcceptorState;
  readonly #listVersion: () => number;
  #floor: number;
  #voting: boolean;
  #cleanupShard = 0;

  constructor(components: AcceptorComponents, options: AcceptorOptions) {
    this.#s = new AcceptorState(components.clock, components.settings, components.onChange, options.shards);
    this.#listVersion = components.listVersion ?? ((): number => 0);
    this.#floor = options.termFloor;
    this.#voting = options.voting;
  }

  /** Counters the node's stat() reports. */
  get stats(): AcceptorStats {
    return this.#s.stats;
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
    return this.#s.entries.size;
  }

  /** Lowest term a new grant may use. */
  get floor(): number {
    return this.#floor;
  }

  read(m: ReadMsg): ReadReply {
    if (!this.#voting) return { type: 'readR', rid: m.rid, name: m.name, ok: false };
    const e = this.#s.get(m.name);
    return e === undefined
      ? { type: 'readR', rid: m.rid, name: m.name, ok: true }
      : { type: 'readR', rid: m.rid, name: m.name, ok: true, entry: this.#s.view(e) };
  }

  // Replies spread `base` last: `{ ...base, ok }` (a spread, then keys the source lacks) makes V8 (Node 20)
  // allocate each reply several times over and move it to the old generation; a spread last costs nothing.
  prepare(m: PrepareMsg): PrepareReply {
    const e = this.#s.get(m.name);
    // The lowest term this acceptor lets a grant of this name use (the guard learns it from every reply).
    const floor = e === undefined ? this.#floor : Math.max(this.#floor, e.maxTerm + 1);
    const base = { type: 'prepR', rid: m.rid, name: m.name, b: m.b, floor } as const;
    if (!this.#voting) return { ok: false, why: 'recovering', ...base };
    if (this.#stale(m.mv)) {
      this.#s.stats.nacks++;
      return { ok: false, why: 'stale', ...base };
    }
    // A strictly higher term, not just a higher ballot: the term is the fencing token, and it must rise.
    // maxTerm also covers abandoned terms, so a prepare overtaken by its own abandon installs nothing.
    if (m.b.t < floor) return this.#refuse(base, 'ballot', e);
    if (e !== undefined && e.value !== null && !this.#s.leases.expired(e) && !this.#mayTakeOver(m, e)) return this.#refuse(base, 'held', e);
    const entry = e ?? this.#s.create(m.name);
    this.#s.stats.promises++;
    // Not over a void tombstone: a rival that just took its value back here may be racing a lease holder
    // whose sync must be able to reach this acceptor (a promise never blocks that sync; a value does).
    if (m.v !== undefined && m.mode === 'free' && entry.value === null && !entry.voided) {
      this.#s.install(m.name, entry, m.b, m.v, 1, m.mv ?? -1);
      this.#s.stats.acks++;
      return { type: 'prepR', rid: m.rid, name: m.name, b: m.b, floor, ok: true, acc: true };
    }
    entry.promise = m.b;
    entry.maxTerm = Math.max(entry.maxTerm, m.b.t);
    entry.promisedAt = this.#s.clock.now();
    return { type: 'prepR', rid: m.rid, name: m.name, b: m.b, floor, ok: true, entry: this.#s.view(entry) };
  }

  commit(m: CommitMsg): CommitReply {
    const base = { type: 'comR', rid: m.rid, name: m.name, b: m.b, seq: m.seq } as const;
    if (this.#stale(m.mv)) {
      this.#s.stats.nacks++;
      return { ok: false, why: 'stale', ...base };
    }
    const e = this.#s.get(m.name);
    if (e === undefined || !sameBallot(e.promise, m.b) || (sameBallot(e.ballot, m.b) && m.seq < e.seq)) {
      this.#s.stats.nacks++;
      return e === undefined ? { ok: false, why: 'ballot', ...base } : { ok: false, why: 'ballot', entry: this.#s.view(e), ...base };
    }
    this.#s.install(m.name, e, m.b, m.v, m.seq, m.mv ?? -1);
    this.#s.stats.acks++;
    return { type: 'comR', rid: m.rid, name: m.name, b: m.b, seq: m.seq, ok: true };
  }

  abandon(m: AbandonMsg): void {
    // Recorded even where the prepare never arrived: a prepare of `b` still in flight must find its term used.
    const e = this.#s.get(m.name) ?? this.#s.create(m.name);
    e.maxTerm = Math.max(e.maxTerm, m.b.t);
    if (sameBallot(e.promise, m.b) && compareBallots(e.ballot, m.b) < 0) {
      e.promise = e.ballot;
    } else if (sameBallot(e.ballot, m.b) && e.value !== null && e.seq === 1) {
      // Accepted in one round trip, never granted: the guard has moved on, so the value stands for nobody.
      this.#s.install(m.name, e, m.b, null, 2, -1);
      e.voided = true;
    }
  }

  /** One renewal for every entry node `from`'s guards hold, if both sides agree on which entries those are. */
  renew(from: string, m: RenewMsg): RenewReply {
    if (this.#stale(m.lv)) {
      this.#s.stats.renewMismatches++;
      return { type: 'renewR', rid: m.rid, ok: false, count: 0, digest: 0, why: 'stale' };
    }
    const r = this.#s.leases.renewNode(from, m.count, m.digest, m.hb, m.mv ?? -1);
    if (r.ok) this.#s.stats.renewals++;
    else this.#s.stats.renewMismatches++;
    return { type: 'renewR', rid: m.rid, ok: r.ok, count: r.count, digest: r.digest };
  }

  /**
   * A node's full list of held names after a renewal mismatch: renew or repair each, report refusals.
   * Undefined (nothing installed, no reply) when the sender's member list is older than this node's.
   */
  sync(from: string, m: SyncMsg): SyncReply | undefined {
    if (this.#stale(m.lv)) return undefined;
    if (m.part === 0) this.#s.leases.detachAll(from);
    const refused: [number, EntryView][] = [];
    m.entries.forEach(([name, b, v, seq], i) => {
      const e = this.#s.get(name);
      if (v.gnode !== from) {
        refused.push([i, e === undefined ? { value: null, seq: 0, expired: false } : this.#s.view(e)]);
        return;
      }
      // A sync comes from the guard holding the lease: while it holds it no rival can gather a majority,
      // so a rival's promise here may be overridden (its commit will then be refused), and so may a void
      // tombstone (a rival's abandoned one-round-trip value); any other value above its ballot may not.
      if (e !== undefined && !e.voided && (compareBallots(e.ballot, b) > 0 || (sameBallot(e.ballot, b) && seq < e.seq))) {
        refused.push([i, this.#s.view(e)]);
        return;
      }
      const fresh = e !== undefined && sameBallot(e.ballot, b) && e.seq === seq && sameBallot(e.promise, b);
      if (!fresh) this.#s.stats.repairs++;
      this.#s.install(name, e ?? this.#s.create(name), b, v, seq, -1, m.hb, true);
    });
    return { type: 'syncR', rid: m.rid, part: m.part, refused };
  }

  /**
   * Deletes up to `deleteLimit` entries that have been free (tombstoned or expired) for longer than
   * `deleteTimeThreshold`, walking one shard per call; entries with a promise in flight are kept.
   * Returns how many were deleted.
   */
  cleanup(): number {
    const { deleteTimeThreshold, deleteLimit } = this.#s.settings();
    const now = this.#s.clock.now();
    let removed = 0;
    // One shard per pass: an idle acceptor with many live names must not scan them all every period.
    {
      const shard = this.#cleanupShard;
      this.#cleanupShard = (this.#cleanupShard + 1) % this.#s.entries.shards;
      this.#s.entries.forEachIn(shard, (e) => {
        if (removed >= deleteLimit) return false;
        this.#s.expirePromise(e);
        if (e.promiseVsBallot() > 0) return true;
        const freeSince = this.#s.leases.lastRenewal(e) + (e.hasValue ? this.#s.leases.expiry(e) : 0);
        if (now - freeSince <= deleteTimeThreshold) return true;
        this.#floor = Math.max(this.#floor, e.maxTerm + 1, Math.max(e.ballotTerm, 0) + 1);
        this.#s.leases.detach(e);
        this.#s.entries.remove(e);
        removed++;
        return true;
      });
    }
    this.#s.stats.cleaned += removed;
    this.#s.stats.entries = this.size;
    return removed;
  }

  // ---- what it shares (knowledge.ts) -------------------------------------------------------------

  /**
   * Whether a live value here is not known to be held by a majority of this node's current member list
   * (one accepted under an older list sits on a majority of that list only, until its node's renewals
   * under the current one have copied it): a membership change waits while a majority says so.
   */
  unsettled(): boolean {
    return unsettled(this.#s, this.#listVersion());
  }

  /**
   * Every live value as sync entries, or undefined when there are more than `limit` (a starting node
   * then waits out an expiry period instead of copying them).
   */
  liveEntries(limit: number): { entries: SyncEntry[]; unconfirmed: number[] } | undefined {
    return liveEntries(this.#s, limit);
  }

  /**
   * Installs live values another member holds (a starting node catching up before it votes): each one
   * unless a higher ballot (or a newer seq) is already here. A value known decided (not listed in
   * `unconfirmed`) also replaces one here that is not: a value accepted in one round trip by a minority
   * carries a higher ballot than the live registration it raced, and must not hide it. Returns how many
   * were installed.
   */
  adopt(entries: readonly SyncEntry[], unconfirmed: ReadonlySet<number> = new Set()): number {
    return adopt(this.#s, entries, unconfirmed);
  }

  /** Live values (not tombstoned, not expired) whose name starts with `prefix`, for snapshots. */
  live(prefix = ''): LiveEntry[] {
    return live(this.#s, prefix);
  }

  /** The value of `name` under `ballot` is known decided (its guard said a majority accepted it). */
  confirm(name: string, ballot: Ballot): void {
    const e = this.#s.entries.get(name);
    if (e !== undefined && e.compareBallot(ballot) === 0) e.confirmed = true;
  }

  /**
   * A guard's grant notice: `(b, v, seq)` is decided. The copy here is confirmed; an acceptor that was
   * not asked (a grant needs only a majority) or missed the accept installs it, unless something above
   * it was promised or accepted here since. `listVersion`: the member list a majority of which accepted
   * the grant. Returns whether the value is now held here.
   */
  learn(name: string, b: Ballot, v: Value, seq: number, listVersion = -1): boolean {
    const e = this.#s.get(name);
    if (e !== undefined && sameBallot(e.ballot, b) && e.seq === seq) {
      e.confirmed = true;
      e.listVersion = Math.max(e.listVersion, listVersion);
      return true;
    }
    if (e !== undefined && !this.#s.mayInstall(e, b, seq)) return false;
    this.#s.install(name, e ?? this.#s.create(name), b, v, seq, listVersion, undefined, true);
    return true;
  }

  /**
   * What this acceptor knows of the value of `name` under `ballot`: 'expired' only when it holds that
   * very value and it went 3 heartbeats without renewal; 'other' when it holds something else (it lags,
   * or has moved on), which says nothing about that value.
   */
  stateOf(name: string, ballot: Ballot): 'live' | 'expired' | 'other' {
    const e = this.#s.entries.get(name);
    if (e === undefined || !e.hasValue || e.compareBallot(ballot) !== 0) return 'other';
    return this.#s.leases.expired(e) ? 'expired' : 'live';
  }

  // ---- internals --------------------------------------------------------------------------------

  /** Whether a sender that named member-list version `version` has an older list than this node. */
  #stale(version: number | undefined): boolean {
    return version !== undefined && version < this.#listVersion();
  }

  #mayTakeOver(m: PrepareMsg, e: Entry): boolean {
    if (m.from === undefined || !sameBallot(m.from, e.ballot)) return false;
    // A handoff marker names the one guard that may take it; anyone else waits for it to expire.
    if (m.mode === 'takeover') return e.value?.handoffTo === undefined;
    return m.mode === 'handoff' && e.value?.handoffTo === m.b.g;
  }

  #refuse(base: { type: 'prepR'; rid: number; name: string; b: Ballot; floor: number }, why: 'ballot' | 'held', e: Entry | undefined): PrepareReply {
    this.#s.stats.nacks++;
    return e === undefined ? { ok: false, why, ...base } : { ok: false, why, entry: this.#s.view(e), ...base };
  }
}
