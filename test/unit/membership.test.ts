/**
 * Membership: the versioned member list every majority is counted on. One change at a time, each
 * bumping the version by one; refusals are ConfigError and change nothing; gossip keeps the higher
 * version only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Membership } from '../../lib/cluster/membership.js';
import { quorum } from '../../lib/guard/machine.js';
import { ConfigError } from '../../lib/errors.js';
import type { MemberInfo, MemberList } from '../../lib/protocol/messages.js';

const member = (id: string): MemberInfo => ({ id, endpoint: `tcp://127.0.0.1:${7000 + Number(id.slice(1))}` });
const list = (version: number, ...ids: string[]): MemberList => ({ version, members: ids.map(member) });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ConfigError);
    return e as ConfigError;
  }
  assert.unreachable('expected ConfigError');
  throw new Error('unreachable');
}

test('quorum: sizes 1..7 -> 1, 2, 2, 3, 3, 4, 4', () => {
  const expected = [1, 2, 2, 3, 3, 4, 4];
  for (let n = 1; n <= 7; n++) {
    const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    const m = new Membership('n1', list(1, ...ids));
    assert.is(m.quorum(), expected[n - 1], `membership quorum of ${n}`);
    assert.is(quorum(ids), expected[n - 1], `machine quorum of ${n}`);
  }
});

test('quorum: any two majorities of N, and of N and N+1, overlap', () => {
  for (let n = 1; n <= 7; n++) {
    const q = quorum(Array.from({ length: n }, (_, i) => `n${i}`));
    const q1 = quorum(Array.from({ length: n + 1 }, (_, i) => `n${i}`));
    assert.ok(2 * q > n, `two majorities of ${n} overlap`);
    assert.ok(q + q1 > n + 1, `majorities of ${n} and ${n + 1} overlap`);
  }
});

test('membership: initial list -> ids in order, endpoints, has, self', () => {
  const m = new Membership('n2', list(3, 'n1', 'n2', 'n3'));
  assert.equal(m.ids(), ['n1', 'n2', 'n3']);
  assert.is(m.self, 'n2');
  assert.is(m.list().version, 3);
  assert.ok(m.has('n3'));
  assert.not.ok(m.has('n4'));
  assert.is(m.endpointOf('n1'), member('n1').endpoint);
  assert.is(m.endpointOf('n9'), undefined);
});

test('add: one member -> appended, version +1, onChange told the new ids', () => {
  const m = new Membership('n1', list(1, 'n1'));
  const seen: string[][] = [];
  m.onChange((ids) => seen.push([...ids]));
  const l2 = m.add(member('n2'));
  assert.is(l2.version, 2);
  assert.equal(m.ids(), ['n1', 'n2']);
  const l3 = m.add(member('n3'));
  assert.is(l3.version, 3);
  assert.equal(m.list(), l3);
  assert.equal(m.ids(), ['n1', 'n2', 'n3']);
  assert.equal(seen, [['n1', 'n2'], ['n1', 'n2', 'n3']]);
  assert.is(m.quorum(), 2);
});

test('remove: one member -> gone, version +1, onChange told', () => {
  const m = new Membership('n1', list(4, 'n1', 'n2', 'n3'));
  const seen: string[][] = [];
  m.onChange((ids) => seen.push([...ids]));
  const l = m.remove('n2');
  assert.is(l.version, 5);
  assert.equal(m.ids(), ['n1', 'n3']);
  assert.not.ok(m.has('n2'));
  assert.equal(seen, [['n1', 'n3']]);
});

test('add: duplicate id -> ConfigError, list and version unchanged', () => {
  const m = new Membership('n1', list(2, 'n1', 'n2'));
  let calls = 0;
  m.onChange(() => calls++);
  const err = configError(() => m.add({ id: 'n2', endpoint: 'tcp://127.0.0.1:9999' }));
  assert.is(err.name, 'ConfigError');
  assert.is(m.list().version, 2);
  assert.equal(m.ids(), ['n1', 'n2']);
  assert.is(m.endpointOf('n2'), member('n2').endpoint);
  assert.is(calls, 0);
});

test('remove: unknown id -> ConfigError, unchanged', () => {
  const m = new Membership('n1', list(2, 'n1', 'n2'));
  configError(() => m.remove('n7'));
  assert.is(m.list().version, 2);
  assert.equal(m.ids(), ['n1', 'n2']);
});

test('remove: the last member -> ConfigError, unchanged', () => {
  const m = new Membership('n1', list(2, 'n1'));
  configError(() => m.remove('n1'));
  assert.is(m.list().version, 2);
  assert.equal(m.ids(), ['n1']);
});

test('add/remove: a sequence of single changes -> version rises by exactly one each', () => {
  const m = new Membership('n1', list(1, 'n1'));
  const versions: number[] = [];
  for (const id of ['n2', 'n3', 'n4']) versions.push(m.add(member(id)).version);
  for (const id of ['n2', 'n4']) versions.push(m.remove(id).version);
  versions.push(m.add(member('n5')).version);
  assert.equal(versions, [2, 3, 4, 5, 6, 7]);
  assert.equal(m.ids(), ['n1', 'n3', 'n5']);
});

test('merge: higher version -> adopted, onChange told; equal or lower -> ignored', () => {
  const m = new Membership('n1', list(3, 'n1', 'n2'));
  const seen: string[][] = [];
  m.onChange((ids) => seen.push([...ids]));
  assert.is(m.merge(list(3, 'n1', 'n9')), false);
  assert.is(m.merge(list(2, 'n1', 'n2', 'n3')), false);
  assert.equal(m.ids(), ['n1', 'n2']);
  assert.equal(seen, []);
  assert.is(m.merge(list(4, 'n1', 'n2', 'n3')), true);
  assert.equal(m.ids(), ['n1', 'n2', 'n3']);
  assert.is(m.list().version, 4);
  assert.equal(seen, [['n1', 'n2', 'n3']]);
  assert.is(m.merge(list(4, 'n1')), false);
  assert.equal(m.ids(), ['n1', 'n2', 'n3']);
});

test('merge: two nodes exchanging lists -> both end on the higher version', () => {
  const a = new Membership('n1', list(1, 'n1', 'n2'));
  const b = new Membership('n2', list(1, 'n1', 'n2'));
  a.add(member('n3'));
  a.add(member('n4'));
  b.merge(a.list());
  a.merge(b.list());
  assert.equal(a.list(), b.list());
  assert.is(b.list().version, 3);
  // A local change after adopting continues from the adopted version.
  assert.is(b.remove('n4').version, 4);
  a.merge(b.list());
  assert.equal(a.ids(), ['n1', 'n2', 'n3']);
});

test.run();
