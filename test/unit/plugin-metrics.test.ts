import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import type { PesNode } from '../../lib/node.js';
import { createTestCluster } from '../../lib/testing.js';
import { metricsPlugin } from '../../plugins/metrics.js';

const HB = 1000;

/** Parses Prometheus text into `name{labels}` -> value, labels sorted by name. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsable line: ${line}`);
    const labels = (m[2] ?? '').split(/,(?=[a-zA-Z_]+=")/).filter((x) => x !== '').sort().join(',');
    out.set(labels === '' ? m[1]! : `${m[1]!}{${labels}}`, Number(m[3]));
  }
  return out;
}

/** A series key: `name{a="x",b="y"}` with labels sorted. */
function key(name: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort();
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

async function scrape(register: Registry): Promise<Map<string, number>> {
  return parse(await register.metrics());
}

function value(m: Map<string, number>, name: string, labels: Record<string, string>): number {
  const v = m.get(key(name, labels));
  assert.ok(v !== undefined, `missing series ${key(name, labels)}`);
  return v;
}

test('metrics: after registrations -> stat gauges and counters are exported and move', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    cluster.net.set({ minDelay: 5, maxDelay: 5 });
    const a = cluster.nodes[0] as PesNode;
    const register = new Registry();
    await cluster.run(a.use(metricsPlugin({ register })));
    const n = { node: a.id };
    const before = await scrape(register);
    assert.is(value(before, 'pes_members', n), 3);
    assert.is(value(before, 'pes_live_members', n), 3);
    assert.is(value(before, 'pes_voting', n), 1);
    assert.is(value(before, 'pes_held_names', n), 0);
    for (const name of ['x', 'y', 'z']) await cluster.run(a.register(name, a.spawn()));
    await cluster.run(a.lookup('x'));
    await cluster.advance(3 * HB);
    const after = await scrape(register);
    assert.is(value(after, 'pes_held_names', n), 3);
    assert.ok(value(after, 'pes_active_guards', n) >= 3);
    assert.is(value(after, 'pes_registers_total', n) - value(before, 'pes_registers_total', n), 3);
    assert.ok(value(after, 'pes_lookups_total', n) > value(before, 'pes_lookups_total', n));
    assert.ok(value(after, 'pes_register_latency_seconds', { ...n, quantile: '0.5' }) > 0, 'register latency p50 > 0 with a 5 ms network');
    assert.ok(value(after, 'pes_register_latency_seconds', { ...n, quantile: '0.99' }) >= value(after, 'pes_register_latency_seconds', { ...n, quantile: '0.5' }));
    assert.ok(value(after, 'pes_acceptor_entries', n) >= 3);
    for (const c of ['acceptor_requests_total', 'acceptor_acks_total', 'acceptor_promises_total', 'renewer_rounds_total']) {
      assert.ok(value(after, `pes_${c}`, n) > value(before, `pes_${c}`, n), `${c} rose`);
    }
    assert.ok(value(after, 'pes_acceptor_requests_per_second', n) > 0);
    assert.ok(value(after, 'pes_acceptor_acks_per_second', n) > 0);
    for (const direction of ['sent', 'received']) {
      for (const c of ['transport_frames_total', 'transport_messages_total', 'transport_bytes_total']) {
        assert.ok(value(after, `pes_${c}`, { ...n, direction }) > value(before, `pes_${c}`, { ...n, direction }), `${c} ${direction} rose`);
      }
    }
    assert.is(value(after, 'pes_transport_bad_frames_total', n), 0);
    for (const c of ['nacks_total', 'repairs_total', 'nacks_per_second', 'repairs_per_second']) value(after, `pes_acceptor_${c}`, n);
    value(after, 'pes_transport_dropped_total', n);
    // A bad frame is counted.
    a.injectFrame(new Uint8Array([1, 2, 3]));
    await cluster.advance(0);
    assert.is(value(await scrape(register), 'pes_transport_bad_frames_total', n), 1);
    // The text says which are counters.
    assert.ok((await register.metrics()).includes('# TYPE pes_acceptor_acks_total counter'));
  } finally {
    await cluster.stop();
  }
});

