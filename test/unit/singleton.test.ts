import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PesNode } from '../../lib/node.js';
import { decodeFrame } from '../../lib/protocol/codec.js';
import type { SingletonSpec } from '../../lib/singleton.js';
import { createTestCluster, type TestCluster } from '../../lib/testing.js';

const HB = 1000;

interface Run { node: string; token: number; start: number; end?: number; reason?: string; state?: unknown }

/** Declares `name` on every node; returns the shared history of runs (cluster time). */
function declareEverywhere(cluster: TestCluster, name: string, extra: Partial<SingletonSpec<number>> = {}): Run[] {
  const runs: Run[] = [];
  for (const node of cluster.nodes) {
    let mine: Run | undefined;
    let counter = 0;
    node.singleton<number>(name, {
      start: (ctx) => {
        mine = { node: node.id, token: ctx.token, start: cluster.clock.now(), state: ctx.state };
        counter = ctx.state ?? 0;
        runs.push(mine);
      },
      stop: (reason) => {
        if (mine !== undefined) {
          mine.end = cluster.clock.now();
          mine.reason = reason;
        }
        mine = undefined;
      },
      handoff: () => counter + 1,
      ...extra,
    });
  }
  return runs;
}

/** No two runs overlap (an end equal to the next start is fine); tokens rise. */
function assertSequential(runs: Run[]): void {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    assert.ok(prev.end !== undefined && prev.end <= cur.start, `run on ${cur.node} at ${cur.start} overlaps ${prev.node} (${prev.start}..${prev.end})`);
    assert.ok(cur.token > prev.token, 'tokens rise');
  }
}

test('singleton: declared on 3 nodes -> exactly one runs', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const runs = declareEverywhere(cluster, 'cron');
    await cluster.advance(5 * HB);
    assert.is(runs.length, 1);
    assert.is(cluster.nodes.filter((n) => n.stat().heldNames > 0).length, 1);
  } finally {
    await cluster.stop();
  }
});

test('singleton: the owner node is cut off -> it stops (lost) before a standby starts; no overlap', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const lost: string[] = [];
    const runs = declareEverywhere(cluster, 'cron', { onLost: (c) => lost.push(c.name) });
    await cluster.advance(2 * HB);
    const first = runs[0]!;
    cluster.net.isolate(first.node);
    await cluster.advance(6 * HB);
    assert.is(runs.length, 2);
    assert.is(first.reason, 'lost');
    assert.equal(lost, ['cron']);
    assertSequential(runs);
    assert.ok(runs[1]!.start - first.end! < 2 * HB, 'the standby takes over within the lease gap');
  } finally {
    await cluster.stop();
  }
});

test('singleton: the owner node crashes -> a standby runs it within 3 heartbeats and a bit', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const downs: string[] = [];
    const runs = declareEverywhere(cluster, 'cron', { onOwnerDown: (c) => downs.push(c.owner.node) });
    await cluster.advance(2 * HB);
    const first = runs[0]!;
    const crashedAt = cluster.clock.now();
    await cluster.crash(cluster.ids.indexOf(first.node));
    await cluster.advance(6 * HB);
    assert.is(runs.length, 2);
    assert.ok(runs[1]!.start - crashedAt <= 3 * HB + HB, `failover took ${runs[1]!.start - crashedAt} ms`);
    assert.ok(downs.includes(first.node), 'standbys heard the owner go down');
  } finally {
    await cluster.stop();
  }
});

test('singleton: transfer -> old stopped (handoff) first, state handed over, gap reported, token rises', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const handoffs: string[] = [];
    const runs = declareEverywhere(cluster, 'cron', { onHandoff: (c) => handoffs.push(c.owner.node) });
    await cluster.advance(2 * HB);
    const first = runs[0]!;
    const target = cluster.ids.find((id) => id !== first.node)!;
    const via = cluster.nodes.find((n) => n.id !== first.node && n.id !== target)!;
    const report = await cluster.run(via.transfer('cron', target));
    await cluster.advance(HB);
    assert.is(report.to, target);
    assert.ok(report.gapMs >= 0 && report.gapMs < HB, `gap ${report.gapMs}`);
    assert.is(runs.length, 2);
    assert.is(first.reason, 'handoff');
    assert.is(runs[1]!.node, target);
    assert.is(runs[1]!.state, 1, 'the state from handoff() reached the new owner');
    assertSequential(runs);
    assert.ok(handoffs.includes(target));
  } finally {
    await cluster.stop();
  }
});

test('singleton: drain -> every singleton this node runs moves away and it stops contending', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const a = declareEverywhere(cluster, 'a');
    const b = declareEverywhere(cluster, 'b');
    await cluster.advance(2 * HB);
    const owner = cluster.nodes.find((n) => n.id === a[0]!.node) as PesNode;
    const report = await cluster.run(owner.drain({ timeout: 10 * HB }));
    await cluster.advance(5 * HB);
    const mine = [a, b].filter((r) => r[0]!.node === owner.id).length;
    assert.is(report.moved.length, mine);
    assert.equal(report.failed, []);
    for (const runs of [a, b]) {
      assertSequential(runs);
      assert.ok(runs.at(-1)!.node !== owner.id && runs.at(-1)!.end === undefined, 'runs elsewhere now');
    }
  } finally {
    await cluster.stop();
  }
});

test('singleton: drain while a live peer does not answer -> the others are asked at once, each for a phase; the drain is not held', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const runs = declareEverywhere(cluster, 'job');
    await cluster.advance(2 * HB);
    const owner = cluster.nodes.find((n) => n.id === runs[0]!.node) as PesNode;
    const [mute, other] = cluster.nodes.filter((n) => n !== owner) as [PesNode, PesNode];
    // The mute peer is reachable but its node calls go unanswered (a stuck event loop, a process just killed).
    const deliver = cluster.net.deliver.bind(cluster.net);
    cluster.net.deliver = (from, to, bytes) => {
      const d = decodeFrame(bytes);
      if (to === mute.id && d.ok && d.frame.messages.some((m) => m.type === 'ncall')) return true;
      return deliver(from, to, bytes);
    };
    const began = cluster.clock.now();
    const report = await cluster.run(owner.drain({ timeout: 10 * HB }));
    assert.equal(report.moved.map((m) => m.to), [other.id]);
    assert.ok(cluster.clock.now() - began < HB, `drained in ${cluster.clock.now() - began} ms`);
  } finally {
    await cluster.stop();
  }
});

test('singleton: the name is released (unregister) -> a standby contends at once', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const runs = declareEverywhere(cluster, 'cron');
    await cluster.advance(2 * HB);
    const first = runs[0]!;
    const node = cluster.nodes.find((n) => n.id === first.node) as PesNode;
    await cluster.run(node.registration('cron')!.unregister());
    await cluster.advance(HB);
    assert.ok(runs.length >= 2);
    assertSequential(runs);
  } finally {
    await cluster.stop();
  }
});

test.run();
