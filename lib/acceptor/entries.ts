/**
 * The acceptor's entries, stored flat: one slot per name in typed-array columns (terms, times, seq,
 * hashes, the value's owner and heartbeat, its member-list version, guard ids as interned prefix and counter), with node ids
 * interned. An acceptor holds an entry for every name in the cluster, so its size is what a node's memory
 * grows with: a slot costs about 115 bytes outside the JS heap (and its name, a map entry), where an
 * object per entry with its ballot, value and owner objects, guard id strings and boxed numbers cost
 * about 700 bytes of heap and gave the garbage collector that many objects to trace.
 *
 * Rules code reads and writes entries through {@link Entry}, a short-lived handle over one slot whose
 * `promise`, `ballot` and `value` properties build (and take apart) the wire-shaped objects on use, so it
 * reads as if the entry held them. Handles are created per call and must not be kept: a deleted slot is
 * reused for another name.
 */
import type { Ballot, OwnerRef, Value } from '../protocol/messages.js';
import { ownCopy } from '../strings.js';
import { emptyColumn, grown, growsInPlace } from './growable.js';
import { compareStored, GuardIdColumn } from './guard-ids.js';
import { Interner } from './interner.js';
import { NameTable } from './names.js';

const HAS_VALUE = 1;
const VIA_HANDOFF = 2;
const CONFIRMED = 4;
/** The entry is covered by its guard node's batched renewals (that node is the value's `gnode`). */
const ATTACHED = 8;
/** A tombstone left by abandon over a value accepted in one round trip and never granted. */
const VOIDED = 16;

const INITIAL_SLOTS = 256;
/** Copied columns double up to this many slots, then grow by a quarter (less room left unused). */
const DOUBLE_UP_TO = 1 << 16;

/** The next capacity: small steps when growing costs no copy, larger ones when it does. */
function nextCapacity(capacity: number, inPlace: boolean): number {
  if (inPlace) return capacity + Math.max(INITIAL_SLOTS * 16, capacity >> 4);
  return Math.max(INITIAL_SLOTS, capacity < DOUBLE_UP_TO ? capacity * 2 : capacity + (capacity >> 2));
}

/** The columns; replaced together when they grow, so handles read them through this object. */
interface Columns {
  flags: Uint8Array;
  promiseT: Float64Array;
  ballotT: Float64Array;
  maxTerm: Float64Array;
  promisedAt: Float64Array;
  seq: Float64Array;
  renewedAt: Float64Array;
  hb: Float64Array;
  hash: Float64Array;
  ownerInc: Float64Array;
  ownerId: Float64Array;
  valueHb: Float64Array;
  ownerNode: Int32Array;
  gnode: Int32Array;
  /** Member-list version a majority of which holds the value, as its installer vouched; -1 unknown. */
  listVersion: Int32Array;
  promiseId: GuardIdColumn;
  ballotId: GuardIdColumn;
  /** Handoff markers are rare and short-lived: kept aside, by slot. */
  handoffTo: Map<number, string>;
  /** Each slot's name. */
  names: NameTable;
  /** Node ids and guard id prefixes. */
  strings: Interner;
}

/** A handle on one entry's slot. Short-lived: see the module comment. */
export class Entry {
  readonly #c: Columns;
  readonly slot: number;

  /** @internal */
  constructor(columns: Columns, slot: number) {
    this.#c = columns;
    this.slot = slot;
  }

  #has(flag: number): boolean {
    return ((this.#c.flags[this.slot] as number) & flag) !== 0;
  }

  #set(flag: number, on: boolean): void {
    const f = this.#c.flags[this.slot] as number;
    this.#c.flags[this.slot] = on ? f | flag : f & ~flag;
  }

