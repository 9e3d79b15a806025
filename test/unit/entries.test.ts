/**
 * The acceptor's flat entry store and the interner under it: what goes in comes back out exactly (wire
 * shape included), names and node ids never mix, reused slots start empty, and the allocation-free
 * ballot comparisons agree with compareBallots.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryTable } from '../../lib/acceptor/entries.js';
import { GuardIdColumn } from '../../lib/acceptor/guard-ids.js';
import { emptyColumn, grown, growsInPlace } from '../../lib/acceptor/growable.js';
import { Interner } from '../../lib/acceptor/interner.js';
import { compareBallots } from '../../lib/protocol/ballot.js';
import type { Ballot, Value } from '../../lib/protocol/messages.js';

const value = (node: string, id: number, extra: Partial<Pick<Value, 'handoffTo' | 'via'>> = {}): Value =>
  ({ owner: { node, inc: 1_764_000_000_000 + id, id }, gnode: `g-${node}`, hb: 8048, ...extra });

test('growable: grows in place keeping every value; past its reservation it is copied and keeps growing in place', () => {
  let col = emptyColumn(Float64Array);
  assert.ok(growsInPlace(col));
  col = grown(col, Float64Array, 1000, 0.5);
  col[3] = 2 ** 53 - 1;
  const same = grown(col, Float64Array, 5000);
  assert.is(same, col, 'the same array, grown');
  assert.is(same.length, 5000);
  assert.is(same[3], 2 ** 53 - 1);
  assert.is(same[999], 0.5);
  assert.is(same[1000], 0, 'new slots are zero unless a fill is given');
  let bytes = emptyColumn(Uint8Array);
  bytes = grown(bytes, Uint8Array, 1 << 20, 7);
  bytes[0] = 9;
  const beyond = grown(bytes, Uint8Array, (1 << 20) + 10, 3);
  assert.is.not(beyond, bytes, 'past the reservation: a copy');
  assert.is(beyond[0], 9);
  assert.is(beyond[(1 << 20) - 1], 7);
  assert.is(beyond[(1 << 20) + 9], 3);
  assert.ok(growsInPlace(beyond), 'the copy reserves more and grows in place again');
  assert.is(grown(beyond, Uint8Array, 10), beyond, 'never shrinks');
  const plain = grown(emptyColumn(Int32Array, false), Int32Array, 10, -1);
  assert.not.ok(growsInPlace(plain));
  assert.equal([...plain], new Array(10).fill(-1));
});

test('interner: the same string -> the same index; different strings -> different indices', () => {
  const i = new Interner();
  const a = i.acquire('node-a');
  const b = i.acquire('node-b');
  assert.is(i.acquire(`node-${'a'}`), a);
  assert.is.not(a, b);
  assert.is(i.get(a), 'node-a');
  assert.is(i.get(b), 'node-b');
  assert.is(i.size, 2);
});

test('interner: freed only after the last use is released; a reused index names the new string', () => {
  const i = new Interner();
  const a = i.acquire('a');
  i.acquire('a');
  i.release(a);
  assert.is(i.get(a), 'a');
  assert.is(i.find('a'), a);
  i.release(a);
  assert.is(i.find('a'), -1);
  assert.throws(() => i.get(a), RangeError);
  const c = i.acquire('c');
  assert.is(c, a, 'the freed index is reused');
  assert.is(i.get(c), 'c');
  assert.is(i.find('a'), -1, 'the old string does not come back through the reused index');
  assert.is(i.size, 1);
});

test('entries: promise, ballot, value and numbers read back exactly as written', () => {
  const t = new EntryTable(4);
  const e = t.create('job', 10);
  assert.is(e.promise, undefined);
  assert.is(e.ballot, undefined);
  assert.is(e.value, null);
  assert.is(e.seq, 0);
  assert.is(e.renewedAt, 10);
  const p: Ballot = { t: 1_764_000_000_000_123, g: 'n1/1764000000000/7' };
  const b: Ballot = { t: 1_764_000_000_000_122, g: 'n2/1764000000001/9' };
  e.promise = p;
  e.ballot = b;
  e.value = value('n2', 42, { via: 'handoff' });
  e.seq = 3;
  e.maxTerm = p.t;
  e.promisedAt = 12.5;
  e.hb = 8048;
  e.hash = 2 ** 52 - 1;
  e.confirmed = true;
  const r = t.get('job');
  assert.ok(r !== undefined);
  assert.equal(r.promise, p);
  assert.equal(r.ballot, b);
  assert.equal(r.value, value('n2', 42, { via: 'handoff' }));
  assert.equal(Object.keys(r.value ?? {}).sort(), ['gnode', 'hb', 'owner', 'via'], 'no undefined keys on the wire shape');
  assert.is(r.seq, 3);
  assert.is(r.maxTerm, p.t);
  assert.is(r.promisedAt, 12.5);
  assert.is(r.hb, 8048);
  assert.is(r.hash, 2 ** 52 - 1);
  assert.ok(r.confirmed);
  assert.is(r.promiseTerm, p.t);
  assert.is(r.ballotTerm, b.t);
  assert.is(r.gnode, 'g-n2');
});

test('entries: a handoff marker keeps its target; a tombstone after it drops it', () => {
  const t = new EntryTable(1);
  const e = t.create('x', 0);
  e.value = value('a', 1, { handoffTo: 'b/1/5' });
  assert.is(e.handoffTo, 'b/1/5');
  assert.equal(e.value, value('a', 1, { handoffTo: 'b/1/5' }));
  e.value = null;
  assert.is(e.handoffTo, undefined);
  assert.is(e.value, null);
  assert.not.ok(e.hasValue);
});

for (const resizable of [true, false]) test(`entries: many names over many nodes -> each reads back its own value (${resizable ? 'growing in place' : 'copied'})`, () => {
  const t = new EntryTable(16, { resizable });
  assert.is(t.inPlace, resizable);
  const nodes = ['a', 'b', 'c', 'd', 'e'];
  for (let i = 0; i < 5000; i++) {
    const e = t.create(`name/${i}`, i);
    e.ballot = { t: 1000 + i, g: `${nodes[i % 5]}/1/${i}` };
    e.promise = { t: 1000 + i, g: `${nodes[i % 5]}/1/${i}` };
    e.value = value(nodes[(i * 7) % 5] as string, i);
    e.seq = i % 3;
  }
  assert.is(t.size, 5000);
  assert.ok(t.capacity >= 5000);
  for (let i = 0; i < 5000; i++) {
    const e = t.get(`name/${i}`);
    assert.ok(e !== undefined);
    assert.equal(e.ballot, { t: 1000 + i, g: `${nodes[i % 5]}/1/${i}` });
    assert.equal(e.value, value(nodes[(i * 7) % 5] as string, i));
    assert.is(e.seq, i % 3);
    assert.is(e.renewedAt, i);
  }
  assert.is(t.interned, 15, 'five owner nodes, five guard nodes and five guard id prefixes, each kept once');
  assert.is(t.inPlace, resizable);
});

test('entries: a deleted name is gone; its reused slot starts empty; node ids no entry names are freed', () => {
  const t = new EntryTable(2);
  const a = t.create('a', 0);
  a.promise = { t: 5, g: 'x/1/1' };
  a.ballot = { t: 5, g: 'x/1/1' };
  a.value = value('only-here', 1, { handoffTo: 'y/1/2', via: 'handoff' });
  a.confirmed = true;
  a.attachedToGuardNode = true;
  assert.is(t.interned, 3, 'owner node, guard node, guard id prefix');
  t.delete('a');
  assert.is(t.get('a'), undefined);
  assert.is(t.interned, 0);
  const b = t.create('b', 7);
  assert.is(b.slot, a.slot, 'the slot is reused');
  assert.is(b.promise, undefined);
  assert.is(b.ballot, undefined);
  assert.is(b.value, null);
  assert.is(b.handoffTo, undefined);
  assert.is(b.attached, undefined);
  assert.not.ok(b.confirmed);
  assert.is(b.seq, 0);
  assert.is(b.maxTerm, 0);
  assert.is(b.renewedAt, 7);
  t.delete('missing');
  assert.is(t.size, 1);
});

test('entries: attached names the value\'s guard node, and only while a value is held', () => {
  const t = new EntryTable(1);
  const e = t.create('n', 0);
  e.attachedToGuardNode = true;
  assert.is(e.attached, undefined, 'nothing to attach without a value');
  e.value = value('a', 1);
  e.attachedToGuardNode = true;
  assert.is(e.attached, 'g-a');
  e.attachedToGuardNode = false;
  assert.is(e.attached, undefined);
});

test('entries: attachedTo finds exactly the entries attached to that guard node', () => {
  const t = new EntryTable(4);
  for (let i = 0; i < 300; i++) {
    const e = t.create(`n${i}`, 0);
    e.value = value(i % 3 === 0 ? 'a' : 'b', i);
    e.attachedToGuardNode = i % 2 === 0;
  }
  t.delete('n0');
  const slots = (node: string): number[] => t.attachedTo(node).map((e) => e.slot).sort((x, y) => x - y);
  const expect = (node: string): number[] => {
    const out: number[] = [];
    t.forEach((e) => {
      const i = Number(e.name.slice(1));
      if (i % 2 === 0 && (i % 3 === 0 ? 'g-a' : 'g-b') === node) out.push(e.slot);
    });
    return out.sort((x, y) => x - y);
  };
  assert.equal(slots('g-a'), expect('g-a'));
  assert.equal(slots('g-b'), expect('g-b'));
  assert.ok(slots('g-a').length > 0 && slots('g-b').length > 0);
  assert.equal(slots('g-c'), []);
});

test('entries: comparisons without building ballots agree with compareBallots', () => {
  const t = new EntryTable(1);
  const e = t.create('n', 0);
  const ballots: (Ballot | undefined)[] = [undefined, { t: 1, g: 'a' }, { t: 1, g: 'b' }, { t: 2, g: 'a' }, { t: 2 ** 52, g: 'a/1/1' }];
  for (const p of ballots) {
    for (const b of ballots) {
      e.promise = p;
      e.ballot = b;
      assert.is(Math.sign(e.promiseVsBallot()), Math.sign(compareBallots(p, b)), `promise ${JSON.stringify(p)} vs ballot ${JSON.stringify(b)}`);
      for (const x of ballots) {
        assert.is(Math.sign(e.comparePromise(x)), Math.sign(compareBallots(p, x)));
        assert.is(Math.sign(e.compareBallot(x)), Math.sign(compareBallots(b, x)));
      }
      e.withdrawPromise();
      assert.equal(e.promise, b);
      assert.is(e.promiseTerm, b?.t ?? -1);
    }
  }
});

test('entries: deleting while walking a shard visits every other entry once', () => {
  const t = new EntryTable(1);
  for (let i = 0; i < 100; i++) t.create(`n${i}`, 0);
  const seen: string[] = [];
  t.forEachIn(0, (e) => {
    seen.push(e.name);
    if (Number(e.name.slice(1)) % 2 === 0) t.remove(e);
  });
  assert.is(seen.length, 100);
  assert.is(t.size, 50);
  let left = 0;
  t.forEach(() => left++);
  assert.is(left, 50);
  let visited = 0;
  t.forEachIn(0, () => ++visited < 10);
  assert.is(visited, 10, 'false stops the walk');
});

test('entries: shards split the slots; each entry is in exactly one, found by its name', () => {
  const t = new EntryTable(4);
  for (let i = 0; i < 50; i++) t.create(`s/${i}`, 0);
  t.delete('s/7');
  const seen = new Map<string, number>();
  for (let s = 0; s < t.shards; s++) t.forEachIn(s, (e) => void seen.set(e.name, s));
  assert.is(seen.size, 49);
  assert.not.ok(seen.has('s/7'));
  for (const [name] of seen) assert.is(t.get(name)?.name, name);
});

test('guard ids: every shape reads back exactly, split or kept whole', () => {
  const strings = new Interner();
  const col = new GuardIdColumn(strings);
  col.grow(64);
  const ids = [
    'n1/1764000000000/1', 'n1/1764000000000/0', 'node-ä/7/123456789', 'node-ä/7/1234567890', 'node-ä/7/123456789012345', 'x', '', '/', 'a/', '/5', 'a/01', 'a/00',
    'a/1234567890123456', 'n/1/-3', 'n/1/+3', 'n/1/3.0', 'n/1/1e3', 'a//7', 'a/b/c', '😀/1/2', 'a/\u0661',
  ];
  ids.forEach((g, i) => col.set(i, g));
  ids.forEach((g, i) => {
    assert.is(col.get(i), g, `slot ${i}`);
    assert.ok(col.is(i, g), `is ${JSON.stringify(g)}`);
  });
  assert.is(col.get(63), undefined);
  assert.not.ok(col.has(63));
  assert.not.ok(col.is(63, 'n1/1764000000000/1'));
});

test('guard ids: near misses are other ids', () => {
  const strings = new Interner();
  const col = new GuardIdColumn(strings);
  col.grow(4);
  col.set(0, 'a/1/1');
  for (const other of ['a/1/10', 'a/1/01', 'a/1/1 ', 'a/1/1/', 'a/11', 'a/1', 'b/1/1', 'a/1/', 'A/1/1', 'a/1/2']) {
    assert.not.ok(col.is(0, other), other);
  }
  col.set(1, 'a/11');
  assert.not.ok(col.is(1, 'a/1/1'));
  assert.not.ok(col.is(3, 'a/1/1'), 'an empty slot holds no id');
  const other = new GuardIdColumn(strings);
  other.grow(4);
  other.set(0, 'a/1/2');
  assert.not.ok(col.same(0, other), 'same prefix, other counter');
  other.set(0, 'b/1/1');
  assert.not.ok(col.same(0, other), 'same counter, other prefix');
  other.set(0, 'a/1/1');
  assert.ok(col.same(0, other));
});

test('guard ids: copies and clears count prefix uses; the last release frees the prefix', () => {
  const strings = new Interner();
  const p = new GuardIdColumn(strings);
  const b = new GuardIdColumn(strings);
  p.grow(4);
  b.grow(4);
  b.set(0, 'n1/5/1');
  p.copyFrom(0, b);
  assert.ok(p.same(0, b));
  assert.is(p.get(0), 'n1/5/1');
  p.set(1, 'n1/5/2');
  assert.is(strings.size, 1);
  b.clear(0);
  assert.is(strings.size, 1, 'still used by the promise column');
  p.clear(0);
  p.set(1, 'odd id');
  assert.is(strings.size, 0);
  assert.is(p.get(1), 'odd id');
  b.copyFrom(1, p);
  assert.is(b.get(1), 'odd id');
  p.set(1, undefined);
  assert.is(b.get(1), 'odd id');
  assert.is(p.get(1), undefined);
});

test.run();