test('metrics: a name handed from one node to another -> pes_owned and pes_owner_token follow on both nodes', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const [a, b] = cluster.nodes as [PesNode, PesNode, PesNode];
    const register = new Registry();
    await cluster.run(a.use(metricsPlugin({ register })));
    await cluster.run(b.use(metricsPlugin({ register })));
    const reg = await cluster.run(a.register('jobs/x', a.spawn()));
    await cluster.advance(HB);
    let m = await scrape(register);
    assert.is(value(m, 'pes_owned', { node: a.id, name: 'jobs/x' }), 1);
    assert.is(value(m, 'pes_owned', { node: b.id, name: 'jobs/x' }), 0);
    assert.is(value(m, 'pes_owner_token', { node: a.id, name: 'jobs/x' }), reg.token);
    assert.is(value(m, 'pes_owner_token', { node: b.id, name: 'jobs/x' }), reg.token);
    assert.is(value(m, 'pes_held_names', { node: a.id }), 1);
    assert.is(value(m, 'pes_held_names', { node: b.id }), 0);

    await cluster.run(a.update('jobs/x', b.spawn()));
    await cluster.advance(HB);
    m = await scrape(register);
    assert.is(value(m, 'pes_owned', { node: a.id, name: 'jobs/x' }), 0);
    assert.is(value(m, 'pes_owned', { node: b.id, name: 'jobs/x' }), 1);
    const token = value(m, 'pes_owner_token', { node: a.id, name: 'jobs/x' });
    assert.ok(token > reg.token, 'the token rose with the handoff');
    assert.is(value(m, 'pes_owner_token', { node: b.id, name: 'jobs/x' }), token);

    await cluster.run(b.unregister('jobs/x'));
    await cluster.advance(HB);
    m = await scrape(register);
    assert.not.ok(m.has(key('pes_owned', { node: a.id, name: 'jobs/x' })), 'an unregistered name leaves the gauges');
    assert.not.ok(m.has(key('pes_owner_token', { node: b.id, name: 'jobs/x' })));
  } finally {
    await cluster.stop();
  }
});

test('metrics: watch option narrows ownership gauges; names registered before setup come from the snapshot', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const a = cluster.nodes[0] as PesNode;
    await cluster.run(a.register('jobs/early', a.spawn()));
    await cluster.run(a.register('other', a.spawn()));
    await cluster.advance(HB);
    const register = new Registry();
    await cluster.run(a.use(metricsPlugin({ register, watch: 'jobs/*', prefix: 'app_pes_' })));
    await cluster.advance(0);
    const m = await scrape(register);
    assert.is(value(m, 'app_pes_owned', { node: a.id, name: 'jobs/early' }), 1);
    assert.not.ok(m.has(key('app_pes_owned', { node: a.id, name: 'other' })));
    assert.not.ok([...m.keys()].some((k) => k.startsWith('pes_')));
  } finally {
    await cluster.stop();
  }
});

test('metrics: stop -> the node\'s series leave; the last stop unregisters every metric; node.stop stops it too', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const [a, b] = cluster.nodes as [PesNode, PesNode, PesNode];
    const register = new Registry();
    const pa = metricsPlugin({ register });
    const pb = metricsPlugin({ register });
    await cluster.run(a.use(pa));
    await cluster.run(b.use(pb));
    await cluster.run(a.register('jobs/x', a.spawn()));
    await cluster.advance(HB);
    assert.ok(register.getSingleMetric('pes_held_names') !== undefined);
    pa.stop();
    pa.stop(); // idempotent
    let m = await scrape(register);
    assert.not.ok([...m.keys()].some((k) => k.includes(`node="${a.id}"`)), 'no series of the stopped node');
    assert.is(value(m, 'pes_members', { node: b.id }), 3);
    assert.is(value(m, 'pes_owned', { node: b.id, name: 'jobs/x' }), 0);
    await cluster.run(b.stop());
    m = await scrape(register);
    assert.is(m.size, 0);
    assert.is(register.getSingleMetric('pes_held_names'), undefined);
    assert.is(register.getMetricsAsArray().length, 0);
    // The metrics can be set up again afterwards.
    await cluster.run(a.use(metricsPlugin({ register })));
    assert.is(value(await scrape(register), 'pes_voting', { node: a.id }), 1);
  } finally {
    await cluster.stop();
  }
});

test('metrics: a metric name already taken in the registry -> InvalidArgumentError(prefix), nothing left behind', async () => {
  const cluster = await createTestCluster({ nodes: 1 });
  try {
    const a = cluster.nodes[0] as PesNode;
    const register = new Registry();
    const { Gauge } = await import('prom-client');
    new Gauge({ name: 'pes_voting', help: 'someone else', registers: [register] });
    try {
      await a.use(metricsPlugin({ register }));
      assert.unreachable('setup accepted a clash');
    } catch (e) {
      assert.is((e as Error).name, 'InvalidArgumentError');
      assert.is((e as { argument?: string }).argument, 'prefix');
    }
    assert.is(register.getMetricsAsArray().length, 1);
    try {
      metricsPlugin({ prefix: 'bad prefix' });
      assert.unreachable('bad prefix accepted');
    } catch (e) {
      assert.is((e as { argument?: string }).argument, 'prefix');
    }
  } finally {
    await cluster.stop();
  }
});

test.run();
