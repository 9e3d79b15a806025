/**
 * The acceptor's entries, stored flat: one slot per name in typed-array columns (terms, times, seq,
 * hashes, the value's owner and heartbeat, its member-list version, guard ids as interned prefix and
 * counter), with node ids interned. An acceptor holds an entry for every name in the cluster, so its
 * size is what a node's memory grows with: a slot costs about 115 bytes outside the JS heap (and its
 * name, a map entry), where an object per entry with its ballot, value and owner objects, guard id
 * strings and boxed numbers cost about 700 bytes of heap and gave the garbage collector that many
 * objects to trace. Rules code reads and writes one entry through an {@link Entry} handle (entry.ts).
 */
import { emptyColumn, grown, growsInPlace } from './growable.js';
import { GuardIdColumn } from './guard-ids.js';
import { Interner } from './interner.js';
import { NameTable } from './names.js';
import { ATTACHED, Entry, HAS_VALUE, type Columns } from './entry.js';

const INITIAL_SLOTS = 256;
/** Copied columns double up to this many slots, then grow by a quarter (less room left unused). */
const DOUBLE_UP_TO = 1 << 16;

/** The next capacity: small steps when growing costs no copy, larger ones when it does. */
function nextCapacity(capacity: number, inPlace: boolean): number {
  if (inPlace) return capacity + Math.max(INITIAL_SLOTS * 16, capacity >> 4);
  return Math.max(INITIAL_SLOTS, capacity < DOUBLE_UP_TO ? capacity * 2 : capacity + (capacity >> 2));
}

/**
 * Every entry of one acceptor: names in a table of their own (name -> slot), fields in columns. The
 * slots are split into `shards` by slot number, so cleanup can walk one shard at a time.
 */
export class EntryTable {
  readonly #shards: number;
  readonly #free: number[] = [];
  #c: Columns;
  #capacity = 0;
  #used = 0;

  /** `resizable: false` stores the columns in plain buffers, copied when they grow (the fallback; for tests). */
  constructor(shards: number, options: { readonly resizable?: boolean } = {}) {
    this.#shards = Math.max(1, shards);
    const strings = new Interner();
    const r = options.resizable ?? true;
    const f64 = (): Float64Array => emptyColumn(Float64Array, r);
    const i32 = (): Int32Array => emptyColumn(Int32Array, r);
    this.#c = {
      flags: emptyColumn(Uint8Array, r), promiseT: f64(), ballotT: f64(), maxTerm: f64(), promisedAt: f64(), seq: f64(),
      renewedAt: f64(), hb: f64(), hash: f64(), ownerInc: f64(), ownerId: f64(), valueHb: f64(), ownerNode: i32(), gnode: i32(),
      listVersion: i32(),
      promiseId: new GuardIdColumn(strings, r), ballotId: new GuardIdColumn(strings, r), handoffTo: new Map(), strings,
      names: new NameTable(),
    };
  }

  /** Number of shards. */
  get shards(): number {
    return this.#shards;
  }

  /** Number of entries. */
  get size(): number {
    return this.#c.names.size;
  }

  /** Slots allocated (entries plus free slots awaiting reuse). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Whether the columns grow in place (resizable buffers) rather than by copying. */
  get inPlace(): boolean {
    return growsInPlace(this.#c.flags);
  }

  /** Distinct strings interned: node ids the values name, and guard id prefixes (`node/incarnation`). */
  get interned(): number {
    return this.#c.strings.size;
  }

  /** The entry of `name`, if any. */
  get(name: string): Entry | undefined {
    const slot = this.#c.names.find(name);
    return slot < 0 ? undefined : new Entry(this.#c, slot);
  }

  /** A new, empty entry for `name` (which must have none): no promise, no value, seq 0. */
  create(name: string, now: number): Entry {
    const slot = this.#free.pop() ?? this.#grow();
    const c = this.#c;
    c.flags[slot] = 0;
    c.maxTerm[slot] = 0;
    c.promisedAt[slot] = 0;
    c.seq[slot] = 0;
    c.renewedAt[slot] = now;
    c.hb[slot] = 0;
    c.hash[slot] = 0;
    c.listVersion[slot] = -1;
    c.names.insert(name, slot);
    return new Entry(c, slot);
  }

  /** Deletes the entry of `name`; its slot is reused. */
  delete(name: string): void {
    const slot = this.#c.names.find(name);
    if (slot >= 0) this.#release(slot);
  }

  /** Deletes entry `e` (the handle must not be used afterwards). */
  remove(e: Entry): void {
    if (this.#c.names.has(e.slot)) this.#release(e.slot);
  }

  #release(slot: number): void {
    this.#c.names.remove(slot);
    new Entry(this.#c, slot).clear();
    this.#free.push(slot);
  }

  /**
   * Calls `fn` for each entry of shard `i` (the slots `i`, `i + shards`, ...) until it returns false;
   * deleting the current entry meanwhile is allowed.
   */
  forEachIn(i: number, fn: (e: Entry) => boolean | void): void {
    const c = this.#c;
    for (let slot = i; slot < this.#used; slot += this.#shards) {
      if (c.names.has(slot) && fn(new Entry(c, slot)) === false) return;
    }
  }

  /** Calls `fn` for every entry. */
  forEach(fn: (e: Entry) => void): void {
    const c = this.#c;
    for (let slot = 0; slot < this.#used; slot++) if (c.names.has(slot)) fn(new Entry(c, slot));
  }

  /** The entries covered by `node`'s renewals (found in the columns, without walking the names). */
  attachedTo(node: string): Entry[] {
    const c = this.#c;
    const idx = c.strings.find(node);
    const out: Entry[] = [];
    if (idx < 0) return out;
    for (let s = 0; s < this.#used; s++) {
      if (((c.flags[s] as number) & (ATTACHED | HAS_VALUE)) === (ATTACHED | HAS_VALUE) && c.gnode[s] === idx) out.push(new Entry(c, s));
    }
    return out;
  }

  /** A fresh slot at the end, growing the columns when they are full. */
  #grow(): number {
    if (this.#used === this.#capacity) {
      const c = this.#c;
      const cap = nextCapacity(this.#capacity, growsInPlace(c.flags));
      c.flags = grown(c.flags, Uint8Array, cap);
      c.promiseT = grown(c.promiseT, Float64Array, cap);
      c.ballotT = grown(c.ballotT, Float64Array, cap);
      c.maxTerm = grown(c.maxTerm, Float64Array, cap);
      c.promisedAt = grown(c.promisedAt, Float64Array, cap);
      c.seq = grown(c.seq, Float64Array, cap);
      c.renewedAt = grown(c.renewedAt, Float64Array, cap);
      c.hb = grown(c.hb, Float64Array, cap);
      c.hash = grown(c.hash, Float64Array, cap);
      c.ownerInc = grown(c.ownerInc, Float64Array, cap);
      c.ownerId = grown(c.ownerId, Float64Array, cap);
      c.valueHb = grown(c.valueHb, Float64Array, cap);
      c.ownerNode = grown(c.ownerNode, Int32Array, cap);
      c.gnode = grown(c.gnode, Int32Array, cap);
      c.listVersion = grown(c.listVersion, Int32Array, cap);
      c.promiseId.grow(cap);
      c.ballotId.grow(cap);
      this.#capacity = cap;
    }
    return this.#used++;
  }
}
