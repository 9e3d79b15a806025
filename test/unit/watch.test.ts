import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PesNode } from '../../lib/node.js';
import { createTestCluster } from '../../lib/testing.js';
import type { OwnershipChange, Watch } from '../../lib/watch.js';

const HB = 1000;
const line = (c: OwnershipChange): string => `${c.name}:${c.kind}:${c.owner.node}/${c.owner.id}#${c.token}${c.snapshot ? ':snap' : ''}`;

function record(w: Watch): string[] {
  const seen: string[] = [];
  w.on('change', (c) => seen.push(line(c)));
  return seen;
}

test('watch: register, handoff, unregister, exit -> every node sees the same changes once, in token order', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const [a, b, c] = cluster.nodes as [PesNode, PesNode, PesNode];
    const views = cluster.nodes.map((n) => record(n.watch('jobs/*')));
    const oa = a.spawn();
    await cluster.run(a.register('jobs/x', oa));
    await cluster.run(a.register('other', a.spawn()));
    const ob = b.spawn();
    await cluster.run(c.update('jobs/x', ob));
    await cluster.advance(2 * HB);
    await cluster.run(b.unregister('jobs/x'));
    const oc = c.spawn();
    await cluster.run(c.register('jobs/y', oc));
    oc.exit();
    await cluster.advance(2 * HB);
    assert.is(views[0]!.length, 5, views[0]!.join(' '));
    assert.equal(views[1], views[0]);
    assert.equal(views[2], views[0]);
    const kinds = views[0]!.map((v) => v.split(':')[1]);
    assert.equal(kinds, ['registered', 'handoff', 'unregistered', 'registered', 'unregistered']);
    const tokens = views[0]!.filter((v) => v.startsWith('jobs/x')).map((v) => Number(v.split('#')[1]));
    assert.ok(tokens[1]! > tokens[0]!, 'the handoff grant has a higher token');
  } finally {
    await cluster.stop();
  }
});

test('watch: starts with a snapshot of current owners; exact names match only themselves', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const [a, b] = cluster.nodes as [PesNode, PesNode, PesNode];
    await cluster.run(a.register('jobs/a', a.spawn()));
    await cluster.run(a.register('jobs/ab', a.spawn()));
    await cluster.advance(HB);
    const all = record(b.watch('jobs/*'));
    const one = record(b.watch('jobs/a'));
    await cluster.advance(0);
    assert.equal(all.map((x) => x.split(':').slice(0, 2).join(':')), ['jobs/a:registered', 'jobs/ab:registered']);
    assert.ok(all.every((x) => x.endsWith(':snap')));
    assert.equal(one.map((x) => x.split(':')[0]), ['jobs/a']);
  } finally {
    await cluster.stop();
  }
});

test('watch: owner node crashes -> owner-down, then expired after 3 heartbeats, then the new grant', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const [a, b] = cluster.nodes as [PesNode, PesNode, PesNode];
    await cluster.run(a.register('job', a.spawn()));
    const seen = record(b.watch('job'));
    cluster.net.isolate(a.id);
    await cluster.advance(4 * HB);
    await cluster.run(b.register('job', b.spawn()));
    await cluster.advance(HB);
    const kinds = seen.map((v) => v.split(':')[1]);
    assert.equal(kinds, ['registered', 'owner-down', 'expired', 'registered']);
  } finally {
    await cluster.stop();
  }
});

test('watch: the owner node sees its own lease lost -> lost, once', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const [a] = cluster.nodes as [PesNode, PesNode, PesNode];
    await cluster.run(a.register('job', a.spawn()));
    const seen = record(a.watch('*'));
    cluster.net.isolate(a.id);
    await cluster.advance(5 * HB);
    assert.equal(seen.map((v) => v.split(':')[1]), ['registered', 'lost']);
  } finally {
    await cluster.stop();
  }
});

test('watch: async iteration and close -> yields changes, then ends', async () => {
  const cluster = await createTestCluster({ nodes: 1, settings: { heartbeat: HB } });
  try {
    const [a] = cluster.nodes as [PesNode];
    const w = a.watch('*');
    await cluster.run(a.register('n', a.spawn()));
    const it = w[Symbol.asyncIterator]();
    const first = await it.next();
    assert.is(first.value?.kind, 'registered');
    w.close();
    assert.is((await it.next()).done, true);
  } finally {
    await cluster.stop();
  }
});

test('watch: every node declares one singleton under network delay -> every node sees the same decided changes', async () => {
  for (const seed of [7, 10, 11, 12]) {
    const cluster = await createTestCluster({ nodes: 3, seed, settings: { heartbeat: HB } });
    try {
      cluster.net.set({ minDelay: 1, maxDelay: 15 });
      const views = cluster.nodes.map((n) => record(n.watch('jobs/*')));
      for (const n of cluster.nodes) n.singleton('jobs/s', { start() {} });
      await cluster.advance(3 * HB);
      const owner = cluster.nodes.find((n) => n.registration('jobs/s') !== undefined)!;
      const target = cluster.nodes.find((n) => n !== owner)!;
      await cluster.run(owner.transfer('jobs/s', target.id));
      await cluster.advance(3 * HB);
      assert.ok(views[0]!.length >= 2, `seed ${seed}: ${views[0]!.join(' ')}`);
      assert.equal(views[1], views[0], `seed ${seed}`);
      assert.equal(views[2], views[0], `seed ${seed}`);
      assert.equal(views[0]!.map((v) => v.split(':')[1]).slice(-1), ['handoff'], `seed ${seed}`);
    } finally {
      await cluster.stop();
    }
  }
});

test.run();
