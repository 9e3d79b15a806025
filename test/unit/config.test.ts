/**
 * Cluster config: defaults, validated set, last-writer-wins merge by (version, node id), and
 * convergence of several nodes gossiping their entries (fast-check, fixed seed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ClusterConfig, DEFAULT_SETTINGS, isSettingKey, validateSetting, type SettingKey } from '../../lib/cluster/config.js';
import { ConfigError, InvalidArgumentError } from '../../lib/errors.js';
import type { ConfigEntry } from '../../lib/protocol/messages.js';

function threw<T>(fn: () => unknown, cls: new (...args: never[]) => T): T {
  try {
    fn();
  } catch (e) {
    assert.instance(e, cls);
    return e as T;
  }
  assert.unreachable('expected a throw');
  throw new Error('unreachable');
}

test('defaults: heartbeat 8048, deleteTimeThreshold 200000, deleteLimit 100, cleanupPeriod 5001', () => {
  const c = new ClusterConfig('n1');
  assert.is(c.get('heartbeat'), 8048);
  assert.is(c.get('deleteTimeThreshold'), 200_000);
  assert.is(c.get('deleteLimit'), 100);
  assert.is(c.get('cleanupPeriod'), 5001);
  assert.is(DEFAULT_SETTINGS.heartbeat, 8048);
  assert.is(c.values.cleanupPeriod, 5001);
  assert.equal(c.entries(), []);
});

test('defaults: two configs do not share their values', () => {
  const a = new ClusterConfig('n1');
  const b = new ClusterConfig('n2');
  a.set('heartbeat', 2000);
  assert.is(b.get('heartbeat'), 8048);
  assert.is(new ClusterConfig('n3').get('heartbeat'), 8048);
});

test('constructor: initial values are validated and applied', () => {
  const c = new ClusterConfig('n1', { heartbeat: 1500 });
  assert.is(c.get('heartbeat'), 1500);
  threw(() => new ClusterConfig('n1', { heartbeat: 0 }), InvalidArgumentError);
  threw(() => new ClusterConfig('n1', { nope: 5 } as never), ConfigError);
});

test('set: valid value -> applied, versioned entry by this node, onChange told', () => {
  const c = new ClusterConfig('n1');
  const seen: [SettingKey, number][] = [];
  c.onChange((k, v) => seen.push([k, v]));
  const e = c.set('heartbeat', 2000);
  assert.equal(e, { key: 'heartbeat', value: 2000, version: 1, by: 'n1' });
  assert.is(c.get('heartbeat'), 2000);
  assert.equal(c.entries(), [e]);
  assert.equal(seen, [['heartbeat', 2000]]);
  const e2 = c.set('deleteLimit', 7);
  assert.ok(e2.version > e.version, 'a set goes above every version seen');
});

test('set: unknown key -> ConfigError carrying the key, nothing changes', () => {
  const c = new ClusterConfig('n1');
  let calls = 0;
  c.onChange(() => calls++);
  const err = threw(() => c.set('hearbeat', 2000), ConfigError);
  assert.is(err.key, 'hearbeat');
  assert.is(err.name, 'ConfigError');
  assert.equal(c.entries(), []);
  assert.equal({ ...c.values }, { ...DEFAULT_SETTINGS });
  assert.is(calls, 0);
});

test('set: bad values -> InvalidArgumentError carrying the key, nothing changes', () => {
  const c = new ClusterConfig('n1');
  let calls = 0;
  c.onChange(() => calls++);
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity, '2000', null, undefined, 10 ** 12]) {
    const err = threw(() => c.set('heartbeat', bad), InvalidArgumentError);
    assert.is(err.argument, 'heartbeat');
    assert.is(err.name, 'InvalidArgumentError');
  }
  threw(() => c.set('deleteTimeThreshold', 999), InvalidArgumentError);
  threw(() => c.set('deleteLimit', 0), InvalidArgumentError);
  threw(() => c.set('cleanupPeriod', 99), InvalidArgumentError);
  assert.equal(c.entries(), []);
  assert.equal({ ...c.values }, { ...DEFAULT_SETTINGS });
  assert.is(calls, 0);
});

test('validateSetting: key check first, then range', () => {
  assert.ok(isSettingKey('heartbeat'));
  assert.not.ok(isSettingKey('toString'));
  assert.not.ok(isSettingKey('__proto__'));
  threw(() => validateSetting('toString', 1), ConfigError);
  threw(() => validateSetting('constructor', 1), ConfigError);
  validateSetting('heartbeat', 1000);
});

test('merge: higher version wins, lower is ignored', () => {
  const c = new ClusterConfig('n1');
  assert.is(c.merge([{ key: 'heartbeat', value: 3000, version: 5, by: 'n2' }]), true);
  assert.is(c.get('heartbeat'), 3000);
  assert.is(c.merge([{ key: 'heartbeat', value: 4000, version: 4, by: 'n9' }]), false);
  assert.is(c.get('heartbeat'), 3000);
  assert.is(c.merge([{ key: 'heartbeat', value: 4000, version: 6, by: 'n0' }]), true);
  assert.is(c.get('heartbeat'), 4000);
});

test('merge: equal version -> the higher node id wins, whichever arrives first', () => {
  const lo: ConfigEntry = { key: 'deleteLimit', value: 10, version: 3, by: 'n1' };
  const hi: ConfigEntry = { key: 'deleteLimit', value: 20, version: 3, by: 'n2' };
  const a = new ClusterConfig('x');
  a.merge([lo]);
  a.merge([hi]);
  const b = new ClusterConfig('y');
  b.merge([hi]);
  assert.is(b.merge([lo]), false);
  assert.is(a.get('deleteLimit'), 20);
  assert.is(b.get('deleteLimit'), 20);
  assert.equal(a.entries(), b.entries());
});

test('merge: the same entry twice -> no change reported the second time', () => {
  const c = new ClusterConfig('n1');
  let calls = 0;
  c.onChange(() => calls++);
  const e: ConfigEntry = { key: 'heartbeat', value: 3000, version: 2, by: 'n2' };
  assert.is(c.merge([e]), true);
  assert.is(c.merge([e]), false);
  assert.is(calls, 1);
});

test('merge: unknown keys and invalid values -> ignored, nothing changes', () => {
  const c = new ClusterConfig('n1');
  let calls = 0;
  c.onChange(() => calls++);
  const changed = c.merge([
    { key: 'bogus', value: 1, version: 99, by: 'n2' },
    { key: '__proto__', value: 1, version: 99, by: 'n2' },
    { key: 'heartbeat', value: -5, version: 99, by: 'n2' },
    { key: 'deleteLimit', value: 2.5, version: 99, by: 'n2' },
    { key: 'cleanupPeriod', value: '5000' as unknown as number, version: 99, by: 'n2' },
  ]);
  assert.is(changed, false);
  assert.equal(c.entries(), []);
  assert.equal({ ...c.values }, { ...DEFAULT_SETTINGS });
  assert.is(calls, 0);
  // A later valid entry still applies.
  assert.is(c.merge([{ key: 'heartbeat', value: 2000, version: 1, by: 'n2' }]), true);
  assert.is(c.get('heartbeat'), 2000);
});

test('merge: an invalid entry with a high version does not block a lower valid one', () => {
  const c = new ClusterConfig('n1');
  c.merge([{ key: 'heartbeat', value: 0, version: 50, by: 'n9' }, { key: 'heartbeat', value: 1234, version: 2, by: 'n2' }]);
  assert.is(c.get('heartbeat'), 1234);
});

test('set: after merging a high version -> the local set goes above it and wins everywhere', () => {
  const a = new ClusterConfig('n1');
  const b = new ClusterConfig('n2');
  b.merge([{ key: 'deleteLimit', value: 5, version: 40, by: 'n3' }]);
  const e = b.set('heartbeat', 1111);
  assert.ok(e.version > 40);
  a.merge([{ key: 'heartbeat', value: 2222, version: 40, by: 'n9' }]);
  a.merge(b.entries());
  assert.is(a.get('heartbeat'), 1111);
});

// ---- convergence -----------------------------------------------------------------------------------

const NODES = ['n1', 'n2', 'n3', 'n4'];
const KEYS: SettingKey[] = ['heartbeat', 'deleteLimit', 'cleanupPeriod', 'deleteTimeThreshold'];
const VALID: Record<string, fc.Arbitrary<number>> = {
  heartbeat: fc.integer({ min: 1, max: 20_000 }),
  deleteLimit: fc.integer({ min: 1, max: 1000 }),
  cleanupPeriod: fc.integer({ min: 100, max: 10_000 }),
  deleteTimeThreshold: fc.integer({ min: 1000, max: 500_000 }),
};

type Op = { k: 'set'; node: number; key: SettingKey; value: number } | { k: 'gossip'; from: number; to: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constantFrom(...KEYS).chain((key) => fc.record({
    k: fc.constant('set' as const), node: fc.nat(NODES.length - 1), key: fc.constant(key), value: VALID[key] as fc.Arbitrary<number>,
  })),
  fc.record({ k: fc.constant('gossip' as const), from: fc.nat(NODES.length - 1), to: fc.nat(NODES.length - 1) }),
);

test('merge: nodes that set concurrently and gossip in any order -> converge once everyone has heard everyone', () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
    const cs = NODES.map((n) => new ClusterConfig(n));
    for (const op of ops) {
      if (op.k === 'set') (cs[op.node] as ClusterConfig).set(op.key, op.value);
      else (cs[op.to] as ClusterConfig).merge((cs[op.from] as ClusterConfig).entries());
    }
    // Two full rounds of all-to-all exchange.
    for (let round = 0; round < 2; round++) for (const a of cs) for (const b of cs) b.merge(a.entries());
    const first = cs[0] as ClusterConfig;
    const sortE = (es: ConfigEntry[]): ConfigEntry[] => [...es].sort((x, y) => x.key.localeCompare(y.key));
    for (const c of cs) {
      assert.equal({ ...c.values }, { ...first.values });
      assert.equal(sortE(c.entries()), sortE(first.entries()));
    }
    // And the winner per key is the highest (version, by) ever set for it.
    const all = new Map<string, ConfigEntry>();
    for (const c of cs) for (const e of c.entries()) {
      const cur = all.get(e.key);
      if (cur === undefined || e.version > cur.version || (e.version === cur.version && e.by > cur.by)) all.set(e.key, e);
    }
    for (const [k, e] of all) assert.is(first.get(k as SettingKey), e.value);
  }), { seed: 777, numRuns: 500 });
});

test('merge: a restarted node reusing its (version, node id) for another value -> the cluster still converges', () => {
  const before = new ClusterConfig('n1');
  const other = new ClusterConfig('n2');
  other.merge([before.set('heartbeat', 2000)]);
  // n1 restarts with no entries and sets the key again before any gossip reaches it.
  const after = new ClusterConfig('n1');
  after.set('heartbeat', 3000);
  for (let round = 0; round < 2; round++) {
    other.merge(after.entries());
    after.merge(other.entries());
  }
  assert.is(after.get('heartbeat'), other.get('heartbeat'), 'both nodes must agree on one value');
});

test('constructor: a node started with its own settings and a default node exchanging entries -> agree', () => {
  // node.ts documents start-up settings as "gossip converges them cluster-wide".
  const custom = new ClusterConfig('n1', { heartbeat: 2000 });
  const plain = new ClusterConfig('n2');
  for (let round = 0; round < 2; round++) {
    plain.merge(custom.entries());
    custom.merge(plain.entries());
  }
  assert.is(custom.get('heartbeat'), plain.get('heartbeat'));
});

test('merge: a stale node re-sending old entries -> does not undo newer values', () => {
  const a = new ClusterConfig('n1');
  const b = new ClusterConfig('n2');
  a.set('heartbeat', 2000);
  const old = a.entries();
  b.merge(old);
  b.set('heartbeat', 3000);
  a.merge(b.entries());
  a.merge(old);
  b.merge(old);
  assert.is(a.get('heartbeat'), 3000);
  assert.is(b.get('heartbeat'), 3000);
});

test.run();
