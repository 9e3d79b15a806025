/**
 * Digest: the per-entry hash that batched renewals are built on, and the running (count, digest) set.
 * Properties with fast-check (fixed seed): hashes stay 52-bit safe integers, add/remove commute and
 * cancel, and small distinct sets never share a digest.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { DigestSet, entryHash, xorDigest } from '../../lib/acceptor/digest.js';
import type { Ballot } from '../../lib/protocol/messages.js';

const LIMIT = 2 ** 52;
const SEED = { seed: 424242 };

const ballotArb: fc.Arbitrary<Ballot> = fc.record({
  t: fc.oneof(fc.nat(100), fc.nat({ max: Number.MAX_SAFE_INTEGER })),
  g: fc.oneof(fc.constantFrom('n1/1/1', 'n2/3/77', ''), fc.string(), fc.string({ unit: 'binary' })),
});
const nameArb = fc.oneof(fc.string({ minLength: 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }));
const seqArb = fc.nat(1_000_000);
const hashArb = fc.tuple(nameArb, ballotArb, seqArb).map(([n, b, s]) => entryHash(n, b, s));

test('entryHash: any name, ballot and seq -> a non-negative safe integer below 2^52', () => {
  fc.assert(fc.property(nameArb, ballotArb, seqArb, (name, b, seq) => {
    const h = entryHash(name, b, seq);
    assert.ok(Number.isSafeInteger(h), `safe integer: ${h}`);
    assert.ok(h >= 0 && h < LIMIT, `in range: ${h}`);
  }), { ...SEED, numRuns: 2000 });
});

test('entryHash: same inputs -> same hash (both sides of a renewal agree)', () => {
  fc.assert(fc.property(nameArb, ballotArb, seqArb, (name, b, seq) => {
    assert.is(entryHash(name, { t: b.t, g: b.g }, seq), entryHash(name, b, seq));
  }), SEED);
});

test('entryHash: changing any one field (name, term, guard id, seq) -> another hash', () => {
  const b: Ballot = { t: 7, g: 'n1/1/3' };
  const base = entryHash('job', b, 1);
  assert.is.not(entryHash('job2', b, 1), base);
  assert.is.not(entryHash('job', { t: 8, g: b.g }, 1), base);
  assert.is.not(entryHash('job', { t: 7, g: 'n1/1/4' }, 1), base);
  assert.is.not(entryHash('job', b, 2), base);
  // Field boundaries are not ambiguous.
  assert.is.not(entryHash('a1', { t: 2, g: 'g' }, 3), entryHash('a', { t: 12, g: 'g' }, 3));
  assert.is.not(entryHash('a', { t: 1, g: 'g1' }, 3), entryHash('a', { t: 1, g: 'g' }, 13));
});

test('entryHash: uses the high bits too -> values above 2^32 occur', () => {
  let above = 0;
  for (let i = 0; i < 200; i++) if (entryHash(`n${i}`, { t: i, g: 'g' }, 1) >= 2 ** 32) above++;
  assert.ok(above > 150, `${above} of 200 above 2^32`);
});

test('xorDigest: stays a 52-bit safe integer, is self-inverse and commutative', () => {
  fc.assert(fc.property(hashArb, hashArb, (a, b) => {
    const x = xorDigest(a, b);
    assert.ok(Number.isSafeInteger(x) && x >= 0 && x < LIMIT, `in range: ${x}`);
    assert.is(xorDigest(b, a), x);
    assert.is(xorDigest(x, b), a);
    assert.is(xorDigest(a, a), 0);
    assert.is(xorDigest(a, 0), a);
  }), { ...SEED, numRuns: 2000 });
});

test('xorDigest: matches bitwise XOR done with BigInt', () => {
  fc.assert(fc.property(fc.nat({ max: LIMIT - 1 }), fc.nat({ max: LIMIT - 1 }), (a, b) => {
    assert.is(xorDigest(a, b), Number(BigInt(a) ^ BigInt(b)));
  }), { ...SEED, numRuns: 2000 });
});

test('DigestSet: adds in any order -> the same count and digest', () => {
  fc.assert(fc.property(fc.array(hashArb, { maxLength: 40 }).chain((hs) => fc.tuple(fc.constant(hs), fc.shuffledSubarray(hs, { minLength: hs.length }))), ([hs, shuffled]) => {
    const a = new DigestSet();
    const b = new DigestSet();
    for (const h of hs) a.add(h);
    for (const h of shuffled) b.add(h);
    assert.is(a.count, hs.length);
    assert.is(b.count, a.count);
    assert.is(b.digest, a.digest);
  }), SEED);
});

test('DigestSet: removing everything added, in any order -> count 0 and digest 0', () => {
  fc.assert(fc.property(fc.array(hashArb, { maxLength: 40 }).chain((hs) => fc.tuple(fc.constant(hs), fc.shuffledSubarray(hs, { minLength: hs.length }))), ([hs, order]) => {
    const s = new DigestSet();
    for (const h of hs) s.add(h);
    for (const h of order) s.remove(h);
    assert.is(s.count, 0);
    assert.is(s.digest, 0);
  }), SEED);
});

test('DigestSet: interleaved adds and removes -> equal to a fresh set of what remains', () => {
  fc.assert(fc.property(fc.uniqueArray(hashArb, { minLength: 1, maxLength: 30 }), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), (hs, keep) => {
    const s = new DigestSet();
    const remaining: number[] = [];
    hs.forEach((h, i) => {
      s.add(h);
      if (!keep[i]) s.remove(h);
      else remaining.push(h);
    });
    const fresh = new DigestSet();
    for (const h of [...remaining].reverse()) fresh.add(h);
    assert.is(s.count, fresh.count);
    assert.is(s.digest, fresh.digest);
  }), SEED);
});

test('DigestSet: every subset of 14 distinct entries -> a distinct digest', () => {
  const hs = Array.from({ length: 14 }, (_, i) => entryHash(`name-${i}`, { t: 3, g: 'n1/1/1' }, 1));
  const seen = new Map<number, number>();
  for (let mask = 0; mask < 1 << hs.length; mask++) {
    const s = new DigestSet();
    hs.forEach((h, i) => { if (mask & (1 << i)) s.add(h); });
    const prev = seen.get(s.digest);
    assert.is(prev, undefined, `subsets ${prev} and ${mask} share a digest`);
    seen.set(s.digest, mask);
  }
  assert.is(seen.size, 1 << hs.length);
});

test('DigestSet: same count but one entry renewed under a new seq or ballot -> another digest', () => {
  fc.assert(fc.property(fc.uniqueArray(nameArb, { minLength: 1, maxLength: 20 }), fc.nat(19), (names, pick) => {
    const b: Ballot = { t: 5, g: 'n1/1/1' };
    const victim = names[pick % names.length] as string;
    const a = new DigestSet();
    const bySeq = new DigestSet();
    const byBallot = new DigestSet();
    for (const n of names) {
      a.add(entryHash(n, b, 1));
      bySeq.add(entryHash(n, b, n === victim ? 2 : 1));
      byBallot.add(entryHash(n, n === victim ? { t: 6, g: b.g } : b, 1));
    }
    assert.is(bySeq.count, a.count);
    assert.is.not(bySeq.digest, a.digest);
    assert.is.not(byBallot.digest, a.digest);
  }), SEED);
});

test.run();
