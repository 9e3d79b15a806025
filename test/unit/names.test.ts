/**
 * The acceptor's name table against a plain Map: random inserts, finds and removes (many names, long and
 * non-ASCII ones, names that differ in one code unit), through table growth, rehashes and arena
 * compaction; every name reads back exactly.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NameTable } from '../../lib/acceptor/names.js';

/** A deterministic pseudo-random generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const shapes = [
  (i: number) => `job/${i}`,
  (i: number) => `jöb/ünïcode/${i}/😀`,
  (i: number) => `${'x'.repeat(200)}${i}`,
  (i: number) => `a${i}`,
  (i: number) => `\u0000${i}\uffff`,
];

test('names: random inserts, finds and removes agree with a Map; names read back exactly', () => {
  const random = rng(7);
  const t = new NameTable();
  const model = new Map<string, number>();
  const free: number[] = [];
  let nextSlot = 0;
  for (let step = 0; step < 60_000; step++) {
    const shape = shapes[Math.floor(random() * shapes.length)] as (i: number) => string;
    const name = shape(Math.floor(random() * 8000));
    const slot = model.get(name);
    if (slot === undefined) {
      assert.is(t.find(name), -1);
      const s = free.pop() ?? nextSlot++;
      t.insert(name, s);
      model.set(name, s);
    } else if (random() < 0.5) {
      assert.is(t.find(name), slot);
      t.remove(slot);
      model.delete(name);
      free.push(slot);
    } else {
      assert.is(t.find(name), slot);
    }
  }
  assert.is(t.size, model.size);
  for (const [name, slot] of model) {
    assert.is(t.find(name), slot);
    assert.is(t.nameOf(slot), name);
    assert.ok(t.has(slot));
    assert.ok(t.startsWith(slot, name.slice(0, 3)));
  }
  for (const s of free) assert.not.ok(t.has(s));
});

test('names: near misses are not found; a removed slot has no name and can be removed again harmlessly', () => {
  const t = new NameTable();
  t.insert('abc', 0);
  t.insert('abd', 1);
  for (const other of ['ab', 'abcd', 'ABC', 'abc ', ' abc', 'abe']) assert.is(t.find(other), -1, other);
  assert.is(t.find('abd'), 1);
  t.remove(0);
  t.remove(0);
  assert.is(t.find('abc'), -1);
  assert.is(t.find('abd'), 1);
  assert.is(t.size, 1);
  assert.not.ok(t.has(0));
  assert.throws(() => t.nameOf(0), RangeError);
  assert.not.ok(t.startsWith(1, 'abdx'));
  t.insert('abc', 0);
  assert.is(t.find('abc'), 0);
});

test('names: a long name (up to the 1 KB limit and beyond) reads back exactly', () => {
  const t = new NameTable();
  const long = Array.from({ length: 9000 }, (_, i) => String.fromCharCode(32 + (i % 90))).join('');
  t.insert(long, 3);
  assert.is(t.nameOf(3), long);
  assert.is(t.find(long), 3);
});

test.run();
