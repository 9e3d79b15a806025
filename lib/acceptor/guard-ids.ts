/**
 * A column of guard ids (the `g` of ballots), one per entry slot. pes makes guard ids as
 * `node/incarnation/counter`, so a column keeps each as an interned prefix (`node/incarnation`, shared by
 * every guard of that node's life) and the counter: 8 bytes outside the JS heap, where a string of its
 * own cost about 40 bytes of heap per entry. An id of any other shape (or a counter of 10 digits or
 * more) is kept whole, aside.
 */
import { ownCopy } from '../strings.js';
import { emptyColumn, grown } from './growable.js';
import type { Interner } from './interner.js';

/** No id in the slot. */
const NONE = -1;
/** The id did not split into prefix and counter: kept whole in the side map. */
const WHOLE = -2;
/** Most digits of a counter kept as a 32-bit integer (below 2^31). */
const MAX_DIGITS = 9;

/**
 * The counter written from position `from` of `g` to its end: canonical decimal digits only (no sign,
 * no leading zero), or -1 when it is not one, so a stored id rebuilds to exactly the same string.
 */
function counterAt(g: string, from: number): number {
  const digits = g.length - from;
  if (digits < 1 || digits > MAX_DIGITS || (digits > 1 && g.charCodeAt(from) === 48)) return -1;
  let n = 0;
  for (let k = from; k < g.length; k++) {
    const d = g.charCodeAt(k) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

export class GuardIdColumn {
  readonly #strings: Interner;
  #prefix: Int32Array;
  #counter: Int32Array;
  readonly #whole = new Map<number, string>();

  /** `resizable: false`: plain buffers, copied when they grow (see growable.ts). */
  constructor(strings: Interner, resizable = true) {
    this.#strings = strings;
    this.#prefix = emptyColumn(Int32Array, resizable);
    this.#counter = emptyColumn(Int32Array, resizable);
  }

  /** Extends the column to `capacity` slots (new slots hold no id). */
  grow(capacity: number): void {
    this.#prefix = grown(this.#prefix, Int32Array, capacity, NONE);
    this.#counter = grown(this.#counter, Int32Array, capacity);
  }

  has(slot: number): boolean {
    return this.#prefix[slot] !== NONE;
  }

  /** The id in `slot` (rebuilt: a new string per call), or undefined. */
  get(slot: number): string | undefined {
    const p = this.#prefix[slot] as number;
    if (p === NONE) return undefined;
    if (p === WHOLE) return this.#whole.get(slot);
    return `${this.#strings.get(p)}/${this.#counter[slot] as number}`;
  }

  /** Whether `slot` holds exactly `g`, without building the stored id. */
  is(slot: number, g: string): boolean {
    const p = this.#prefix[slot] as number;
    if (p === NONE) return false;
    if (p === WHOLE) return this.#whole.get(slot) === g;
    const prefix = this.#strings.get(p);
    const n = prefix.length;
    return g.length > n + 1 && g.charCodeAt(n) === 47 && g.startsWith(prefix) && counterAt(g, n + 1) === this.#counter[slot];
  }

  /** Whether `slot` here and `slot` in `other` (a column sharing this one's interner) hold the same id, or both none. */
  same(slot: number, other: GuardIdColumn): boolean {
    const p = this.#prefix[slot] as number;
    if (p !== other.#prefix[slot]) return false;
    if (p === NONE) return true;
    if (p === WHOLE) return this.#whole.get(slot) === other.#whole.get(slot);
    return this.#counter[slot] === other.#counter[slot];
  }

  /** Stores `g` (or no id) in `slot`. */
  set(slot: number, g: string | undefined): void {
    if (g !== undefined && this.is(slot, g)) return;
    this.clear(slot);
    if (g === undefined) return;
    const i = g.lastIndexOf('/');
    const n = i > 0 ? counterAt(g, i + 1) : -1;
    if (n < 0) {
      this.#prefix[slot] = WHOLE;
      this.#whole.set(slot, ownCopy(g));
      return;
    }
    this.#prefix[slot] = this.#strings.acquire(g.slice(0, i));
    this.#counter[slot] = n;
  }

  /** Stores in `slot` the id that `other` holds in `slot`. */
  copyFrom(slot: number, other: GuardIdColumn): void {
    if (this.same(slot, other)) return;
    this.clear(slot);
    const p = other.#prefix[slot] as number;
    this.#prefix[slot] = p;
    if (p === WHOLE) this.#whole.set(slot, other.#whole.get(slot) as string);
    else if (p !== NONE) {
      this.#strings.retain(p);
      this.#counter[slot] = other.#counter[slot] as number;
    }
  }

  /** Removes the id from `slot`. */
  clear(slot: number): void {
    const p = this.#prefix[slot] as number;
    if (p >= 0) this.#strings.release(p);
    else if (p === WHOLE) this.#whole.delete(slot);
    this.#prefix[slot] = NONE;
  }
}

/**
 * compareBallots for a ballot in `slot` of (`ts`, `ids`) against one given as (term, id): terms first,
 * then the ids as strings (built only when the terms tie and the ids differ). No ballot sorts first.
 */
export function compareStored(ts: Float64Array, ids: GuardIdColumn, slot: number, t: number, g: string | undefined): number {
  if (!ids.has(slot)) return g === undefined ? 0 : -1;
  if (g === undefined) return 1;
  const st = ts[slot] as number;
  if (st !== t) return st < t ? -1 : 1;
  if (ids.is(slot, g)) return 0;
  return (ids.get(slot) as string) < g ? -1 : 1;
}
