/**
 * The registry's record of one guard: who waits on it, and once it is granted, the grant itself. A name
 * held quietly needs no running guard (renewals are batched by the renewer), so after a grant the
 * record stands in for it and is what the renewer renews. It keeps the grant flat: the term is its
 * registration's token, the guard id is this node's guard id prefix and a counter, and the ballot and
 * value are built from those when asked for (a node may hold 100k records). When an event comes
 * for the name (release, handoff, lost lease, stop), the registry builds a guard from the record again,
 * in `monitoring`, and lets the state machine handle it as it always would.
 *
 * Records of one owner form a list threaded through the records, so an owner's exit finds its names
 * without a set per owner.
 */
import type { Ballot, OwnerRef, Value } from '../protocol/messages.js';
import type { Registration } from '../registration.js';
import type { Guard } from './guard.js';
import type { Holding } from './renewer.js';

/** A caller waiting for a result. */
export interface Waiter<T> { resolve(v: T): void; reject(e: unknown): void }
/** A caller of update waiting for the handoff to `to`. */
export interface HandoffWaiter extends Waiter<void> { readonly to: OwnerRef }

/** What a record reports to the registry that owns it. */
export interface RecordHost {
  /** This node: where every record's guard runs (the values' `gnode`). */
  readonly node: string;
  /** Every guard id of this node's life starts with this (`node/incarnation`), then `/counter`. */
  readonly guardPrefix: string;
  /** The record's lease ran out without renewal (the renewer has already dropped it). */
  lost(rec: GuardRecord): void;
}

/** Only while acquiring: dropped at the grant. */
export interface Acquisition {
  readonly startedAt: number;
  /** The register call waiting for the outcome. */
  acquire?: Waiter<Registration> | undefined;
  /** A handoff receiver: the node (and request) waiting for its `hgoR`. */
  go?: { readonly from: string; readonly rid: number } | undefined;
}

export class GuardRecord implements Holding {
  readonly name: string;
  /** The guard's counter: its id is `${guardPrefix}/${counter}`. */
  readonly #counter: number;
  readonly owner: OwnerRef;
  /** Heartbeat of the guard: the value's `hb`. */
  readonly hb: number;
  readonly #host: RecordHost;
  /** The running guard; undefined while the record stands in for it. */
  guard: Guard | undefined;
  /** Index among the running guards' records, or -1. */
  runningAt = -1;
  acquisition: Acquisition | undefined;
  /** Made at the grant; its token is the granted term. */
  registration: Registration | undefined;
  /** Callers waiting for a handoff or for the end of the guard (made on first use). */
  #waiters: { handoffs: HandoffWaiter[]; stops: (() => void)[] } | undefined;
  /** The grant's seq × 2, plus 1 when it took a handoff over (its value says `via: 'handoff'`). */
  #grant = 0;
  /** Whole milliseconds, rounded down (an earlier deadline is the safe side): a small integer, not a boxed double. */
  #leaseUntil = 0;
  addedRound = 0;
  /** Neighbours in the list of the owner's records. */
  prevOfOwner: GuardRecord | undefined;
  nextOfOwner: GuardRecord | undefined;

  constructor(fields: { name: string; counter: number; owner: OwnerRef; hb: number }, host: RecordHost) {
    this.name = fields.name;
    this.#counter = fields.counter;
    this.owner = fields.owner;
    this.hb = fields.hb;
    this.#host = host;
  }

  /** The node the guard runs on (the value's `gnode`). */
  get node(): string {
    return this.#host.node;
  }

  /** Guard id: the `g` of every ballot the guard proposes (a new string per read). */
  get gid(): string {
    return `${this.#host.guardPrefix}/${this.#counter}`;
  }

  /** Whether the guard was granted its name. */
  get granted(): boolean {
    return this.registration !== undefined;
  }

  /** The granted term (the fencing token), or 0 before the grant. */
  get term(): number {
    return this.registration?.token ?? 0;
  }