  /** Highest promised ballot (a new object per read). */
  get promise(): Ballot | undefined {
    const g = this.#c.promiseId.get(this.slot);
    return g === undefined ? undefined : { t: this.#c.promiseT[this.slot] as number, g };
  }

  set promise(b: Ballot | undefined) {
    const c = this.#c;
    // The accepted ballot is usually the promised one: copy it rather than parse the id again.
    if (b !== undefined && c.ballotT[this.slot] === b.t && c.ballotId.is(this.slot, b.g)) c.promiseId.copyFrom(this.slot, c.ballotId);
    else c.promiseId.set(this.slot, b?.g);
    if (b !== undefined) c.promiseT[this.slot] = b.t;
  }

  /** Ballot of the accepted value (a new object per read). */
  get ballot(): Ballot | undefined {
    const g = this.#c.ballotId.get(this.slot);
    return g === undefined ? undefined : { t: this.#c.ballotT[this.slot] as number, g };
  }

  set ballot(b: Ballot | undefined) {
    const c = this.#c;
    if (b !== undefined && c.promiseT[this.slot] === b.t && c.promiseId.is(this.slot, b.g)) c.ballotId.copyFrom(this.slot, c.promiseId);
    else c.ballotId.set(this.slot, b?.g);
    if (b !== undefined) c.ballotT[this.slot] = b.t;
  }

  /** Term of the promise, or -1 without one. */
  get promiseTerm(): number {
    return this.#c.promiseId.has(this.slot) ? (this.#c.promiseT[this.slot] as number) : -1;
  }

  /** Term of the accepted ballot, or -1 without one. */
  get ballotTerm(): number {
    return this.#c.ballotId.has(this.slot) ? (this.#c.ballotT[this.slot] as number) : -1;
  }

  /** compareBallots(promise, ballot), without building either unless they tie on the term with other ids. */
  promiseVsBallot(): number {
    const c = this.#c;
    const s = this.slot;
    if (!c.promiseId.has(s)) return c.ballotId.has(s) ? -1 : 0;
    if (!c.ballotId.has(s)) return 1;
    const pt = c.promiseT[s] as number;
    const bt = c.ballotT[s] as number;
    if (pt !== bt) return pt < bt ? -1 : 1;
    if (c.promiseId.same(s, c.ballotId)) return 0;
    return (c.promiseId.get(s) as string) < (c.ballotId.get(s) as string) ? -1 : 1;
  }

  /** compareBallots(promise, b), without building the promise. */
  comparePromise(b: Ballot | undefined): number {
    return compareStored(this.#c.promiseT, this.#c.promiseId, this.slot, b?.t ?? 0, b?.g);
  }

  /** compareBallots(ballot, b), without building the ballot. */
  compareBallot(b: Ballot | undefined): number {
    return compareStored(this.#c.ballotT, this.#c.ballotId, this.slot, b?.t ?? 0, b?.g);
  }

  /** Withdraws the promise back to the accepted ballot. */
  withdrawPromise(): void {
    const c = this.#c;
    c.promiseId.copyFrom(this.slot, c.ballotId);
    c.promiseT[this.slot] = c.ballotT[this.slot] as number;
  }

  /** The accepted value (a new object per read); null for a tombstone or nothing accepted. */
  get value(): Value | null {
    if (!this.#has(HAS_VALUE)) return null;
    const c = this.#c;
    const s = this.slot;
    const owner: OwnerRef = { node: c.strings.get(c.ownerNode[s] as number), inc: c.ownerInc[s] as number, id: c.ownerId[s] as number };
    const v: { owner: OwnerRef; gnode: string; hb: number; handoffTo?: string; via?: 'handoff' } =
      { owner, gnode: c.strings.get(c.gnode[s] as number), hb: c.valueHb[s] as number };
    const to = c.handoffTo.get(s);
    if (to !== undefined) v.handoffTo = to;
    if (this.#has(VIA_HANDOFF)) v.via = 'handoff';
    return v;
  }

  set value(v: Value | null) {
    const c = this.#c;
    const s = this.slot;
    this.#releaseValue();
    if (v === null) return;
    c.ownerNode[s] = c.strings.acquire(v.owner.node);
    c.ownerInc[s] = v.owner.inc;
    c.ownerId[s] = v.owner.id;
    c.gnode[s] = c.strings.acquire(v.gnode);
    c.valueHb[s] = v.hb;
    if (v.handoffTo !== undefined) c.handoffTo.set(s, ownCopy(v.handoffTo));
    this.#set(VIA_HANDOFF, v.via === 'handoff');
    this.#set(HAS_VALUE, true);
  }

  #releaseValue(): void {
    if (!this.#has(HAS_VALUE)) return;
    const c = this.#c;
    c.strings.release(c.ownerNode[this.slot] as number);
    c.strings.release(c.gnode[this.slot] as number);
    c.handoffTo.delete(this.slot);
    this.#set(HAS_VALUE | VIA_HANDOFF | ATTACHED, false);
  }

  /** Whether a value (not a tombstone) is accepted. */
  get hasValue(): boolean {
    return this.#has(HAS_VALUE);
  }

  /** The accepted value's handoff target, if it is a handoff marker. */
  get handoffTo(): string | undefined {
    return this.#has(HAS_VALUE) ? this.#c.handoffTo.get(this.slot) : undefined;
  }

  /** The node whose guard renews the accepted value. */
  get gnode(): string | undefined {
    return this.#has(HAS_VALUE) ? this.#c.strings.get(this.#c.gnode[this.slot] as number) : undefined;
  }

  /** The node whose batched renewals cover this entry (always the value's guard node), if any. */
  get attached(): string | undefined {
    return this.#has(ATTACHED) ? this.gnode : undefined;
  }

  /** Covers the entry by its value's guard node's renewals (or stops: `false`). */
  set attachedToGuardNode(on: boolean) {
    this.#set(ATTACHED, on && this.#has(HAS_VALUE));
  }

  get voided(): boolean {
    return this.#has(VOIDED);
  }

  set voided(on: boolean) {
    this.#set(VOIDED, on);
  }

  get confirmed(): boolean {
    return this.#has(CONFIRMED);
  }

  set confirmed(on: boolean) {
    this.#set(CONFIRMED, on);
  }

  get maxTerm(): number { return this.#c.maxTerm[this.slot] as number; }
  set maxTerm(t: number) { this.#c.maxTerm[this.slot] = t; }
  get promisedAt(): number { return this.#c.promisedAt[this.slot] as number; }
  set promisedAt(t: number) { this.#c.promisedAt[this.slot] = t; }
  get seq(): number { return this.#c.seq[this.slot] as number; }
  set seq(n: number) { this.#c.seq[this.slot] = n; }
  /** Local time of the last commit, repair or sync of this entry. */
  get renewedAt(): number { return this.#c.renewedAt[this.slot] as number; }
  set renewedAt(t: number) { this.#c.renewedAt[this.slot] = t; }
  /** Heartbeat the last per-entry renewal carried. */
  get hb(): number { return this.#c.hb[this.slot] as number; }
  set hb(ms: number) { this.#c.hb[this.slot] = ms; }
  /** Member-list version a majority of which holds the value (-1: unknown); see Leases.settledUnder. */
  get listVersion(): number { return this.#c.listVersion[this.slot] as number; }
  set listVersion(v: number) { this.#c.listVersion[this.slot] = v; }
  /** The entry's digest hash (while attached). */
  get hash(): number { return this.#c.hash[this.slot] as number; }
  set hash(h: number) { this.#c.hash[this.slot] = h; }

  /** The entry's name (a new string per read). */
  get name(): string {
    return this.#c.names.nameOf(this.slot);
  }

  /** Whether the entry's name starts with `prefix`, without building the name. */
  startsWith(prefix: string): boolean {
    return this.#c.names.startsWith(this.slot, prefix);
  }

  /** @internal Clears the slot for reuse. */
  clear(): void {
    this.#releaseValue();
    this.#c.promiseId.clear(this.slot);
    this.#c.ballotId.clear(this.slot);
    this.#c.flags[this.slot] = 0;
  }
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
