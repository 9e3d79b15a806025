/**
 * Batched renewals: one `renew` message per member per heartbeat, whatever the number of names held.
 * The message carries the count and order-free digest of every (name, ballot, seq) this node's guards
 * hold; an acceptor that agrees renews them all. A member that disagrees (it missed a commit, lost its
 * state, or holds a newer value for some name) gets the full list once (`sync`), which repairs it; names
 * it refuses are left out of what that member is asked to renew, and its acks do not count for them.
 *
 * The renewer also owns lease bookkeeping: a name's lease runs from the send time of the last round a
 * majority acked for it, and when that deadline passes without renewal the guard is told `lease-lost`.
 *
 * Each renewal also says which member list a majority of which holds every name it renews (`mv`): the
 * list of the last round a majority of that very list acked, or older when a name was granted since
 * under an older list. Acceptors count a value for a membership change only once someone vouched so
 * for the current list; a round under a new list, and one more when it is acked, tell them at once.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { DigestSet, entryHash, xorDigest } from '../acceptor/digest.js';
import type { Ballot, Message, RenewMsg, SyncEntry, SyncMsg, Value } from '../protocol/messages.js';
import type { Rpc } from '../rpc.js';
import { LIMITS } from '../protocol/codec.js';
import { quorum } from './machine.js';
import { leaseDuration } from './lease.js';

/**
 * One held registration, as the renewer tracks it. The registry's own record of a held name is one, so
 * a held name costs one object in one map here rather than a copy of it. Name, ballot, value and seq
 * must not change while the renewer holds it (its digest hash is derived from them).
 */
export interface Holding {
  readonly name: string;
  readonly b: Ballot;
  readonly value: Value;
  readonly seq: number;
  /** Lease from the holding's own commit (set by {@link Renewer.add}). */
  leaseUntil: number;
  /** The first round that covers it: rounds sent before it joined did not list it (set by {@link Renewer.add}). */
  addedRound: number;
  /** Called once when the lease ends without renewal. */
  lost(): void;
}

export interface RenewerComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly members: () => readonly string[];
  readonly heartbeat: () => number;
  readonly random: () => number;
  /** The version of the member list (`members`); without it renewals vouch for no list. */
  readonly listVersion?: () => number;
}

/** Counters for stat(). */
export interface RenewerStats { rounds: number; roundsAcked: number; syncs: number; lost: number }

interface Round {
  readonly n: number; readonly rid: number; readonly sentAt: number; readonly hb: number; readonly acks: Set<string>; done: boolean;
  /** The member list it went to, and that list's version. */
  readonly members: readonly string[]; readonly listVersion: number;
  /** Whether a majority of `members` acked it (see #vouch). */
  vouched: boolean;
}

const JITTER_MS = 250;
/** Rounds between re-syncs of a member that refused some names. */
const RESYNC_ROUNDS = 4;
/** Entries per sync part: about 110 KB encoded, so a part fits a frame of the transport's usual size. */
export const SYNC_PART_ENTRIES = 1024;
/** Sync parts sent and not yet answered, at most. */
const SYNC_WINDOW = 4;

export class Renewer<H extends Holding = Holding> {
  readonly #c: RenewerComponents;
  readonly #held = new Map<string, H>();
  readonly #set = new DigestSet();
  /** Per member: names it refused in its last sync, with their hashes. */
  readonly #excluded = new Map<string, Map<string, number>>();
  readonly #syncing = new Set<string>();
  #round: Round | undefined;
  /** Lease granted by the last majority-acked round, and that round's number. */
  #roundLease = -Infinity;
  #roundN = 0;
  /** The member-list version a majority of which holds every held name (Infinity: nothing held). */
  #vouched = Infinity;
  /** The lowest list version of the names granted since the last round was sent. */
  #grantedSinceRound = Infinity;
  #tick: TimerHandle | undefined;
  #leaseTimer: TimerHandle | undefined;
  #leaseTimerAt = Infinity;
  #stopped = false;
  readonly stats: RenewerStats = { rounds: 0, roundsAcked: 0, syncs: 0, lost: 0 };

  constructor(components: RenewerComponents) {
    this.#c = components;
  }

  get size(): number {
    return this.#held.size;
  }

