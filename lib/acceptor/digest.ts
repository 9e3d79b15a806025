/**
 * An order-free digest of a set of (name, ballot, seq) entries, kept up to date as entries come and go.
 * A node renews all its names with one message carrying its count and digest; an acceptor whose own
 * count and digest for that node match renews them all at once. XOR of a 52-bit hash per entry: adding
 * and removing commute, and two different sets collide with probability about 2^-52.
 */
import type { Ballot } from '../protocol/messages.js';

const LOW_BITS = 2 ** 20;

/** 32-bit FNV-1a followed by a murmur3 finaliser, seeded. */
function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The hash of one entry: a non-negative integer below 2^52. */
export function entryHash(name: string, b: Ballot, seq: number): number {
  const key = `${name}\u0000${b.t}\u0000${b.g}\u0000${seq}`;
  return hash32(key, 0) * LOW_BITS + (hash32(key, 0x5bd1e995) % LOW_BITS);
}

/** XOR of two 52-bit digests (JavaScript bitwise operators only reach 32 bits, so split the lanes). */
export function xorDigest(a: number, b: number): number {
  const hi = (Math.floor(a / LOW_BITS) ^ Math.floor(b / LOW_BITS)) >>> 0;
  const lo = ((a % LOW_BITS) ^ (b % LOW_BITS)) >>> 0;
  return hi * LOW_BITS + lo;
}

/** A running (count, digest) of a set of entry hashes. */
export class DigestSet {
  count = 0;
  digest = 0;
  add(hash: number): void {
    this.count++;
    this.digest = xorDigest(this.digest, hash);
  }
  remove(hash: number): void {
    this.count--;
    this.digest = xorDigest(this.digest, hash);
  }
}
