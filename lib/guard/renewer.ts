/**
 * Batched renewals: one `renew` message per member per heartbeat, whatever the number of names held.
 * The message carries the count and order-free digest of every (name, ballot, seq) this node's guards
 * hold; an acceptor that agrees renews them all. A member that disagrees (it missed a commit, lost its
 * state, or holds a newer value for some name) gets the full list once (`sync`), which repairs it; names
 * it refuses are left out of what that member is asked to renew, and its acks do not count for them.
 *
 * The renewer also owns lease bookkeeping: a name's lease runs from the send time of the last round a
 * majority acked for it, and when that deadline passes without renewal the guard is told `lease-lost`.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { DigestSet, entryHash, xorDigest } from '../acceptor/digest.js';
import type { Ballot, Message, SyncEntry, Value } from '../protocol/messages.js';
import type { Rpc } from '../rpc.js';
import { LIMITS } from '../protocol/codec.js';
import { quorum } from './machine.js';
import { leaseDuration } from './lease.js';

/** One held registration, as the renewer tracks it. */
export interface Holding {
  readonly name: string;
  readonly b: Ballot;
  readonly value: Value;
  readonly seq: number;
  /** Lease from the holding's own commit. */
  leaseUntil: number;
  /** When it joined the renewed set: rounds sent before this do not cover it. */
  readonly addedAt: number;
  readonly hash: number;
  /** Called once when the lease ends without renewal. */
  readonly onLost: () => void;
}

export interface RenewerComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly members: () => readonly string[];
  readonly heartbeat: () => number;
  readonly random: () => number;
}

/** Counters for stat(). */
export interface RenewerStats { rounds: number; roundsAcked: number; syncs: number; lost: number }

interface Round { readonly rid: number; readonly sentAt: number; readonly hb: number; readonly acks: Set<string>; done: boolean }

const JITTER_MS = 250;
/** Rounds between re-syncs of a member that refused some names. */
const RESYNC_ROUNDS = 4;

export class Renewer {
  readonly #c: RenewerComponents;
  readonly #held = new Map<string, Holding>();
  readonly #set = new DigestSet();
  /** Per member: names it refused in its last sync, with their hashes. */
  readonly #excluded = new Map<string, Map<string, number>>();
  readonly #syncing = new Set<string>();
  #round: Round | undefined;
  /** Lease granted by the last majority-acked round, and that round's send time. */
  #roundLease = -Infinity;
  #roundSentAt = -Infinity;
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