  /** The granted ballot (a new object per read; only once granted). */
  get b(): Ballot {
    if (this.registration === undefined) throw new RangeError(`guard ${this.gid} holds no grant`);
    return { t: this.registration.token, g: this.gid };
  }

  /** The granted value: this guard's own value, as it committed it (a new object per read; only once granted). */
  get value(): Value {
    if (this.registration === undefined) throw new RangeError(`guard ${this.gid} holds no grant`);
    const { owner, hb } = this;
    const gnode = this.#host.node;
    return this.#grant % 2 === 1 ? { owner, gnode, hb, via: 'handoff' } : { owner, gnode, hb };
  }

  /**
   * Records the grant (once): `value` is the value this guard committed (its own, which the record
   * rebuilds from then on), and `registration` carries the term.
   */
  grant(value: Value, seq: number, registration: Registration): void {
    this.#grant = seq * 2 + (value.via === 'handoff' ? 1 : 0);
    this.registration = registration;
    this.acquisition = undefined;
  }

  /** The granted seq (0 before the grant). */
  get seq(): number {
    return Math.floor(this.#grant / 2);
  }

  get leaseUntil(): number {
    return this.#leaseUntil;
  }

  set leaseUntil(at: number) {
    this.#leaseUntil = Math.floor(at);
  }

  lost(): void {
    this.#host.lost(this);
  }

  /** Adds a waiter for the end of the guard. */
  onStop(fn: () => void): void {
    (this.#waiters ??= { handoffs: [], stops: [] }).stops.push(fn);
  }

  /** Adds a waiter for a handoff. */
  onHandoff(w: HandoffWaiter): void {
    (this.#waiters ??= { handoffs: [], stops: [] }).handoffs.push(w);
  }

  /** Takes every handoff waiter. */
  takeHandoffs(): HandoffWaiter[] {
    return this.#take('handoffs');
  }

  /** Takes every stop waiter. */
  takeStops(): (() => void)[] {
    return this.#take('stops');
  }

  /** Empties one list of waiters; the holder of both goes when both are empty. */
  #take<K extends 'handoffs' | 'stops'>(kind: K): { handoffs: HandoffWaiter[]; stops: (() => void)[] }[K] {
    const w = this.#waiters;
    if (w === undefined) return [];
    const out = w[kind];
    w[kind] = [] as typeof out;
    if (w.handoffs.length === 0 && w.stops.length === 0) this.#waiters = undefined;
    return out;
  }
}

/** Records by local owner id, as lists threaded through the records. */
export class OwnerIndex {
  readonly #heads = new Map<number, GuardRecord>();

  add(rec: GuardRecord): void {
    const head = this.#heads.get(rec.owner.id);
    rec.prevOfOwner = undefined;
    rec.nextOfOwner = head;
    if (head !== undefined) head.prevOfOwner = rec;
    this.#heads.set(rec.owner.id, rec);
  }

  /** Removes `rec` (a no-op when it is not listed). */
  remove(rec: GuardRecord): void {
    const { prevOfOwner: prev, nextOfOwner: next } = rec;
    if (prev !== undefined) prev.nextOfOwner = next;
    else if (this.#heads.get(rec.owner.id) === rec) {
      if (next === undefined) this.#heads.delete(rec.owner.id);
      else this.#heads.set(rec.owner.id, next);
    } else return;
    if (next !== undefined) next.prevOfOwner = prev;
    rec.prevOfOwner = undefined;
    rec.nextOfOwner = undefined;
  }

  /** The records of owner `id` (a copy: handling one may remove it). */
  of(id: number): GuardRecord[] {
    const out: GuardRecord[] = [];
    for (let r = this.#heads.get(id); r !== undefined; r = r.nextOfOwner) out.push(r);
    return out;
  }

  /** Number of owners with records. */
  get owners(): number {
    return this.#heads.size;
  }
}
