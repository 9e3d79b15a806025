/**
 * Reference-counted string interning: each distinct string gets a small integer index that typed-array
 * columns can hold, and one copy of the string is kept for all its uses. Every decoded frame brings
 * fresh copies of the same few node ids; interned, 100k entries naming three nodes keep three strings.
 * An index is freed (and may be reused for another string) when its last use is released, so ids of
 * nodes that are long gone do not accumulate.
 */
import { ownCopy } from '../strings.js';

export class Interner {
  readonly #index = new Map<string, number>();
  readonly #strings: (string | undefined)[] = [];
  readonly #refs: number[] = [];
  readonly #free: number[] = [];

  /** The index of `s`, counting one more use of it. */
  acquire(s: string): number {
    let i = this.#index.get(s);
    if (i === undefined) {
      i = this.#free.pop() ?? this.#strings.length;
      const own = ownCopy(s);
      this.#index.set(own, i);
      this.#strings[i] = own;
      this.#refs[i] = 0;
    }
    this.#refs[i] = (this.#refs[i] as number) + 1;
    return i;
  }

  /** Counts one more use of index `i` (which must be in use). */
  retain(i: number): void {
    if (this.#strings[i] === undefined) throw new RangeError(`interned index ${i} is not in use`);
    this.#refs[i] = (this.#refs[i] as number) + 1;
  }

  /** Ends one use of index `i`; the last one frees it. */
  release(i: number): void {
    const refs = (this.#refs[i] ?? 0) - 1;
    if (refs > 0) {
      this.#refs[i] = refs;
      return;
    }
    const s = this.#strings[i];
    if (s === undefined) return;
    this.#index.delete(s);
    this.#strings[i] = undefined;
    this.#refs[i] = 0;
    this.#free.push(i);
  }

  /** The string at index `i` (which must be in use). */
  get(i: number): string {
    const s = this.#strings[i];
    if (s === undefined) throw new RangeError(`interned index ${i} is not in use`);
    return s;
  }

  /** The index of `s` if it is interned (no use counted), else -1. */
  find(s: string): number {
    return this.#index.get(s) ?? -1;
  }

  /** Number of distinct strings held. */
  get size(): number {
    return this.#index.size;
  }
}