  /** Starts renewing a name that a majority has just accepted (commit sent at `sentAt`). */
  add(name: string, b: Ballot, value: Value, seq: number, sentAt: number, onLost: () => void): Holding {
    this.remove(name);
    const h: Holding = {
      name, b, value, seq, onLost, leaseUntil: sentAt + leaseDuration(value.hb), addedAt: this.#c.clock.now(), hash: entryHash(name, b, seq),
    };
    this.#held.set(name, h);
    this.#set.add(h.hash);
    this.#armLeaseTimer(h.leaseUntil);
    if (this.#tick === undefined) this.#schedule();
    return h;
  }

  /** Stops renewing a name (it was released, handed off or lost). */
  remove(name: string): void {
    const h = this.#held.get(name);
    if (h === undefined) return;
    this.#held.delete(name);
    this.#set.remove(h.hash);
    for (const ex of this.#excluded.values()) ex.delete(name);
  }

  /** The lease deadline of a held name (local monotonic ms), or undefined when not held. */
  leaseOf(name: string): number | undefined {
    const h = this.#held.get(name);
    return h === undefined ? undefined : this.#leaseOf(h);
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
    r = { rid, sentAt: this.#c.clock.now(), hb, acks: new Set(), done: false };
    this.#round = r;
    this.stats.rounds++;
    // A name whose lease would end within two rounds cannot wait for the periodic re-sync.
    const atRisk = r.sentAt + 2 * hb;
    for (const peer of this.#c.members()) {
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
      this.#c.rpc.send(peer, { type: 'renew', rid, hb, count, digest });
    }
  }

  #onReply(r: Round, from: string, msg: Message): void {
    if (msg.type !== 'renewR') return;
    if (msg.ok) this.#ack(r, from);
    else this.#sync(from, r);
  }

  /** Counts `from` for round `r` (a matching renewal, or a completed sync) and extends leases it covers. */
  #ack(r: Round, from: string): void {
    if (r.acks.has(from) || !this.#c.members().includes(from)) return;
    r.acks.add(from);
    const need = quorum(this.#c.members());
    if (r.acks.size < need) return;
    if (!r.done) {
      r.done = true;
      this.stats.roundsAcked++;
      if (r.sentAt > this.#roundSentAt) {
        this.#roundSentAt = r.sentAt;
        this.#roundLease = r.sentAt + leaseDuration(r.hb);
      }
    }
    // Names some member left out are covered only when enough of the ackers did not leave them out.
    const counted = new Set<string>();
    for (const ex of this.#excluded.values()) for (const name of ex.keys()) counted.add(name);
    for (const name of counted) {
      const h = this.#held.get(name);
      if (h === undefined || h.addedAt > r.sentAt) continue;
      let covering = 0;
      for (const peer of r.acks) if (this.#excluded.get(peer)?.has(name) !== true) covering++;
      if (covering >= need) h.leaseUntil = Math.max(h.leaseUntil, r.sentAt + leaseDuration(r.hb));
    }
    this.#armLeaseTimer(this.#minLease());
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
    const size = LIMITS.syncEntries;
    const parts = Math.max(1, Math.ceil(list.length / size));
    const refused = new Map<string, number>();
    // Each part counts once: a duplicated reply must not complete the sync before every part is answered.
    const answered = new Set<number>();
    const rid = this.#c.rpc.open((from, msg) => {
      if (msg.type !== 'syncR' || from !== peer || msg.part >= parts || answered.has(msg.part)) return;
      answered.add(msg.part);
      const chunk = list.slice(msg.part * size, (msg.part + 1) * size);
      for (const [i] of msg.refused) {
        const h = chunk[i];
        if (h !== undefined) refused.set(h.name, h.hash);
      }
      if (answered.size === parts) finish();
    });
    const finish = (): void => {
      this.#c.clock.clearTimeout(timer);
      this.#c.rpc.close(rid);
      this.#syncing.delete(peer);
      for (const [name, hash] of refused) {
        const h = this.#held.get(name);
        if (h?.hash !== hash) refused.delete(name);
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
    }, this.#c.heartbeat());
    const hb = this.#c.heartbeat();
    for (let part = 0; part < parts; part++) {
      const entries: SyncEntry[] = list.slice(part * size, (part + 1) * size).map((h) => [h.name, h.b, h.value, h.seq]);
      this.#c.rpc.send(peer, { type: 'sync', rid, hb, part, parts, entries });
    }
  }

  /** Whether a name this member refused has a lease ending before `at` (other members do not cover it). */
  #needs(excluded: ReadonlyMap<string, number>, at: number): boolean {
    for (const name of excluded.keys()) {
      const h = this.#held.get(name);
      if (h !== undefined && h.leaseUntil < at) return true;
    }
    return false;
  }

  #leaseOf(h: Holding): number {
    let excluded = false;
    for (const ex of this.#excluded.values()) if (ex.has(h.name)) { excluded = true; break; }
    if (excluded || h.addedAt > this.#roundSentAt) return h.leaseUntil;
    return Math.max(h.leaseUntil, this.#roundLease);
  }

  #minLease(): number {
    let min = Infinity;
    for (const h of this.#held.values()) min = Math.min(min, this.#leaseOf(h));
    return min;
  }

  #armLeaseTimer(at: number): void {
    if (this.#stopped || at >= this.#leaseTimerAt && this.#leaseTimer !== undefined) return;
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
    const lost: Holding[] = [];
    for (const h of this.#held.values()) if (this.#leaseOf(h) <= now) lost.push(h);
    for (const h of lost) {
      this.remove(h.name);
      this.stats.lost++;
      h.onLost();
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