  /**
   * Starts renewing a name that a majority of member-list version `listVersion` has just accepted
   * (commit sent at `sentAt`).
   */
  add(h: H, sentAt: number, listVersion = -1): void {
    this.remove(h.name);
    this.#vouched = Math.min(this.#vouched, listVersion);
    this.#grantedSinceRound = Math.min(this.#grantedSinceRound, listVersion);
    h.leaseUntil = sentAt + leaseDuration(h.value.hb);
    // Numbered, not timed: a round sent at the same instant, just before, did not list it.
    h.addedRound = this.stats.rounds + 1;
    this.#held.set(h.name, h);
    this.#set.add(hashOf(h));
    this.#armLeaseTimer(h.leaseUntil);
    if (this.#tick === undefined) this.#schedule();
  }

  /** Stops renewing a name (it was released, handed off or lost). */
  remove(name: string): void {
    const h = this.#held.get(name);
    if (h === undefined) return;
    this.#held.delete(name);
    this.#set.remove(hashOf(h));
    if (this.#held.size === 0) this.#vouched = Infinity;
    if (this.#excluded.size > 0) for (const ex of this.#excluded.values()) ex.delete(name);
  }

  /** The holding of `name`, if renewed here. */
  get(name: string): H | undefined {
    return this.#held.get(name);
  }

  /** Every holding renewed here. */
  holdings(): IterableIterator<H> {
    return this.#held.values();
  }

  /** The lease deadline of a held name (local monotonic ms), or undefined when not held. */
  leaseOf(name: string): number | undefined {
    const h = this.#held.get(name);
    return h === undefined ? undefined : this.#leaseOf(h);
  }

  /** The member list changed: renew under the new one now, so the acceptors learn it is held there. */
  listChanged(): void {
    this.renewNow();
  }

  /** Sends one renewal round now (also runs on the heartbeat timer). */
  renewNow(): void {
    if (this.#stopped || this.#held.size === 0) return;
    if (this.#round !== undefined) this.#c.rpc.close(this.#round.rid);
    const hb = this.#c.heartbeat();
    let r: Round | undefined;
    const rid = this.#c.rpc.open((from, msg) => {
      if (r !== undefined) this.#onReply(r, from, msg);
    });
    this.stats.rounds++;
    const members = this.#c.members();
    const listVersion = this.#c.listVersion?.() ?? -1;
    r = { n: this.stats.rounds, rid, sentAt: this.#c.clock.now(), hb, acks: new Set(), done: false, members, listVersion, vouched: false };
    this.#round = r;
    this.#grantedSinceRound = Infinity;
    // What this round vouches for (sent only when there is a list to name).
    const mv = this.#vouched >= 0 && this.#vouched < Infinity && this.#c.listVersion !== undefined ? this.#vouched : undefined;
    const lv = listVersion >= 0 ? listVersion : undefined;
    // A name whose lease would end within two rounds cannot wait for the periodic re-sync.
    const atRisk = r.sentAt + 2 * hb;
    for (const peer of members) {
      const ex = this.#excluded.get(peer);
      // A member that refused names gets the full list again every few rounds, in case it can take them
      // now (a rival's value it held may be gone), and every round while one of those names needs it.
      if (ex !== undefined && (this.stats.rounds % RESYNC_ROUNDS === 0 || this.#needs(ex, atRisk))) {
        this.#sync(peer, r);
        continue;
      }
      let count = this.#set.count;
      let digest = this.#set.digest;
      if (ex !== undefined) for (const hash of ex.values()) { count--; digest = xorDigest(digest, hash); }
      this.#c.rpc.send(peer, renewMsg(rid, hb, count, digest, mv, lv));
    }
  }

  #onReply(r: Round, from: string, msg: Message): void {
    if (msg.type !== 'renewR') return;
    if (msg.ok) this.#ack(r, from);
    // Refused for an older member list: its node tells us the current one; a sync would be refused too.
    else if (msg.why !== 'stale') this.#sync(from, r);
  }

  /** Counts `from` for round `r` (a matching renewal, or a completed sync) and extends leases it covers. */
  #ack(r: Round, from: string): void {
    if (r.acks.has(from) || !this.#c.members().includes(from)) return;
    r.acks.add(from);
    this.#vouch(r);
    const need = quorum(this.#c.members());
    if (r.acks.size < need) return;
    if (!r.done) {
      r.done = true;
      this.stats.roundsAcked++;
      if (r.n > this.#roundN) {
        this.#roundN = r.n;
        this.#roundLease = r.sentAt + leaseDuration(r.hb);
      }
    }
    // Names some member left out are covered only when enough of the ackers did not leave them out.
    for (const h of this.#leftOut(r)) {
      if (this.#covering(r, h.name) >= need) h.leaseUntil = Math.max(h.leaseUntil, r.sentAt + leaseDuration(r.hb));
    }
    this.#armLeaseTimer(this.#minLease());
  }

  /** The holdings round `r` listed that some member left out (refused in its last sync). */
  #leftOut(r: Round): H[] {
    const out = new Set<H>();
    for (const ex of this.#excluded.values()) {
      for (const name of ex.keys()) {
        const h = this.#held.get(name);
        if (h !== undefined && h.addedRound <= r.n) out.add(h);
      }
    }
    return [...out];
  }

  /** How many of round `r`'s ackers (those in `among`, when given) hold `name`: did not leave it out. */
  #covering(r: Round, name: string, among?: readonly string[]): number {
    let n = 0;
    for (const peer of r.acks) if ((among === undefined || among.includes(peer)) && this.#excluded.get(peer)?.has(name) !== true) n++;
    return n;
  }

  /**
   * Once a majority of round `r`'s own list has acked it (and holds each name some member refused),
   * every name held then is on a majority of that list: renewals vouch for it from now on. A newly
   * vouched list is announced by a round at once. Only for the latest round: names granted between an
   * older round and the latest are not tracked.
   */
  #vouch(r: Round): void {
    if (r.vouched || r.n !== this.stats.rounds || r.listVersion < 0) return;
    const need = quorum(r.members);
    let acked = 0;
    for (const peer of r.acks) if (r.members.includes(peer)) acked++;
    if (acked < need) return;
    if (this.#excluded.size > 0 && this.#leftOut(r).some((h) => this.#covering(r, h.name, r.members) < need)) return;
    r.vouched = true;
    const before = this.#vouched;
    this.#vouched = Math.min(r.listVersion, this.#grantedSinceRound);
    if (this.#vouched > before && this.#vouched === (this.#c.listVersion?.() ?? -1)) queueMicrotask(() => this.renewNow());
  }

  /**
   * Sends the full list of held names to a member that disagreed with round `r`, in parts. When every
   * part is answered, the member holds every listed name it did not refuse, renewed now: that counts as
   * its ack for `r` (a commit racing a round must not cost a lease).
   */
  #sync(peer: string, r: Round): void {
    if (this.#syncing.has(peer) || this.#stopped) return;
    this.#syncing.add(peer);
    this.stats.syncs++;
    const list = [...this.#held.values()];
    const size = Math.min(LIMITS.syncEntries, SYNC_PART_ENTRIES);
    const parts = Math.max(1, Math.ceil(list.length / size));
    const refused = new Map<string, number>();
    // Each part answered once: a duplicated reply must not complete the sync early.
    const answered = new Set<number>();
    let sent = 0;
    const hb = this.#c.heartbeat();
    const lv = this.#c.listVersion?.();
    // Parts go out a few at a time as replies come back, each built when sent: 100k names listed at
    // once were tens of MB of entries alive together, and all of it garbage an instant later.
    const send = (): void => {
      const part = sent++;
      const entries: SyncEntry[] = list.slice(part * size, (part + 1) * size).map((h) => [h.name, h.b, h.value, h.seq]);
      const m: { -readonly [K in keyof SyncMsg]: SyncMsg[K] } = { type: 'sync', rid, hb, part, parts, entries };
      if (lv !== undefined) m.lv = lv;
      this.#c.rpc.send(peer, m);
    };
    const rid = this.#c.rpc.open((from, msg) => {
      if (msg.type !== 'syncR' || from !== peer || msg.part >= sent || answered.has(msg.part)) return;
      answered.add(msg.part);
      const chunk = list.slice(msg.part * size, (msg.part + 1) * size);
      for (const [i] of msg.refused) {
        const h = chunk[i];
        if (h !== undefined) refused.set(h.name, hashOf(h));
      }
      if (answered.size === parts) finish();
      else if (sent < parts) send();
    });
    const finish = (): void => {
      this.#c.clock.clearTimeout(timer);
      this.#c.rpc.close(rid);
      this.#syncing.delete(peer);
      for (const [name, hash] of refused) {
        const h = this.#held.get(name);
        if (h === undefined || hashOf(h) !== hash) refused.delete(name);
        // From now on rounds credit this name one by one; keep the lease it already has.
        else h.leaseUntil = this.#leaseOf(h);
      }
      if (refused.size > 0) this.#excluded.set(peer, refused);
      else this.#excluded.delete(peer);
      if (!this.#stopped) this.#ack(r, peer);
    };
    const timer = this.#c.clock.setTimeout(() => {
      this.#c.rpc.close(rid);
      this.#syncing.delete(peer);
    }, hb);
    while (sent < Math.min(parts, SYNC_WINDOW)) send();
  }

  /** Whether a name this member refused has a lease ending before `at` (other members do not cover it). */
  #needs(excluded: ReadonlyMap<string, number>, at: number): boolean {
    for (const name of excluded.keys()) {
      const h = this.#held.get(name);
      if (h !== undefined && h.leaseUntil < at) return true;
    }
    return false;
  }

  #leaseOf(h: H): number {
    if (h.addedRound > this.#roundN || this.#isExcluded(h.name)) return h.leaseUntil;
    return Math.max(h.leaseUntil, this.#roundLease);
  }

  /**
   * Whether some member left `name` out. Checked for every holding on every round, so it allocates
   * nothing when no member left anything out (the usual case): an idle node's allocation rate decides
   * whether the garbage collector gives memory back.
   */
  #isExcluded(name: string): boolean {
    if (this.#excluded.size === 0) return false;
    for (const ex of this.#excluded.values()) if (ex.has(name)) return true;
    return false;
  }

  #minLease(): number {
    let min = Infinity;
    for (const h of this.#held.values()) min = Math.min(min, this.#leaseOf(h));
    return min;
  }

  #armLeaseTimer(at: number): void {
    // Infinity: nothing held, nothing to revoke.
    if (this.#stopped || at === Infinity || (at >= this.#leaseTimerAt && this.#leaseTimer !== undefined)) return;
    this.#c.clock.clearTimeout(this.#leaseTimer);
    this.#leaseTimerAt = at;
    this.#leaseTimer = this.#c.clock.setTimeout(() => this.#checkLeases(), Math.max(0, at - this.#c.clock.now()));
  }

  /** Revokes every holding whose lease has passed; re-arms for the next deadline. */
  checkLeases(): void {
    this.#checkLeases();
  }

  /**
   * Revokes what expired if the lease timer is overdue. A process that wakes from a pause may handle
   * input before its timers; calling this first on every inbound frame means an owner whose lease ran
   * out is revoked before this node acts on anything it receives.
   */
  checkOverdue(): void {
    if (this.#leaseTimer !== undefined && this.#c.clock.now() >= this.#leaseTimerAt) this.#checkLeases();
  }

  #checkLeases(): void {
    this.#leaseTimer = undefined;
    this.#leaseTimerAt = Infinity;
    const now = this.#c.clock.now();
    const lost: H[] = [];
    for (const h of this.#held.values()) if (this.#leaseOf(h) <= now) lost.push(h);
    for (const h of lost) {
      this.remove(h.name);
      this.stats.lost++;
      h.lost();
    }
    const next = this.#minLease();
    if (next < Infinity) this.#armLeaseTimer(next);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const hb = this.#c.heartbeat();
    const ms = hb + (this.#c.random() * 2 - 1) * JITTER_MS;
    this.#tick = this.#c.clock.setTimeout(() => {
      this.#tick = undefined;
      // A process that was paused wakes with both timers overdue: revoke what expired before renewing.
      if (this.#c.clock.now() >= this.#leaseTimerAt) this.#checkLeases();
      if (this.#held.size === 0) return;
      this.renewNow();
      this.#schedule();
    }, Math.max(1, ms));
  }

  stop(): void {
    this.#stopped = true;
    this.#c.clock.clearTimeout(this.#tick);
    this.#c.clock.clearTimeout(this.#leaseTimer);
    if (this.#round !== undefined) this.#c.rpc.close(this.#round.rid);
    this.#tick = undefined;
    this.#leaseTimer = undefined;
  }
}

/** A renewal, naming the list it vouches for (`mv`) and the sender's list (`lv`) when known. */
function renewMsg(rid: number, hb: number, count: number, digest: number, mv: number | undefined, lv: number | undefined): RenewMsg {
  const m: { -readonly [K in keyof RenewMsg]: RenewMsg[K] } = { type: 'renew', rid, hb, count, digest };
  if (mv !== undefined) m.mv = mv;
  if (lv !== undefined) m.lv = lv;
  return m;
}

/** The digest hash of a holding, derived (not stored) from its fixed name, ballot and seq. */
function hashOf(h: Holding): number {
  return entryHash(h.name, h.b, h.seq);
}
