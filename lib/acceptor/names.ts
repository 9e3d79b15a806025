/**
 * The acceptor's names: a hash table from name to entry slot kept in typed arrays, with every name's
 * characters in one arena. An acceptor holds a name for every name in the cluster; as strings in Maps they
 * were 100k small objects on the JS heap (about 70 bytes each with their map entries), long-lived and
 * scattered among short-lived garbage, so the heap could not give memory back after a burst of
 * registrations. Here a name costs its characters (UTF-16) and about 20 bytes, none of it on the heap.
 *
 * Open addressing with linear probing over a power-of-two table of `slot + 1` (0: empty, -1: deleted).
 * Removed names leave dead characters in the arena, compacted in place once they outweigh the live ones.
 */
import { emptyColumn, grown } from './growable.js';

const EMPTY = 0;
const DELETED = -1;
const MIN_TABLE = 1024;
/** Dead characters tolerated before compaction, at least (a compaction moves every live name). */
const MIN_DEAD = 1 << 16;

/** 32-bit FNV-1a of the UTF-16 code units of `s`. */
function hashOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

export class NameTable {
  #table = new Int32Array(MIN_TABLE);
  /** Table cells not empty (live or deleted): what the load counts. */
  #occupied = 0;
  #size = 0;
  /** Per slot: where its name starts in the arena, its length, its hash (-1 length: no name). */
  #off = emptyColumn(Int32Array);
  #len = emptyColumn(Int32Array);
  #hash = emptyColumn(Int32Array);
  #slots = 0;
  #arena = emptyColumn(Uint16Array);
  #arenaUsed = 0;
  #arenaDead = 0;

  /** Number of names. */
  get size(): number {
    return this.#size;
  }

  /** The slot of `name`, or -1. */
  find(name: string): number {
    const h = hashOf(name);
    const mask = this.#table.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const cell = this.#table[i] as number;
      if (cell === EMPTY) return -1;
      if (cell !== DELETED && this.#hash[cell - 1] === h && this.#equals(cell - 1, name)) return cell - 1;
    }
  }

  /** Adds `name` (which must be absent) for `slot` (which must hold no name). */
  insert(name: string, slot: number): void {
    if ((this.#occupied + 1) * 4 > this.#table.length * 3) this.#rehash();
    this.#ensureSlot(slot);
    const h = hashOf(name);
    const at = this.#store(name);
    this.#off[slot] = at;
    this.#len[slot] = name.length;
    this.#hash[slot] = h;
    const mask = this.#table.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const cell = this.#table[i] as number;
      if (cell === EMPTY || cell === DELETED) {
        if (cell === EMPTY) this.#occupied++;
        this.#table[i] = slot + 1;
        break;
      }
    }
    this.#size++;
  }

  /** Removes the name of `slot`, if it has one. */
  remove(slot: number): void {
    if (slot >= this.#slots || (this.#len[slot] as number) < 0) return;
    const h = this.#hash[slot] as number;
    const mask = this.#table.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const cell = this.#table[i] as number;
      if (cell === EMPTY) break;
      if (cell === slot + 1) {
        this.#table[i] = DELETED;
        break;
      }
    }
    this.#arenaDead += this.#len[slot] as number;
    this.#len[slot] = -1;
    this.#size--;
    if (this.#arenaDead > MIN_DEAD && this.#arenaDead * 2 > this.#arenaUsed) this.#compact();
  }

  /** Whether `slot` has a name. */
  has(slot: number): boolean {
    return slot < this.#slots && (this.#len[slot] as number) >= 0;
  }

  /** The name of `slot` (a new string per call). */
  nameOf(slot: number): string {
    const off = this.#off[slot] as number;
    const len = this.#len[slot] as number;
    if (len < 0) throw new RangeError(`slot ${slot} has no name`);
    let out = '';
    // In chunks: String.fromCharCode takes its code units as arguments.
    for (let i = 0; i < len; i += 4096) out += String.fromCharCode(...this.#arena.subarray(off + i, off + Math.min(len, i + 4096)));
    return out;
  }

  /** Whether the name of `slot` starts with `prefix`, without building the name. */
  startsWith(slot: number, prefix: string): boolean {
    const len = this.#len[slot] as number;
    if (len < prefix.length) return false;
    const off = this.#off[slot] as number;
    for (let i = 0; i < prefix.length; i++) if (this.#arena[off + i] !== prefix.charCodeAt(i)) return false;
    return true;
  }

  #equals(slot: number, name: string): boolean {
    const len = this.#len[slot] as number;
    if (len !== name.length) return false;
    const off = this.#off[slot] as number;
    const a = this.#arena;
    for (let i = 0; i < len; i++) if (a[off + i] !== name.charCodeAt(i)) return false;
    return true;
  }

  #ensureSlot(slot: number): void {
    if (slot < this.#slots) return;
    const cap = Math.max(slot + 1, this.#off.length, 1024);
    const next = cap > this.#off.length ? cap + (cap >> 3) : cap;
    this.#off = grown(this.#off, Int32Array, next);
    this.#len = grown(this.#len, Int32Array, next, -1);
    this.#hash = grown(this.#hash, Int32Array, next);
    this.#slots = slot + 1;
  }

  /** Appends `name`'s code units to the arena; returns where they start. */
  #store(name: string): number {
    const at = this.#arenaUsed;
    const need = at + name.length;
    if (need > this.#arena.length) this.#arena = grown(this.#arena, Uint16Array, Math.max(need, this.#arena.length + (this.#arena.length >> 3), 1 << 14));
    for (let i = 0; i < name.length; i++) this.#arena[at + i] = name.charCodeAt(i);
    this.#arenaUsed = need;
    return at;
  }

  /** A table with room for the live names again: doubled when they fill half of it, else just cleared of deleted cells. */
  #rehash(): void {
    const cap = this.#size * 2 >= this.#table.length ? this.#table.length * 2 : this.#table.length;
    const table = new Int32Array(cap);
    const mask = cap - 1;
    for (let slot = 0; slot < this.#slots; slot++) {
      if ((this.#len[slot] as number) < 0) continue;
      let i = (this.#hash[slot] as number) & mask;
      while (table[i] !== EMPTY) i = (i + 1) & mask;
      table[i] = slot + 1;
    }
    this.#table = table;
    this.#occupied = this.#size;
  }

  /** Moves every live name down over the dead characters, in arena order (in place). */
  #compact(): void {
    const live: number[] = [];
    for (let slot = 0; slot < this.#slots; slot++) if ((this.#len[slot] as number) >= 0) live.push(slot);
    live.sort((x, y) => (this.#off[x] as number) - (this.#off[y] as number));
    let to = 0;
    for (const slot of live) {
      const off = this.#off[slot] as number;
      const len = this.#len[slot] as number;
      if (off !== to) this.#arena.copyWithin(to, off, off + len);
      this.#off[slot] = to;
      to += len;
    }
    this.#arenaUsed = to;
    this.#arenaDead = 0;
  }
}
