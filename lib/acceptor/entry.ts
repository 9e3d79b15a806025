/**
 * One acceptor entry as rules code sees it: {@link Entry}, a short-lived handle over one slot of the
 * entry table's typed-array columns (entries.ts), whose `promise`, `ballot` and `value` properties build
 * (and take apart) the wire-shaped objects on use, so it reads as if the entry held them. Handles are
 * created per call and must not be kept: a deleted slot is reused for another name.
 */
import type { Ballot, OwnerRef, Value } from '../protocol/messages.js';
import { ownCopy } from '../strings.js';
import { compareStored, type GuardIdColumn } from './guard-ids.js';
import type { Interner } from './interner.js';
import type { NameTable } from './names.js';

export const HAS_VALUE = 1;
const VIA_HANDOFF = 2;
const CONFIRMED = 4;
/** The entry is covered by its guard node's batched renewals (that node is the value's `gnode`). */
export const ATTACHED = 8;
/** A tombstone left by abandon over a value accepted in one round trip and never granted. */
const VOIDED = 16;

/** The columns; replaced together when they grow, so handles read them through this object. */
export interface Columns {
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
