/**
 * The node-cron RunCoordinator on a test cluster. node-cron itself runs on real timers, so the tests play
 * its part: at each fire time every instance calls `shouldRun("<task>:<ISO fire time>", ttlMs)`, as
 * node-cron 4's Runner does, and the manual clock drives pes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../lib/errors.js';
import type { PesNode } from '../../lib/node.js';
import { createTestCluster, type TestCluster } from '../../lib/testing.js';
import { parseRunKey, pesRunCoordinator, type PesRunCoordinator, type PesRunCoordinatorOptions } from '../../plugins/node-cron.js';

const HB = 1000;
const TTL = 30_000;

async function withCluster(fn: (c: TestCluster) => Promise<void>): Promise<void> {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    await fn(cluster);
  } finally {
    await cluster.stop();
  }
}

/** Moves the cluster clock to the next whole second of wall time (+ `lateMs`); returns that second. */
async function toNextSecond(cluster: TestCluster, lateMs = 0): Promise<number> {
  const wall = cluster.clock.wallNow();
  const at = Math.floor(wall / 1000) * 1000 + 1000;
  await cluster.advance(at - wall + lateMs);
  return at;
}

/** One fire as node-cron runs it: every live instance asks at once; the answers, by node id. */
async function fire(cluster: TestCluster, coords: Map<string, PesRunCoordinator>, task: string, at: number, live: (id: string) => boolean = () => true): Promise<Map<string, boolean>> {
  const key = `${task}:${new Date(at).toISOString()}`;
  const ids = [...coords.keys()].filter(live);
  const answers = await cluster.run(Promise.all(ids.map((id) => coords.get(id)!.shouldRun(key, TTL))));
  for (const id of ids) if (answers[ids.indexOf(id)]) coords.get(id)!.onComplete(key);
  return new Map(ids.map((id, i) => [id, answers[i]!]));
}

function winners(answers: Map<string, boolean>): string[] {
  return [...answers].filter(([, yes]) => yes).map(([id]) => id);
}

function coordinators(cluster: TestCluster, opts: PesRunCoordinatorOptions = {}): Map<string, PesRunCoordinator> {
  return new Map(cluster.nodes.map((n) => [n.id, pesRunCoordinator(n, opts)]));
}

test('node-cron key: "<name>:<ISO time>" -> task and fire time, also when the name has colons', () => {
  assert.equal(parseRunKey('nightly-backup:2026-01-01T03:00:00.000Z'), { task: 'nightly-backup', fireAt: Date.UTC(2026, 0, 1, 3) });
  assert.equal(parseRunKey('a:b:c:2026-01-01T03:00:00.000Z'), { task: 'a:b:c', fireAt: Date.UTC(2026, 0, 1, 3) });
  assert.equal(parseRunKey('no-time-here'), { task: 'no-time-here', fireAt: undefined });
});

test('node-cron fire mode: 3 instances, 40 fires, the winner of the last one crashes -> exactly one true per fire, also right after the crash', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster);
    const wins: string[] = [];
    for (let i = 0; i < 20; i++) {
      const at = await toNextSecond(cluster, 5 * (i % 3));
      const w = winners(await fire(cluster, coords, 'job', at));
      assert.is(w.length, 1, `fire ${i}: ${w.length} winners`);
      wins.push(w[0]!);
    }
    assert.ok(new Set(wins).size >= 2, 'fires are won by different instances (no fixed owner)');
    const dead = wins.at(-1)!;
    await cluster.crash(cluster.ids.indexOf(dead));
    for (let i = 0; i < 20; i++) {
      const at = await toNextSecond(cluster);
      const answers = await fire(cluster, coords, 'job', at, (id) => id !== dead);
      assert.equal(winners(answers).length, 1, `fire ${i} after the crash`);
    }
  });
});

test('node-cron fire mode: an instance that asks later (after the run completed, within the lease) -> false; past the deadline -> false', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster);
    const [a, b, c] = [...coords.values()];
    const at = await toNextSecond(cluster);
    const key = `job:${new Date(at).toISOString()}`;
    assert.is(await cluster.run(a!.shouldRun(key, TTL)), true);
    a!.onComplete(key);
    await cluster.advance(800);
    assert.is(await cluster.run(b!.shouldRun(key, TTL)), false, 'the name is still held after completion');
    await cluster.advance(10_000);
    assert.is(await cluster.run(c!.shouldRun(key, TTL)), false, 'too late to ask');
    assert.is(c!.stats().late, 1);
  });
});

test('node-cron fire mode: the winner crashes at once -> a laggard within its deadline still loses (the name outlives the deadline)', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster);
    const at = await toNextSecond(cluster);
    const key = `job:${new Date(at).toISOString()}`;
    const first = cluster.nodes[0]!;
    assert.is(await cluster.run(coords.get(first.id)!.shouldRun(key, TTL)), true);
    await cluster.crash(0);
    // Asking at every 100 ms until well past the deadline: never a second true.
    for (let t = 0; t < 5000; t += 100) {
      const yes = await cluster.run(coords.get(cluster.ids[1]!)!.shouldRun(key, TTL));
      assert.is(yes, false, `a second winner ${t} ms after the crash`);
      await cluster.advance(100);
    }
  });
});

test('node-cron fire mode: a won fire name is released after ttlMs; coordinator stop releases the rest', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster);
    const at = await toNextSecond(cluster);
    const answers = await fire(cluster, coords, 'job', at);
    const winner = cluster.nodes.find((n) => answers.get(n.id) === true) as PesNode;
    const name = `node-cron/job:${new Date(at).toISOString()}`;
    assert.ok(winner.registration(name)?.valid);
    await cluster.advance(TTL + HB);
    assert.is(winner.registration(name), undefined, 'released after ttlMs');

    const at2 = await toNextSecond(cluster);
    const answers2 = await fire(cluster, coords, 'job', at2);
    const winner2 = cluster.nodes.find((n) => answers2.get(n.id) === true) as PesNode;
    const coord = coords.get(winner2.id)!;
    await cluster.run(coord.stop());
    assert.is(winner2.stat().heldNames, 0);
    assert.is(await cluster.run(coord.shouldRun(`job:${new Date(at2 + 1000).toISOString()}`, TTL)), false, 'a stopped coordinator answers false');
  });
});

test('node-cron fire mode: the winner\'s node is stopped right after winning -> its fire name is kept until safe, a laggard still loses', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster);
    const at = await toNextSecond(cluster);
    const key = `job:${new Date(at).toISOString()}`;
    const winner = cluster.nodes[0]!;
    assert.is(await cluster.run(coords.get(winner.id)!.shouldRun(key, TTL)), true);
    let stopped = false;
    const stopping = winner.stop().then(() => { stopped = true; });
    await cluster.advance(700);
    assert.is(stopped, false, 'node.stop waits for the coordinator');
    assert.is(await cluster.run(coords.get(cluster.ids[1]!)!.shouldRun(key, TTL)), false, 'no second winner');
    await cluster.run(stopping);
    assert.is(winner.stat().heldNames, 0);
  });
});

test('node-cron fire mode: distributedLease not above maxClockSkewMs -> a throw (node-cron skips the fire as coordinator-error)', async () => {
  await withCluster(async (cluster) => {
    const coord = pesRunCoordinator(cluster.nodes[0]!, { maxClockSkewMs: 2000 });
    const at = await toNextSecond(cluster);
    let err: unknown;
    await cluster.run(coord.shouldRun(`job:${new Date(at).toISOString()}`, 1000).catch((e: unknown) => { err = e; }));
    assert.instance(err, InvalidArgumentError);
    assert.is(coord.stats().errors, 1);
  });
});

test('node-cron owner mode: 3 instances, N fires, the owner crashes -> one true per fire from the owner, a gap, then the new owner alone', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster, { mode: 'owner', tasks: ['job'] });
    await cluster.advance(3 * HB);
    const history: { at: number; winners: string[] }[] = [];
    for (let i = 0; i < 15; i++) {
      const at = await toNextSecond(cluster, 3);
      history.push({ at, winners: winners(await fire(cluster, coords, 'job', at)) });
    }
    assert.ok(history.every((h) => h.winners.length === 1), 'exactly one true per fire');
    const owner = history[0]!.winners[0]!;
    assert.ok(history.every((h) => h.winners[0] === owner), 'always the owner');
    assert.ok(coords.get(owner)!.owns('job'));

    await cluster.crash(cluster.ids.indexOf(owner));
    const after: { at: number; winners: string[] }[] = [];
    for (let i = 0; i < 15; i++) {
      const at = await toNextSecond(cluster, 3);
      after.push({ at, winners: winners(await fire(cluster, coords, 'job', at, (id) => id !== owner)) });
    }
    assert.ok(after.every((h) => h.winners.length <= 1), 'never two');
    assert.ok(after[0]!.winners.length === 0, 'a failover gap');
    const firstWin = after.findIndex((h) => h.winners.length === 1);
    assert.ok(firstWin > 0, 'a standby took over');
    const next = after[firstWin]!.winners[0]!;
    assert.ok(after.slice(firstWin).every((h) => h.winners.length === 1 && h.winners[0] === next), 'then exactly one per fire, the new owner');
    assert.ok(coords.get(next)!.owns('job'));
  });
});

test('node-cron owner mode: a task not declared up front -> its first fire elects an owner and runs nowhere; later fires run once', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster, { mode: 'owner' });
    const first = winners(await fire(cluster, coords, 'lazy', await toNextSecond(cluster)));
    assert.equal(first, []);
    await cluster.advance(2_000);
    for (let i = 0; i < 5; i++) {
      const w = winners(await fire(cluster, coords, 'lazy', await toNextSecond(cluster)));
      assert.is(w.length, 1);
    }
  });
});

test('node-cron owner mode: drain -> the next owner answers the very next fire and never one already answered', async () => {
  await withCluster(async (cluster) => {
    const coords = coordinators(cluster, { mode: 'owner', tasks: ['job'], maxClockSkewMs: 5000 });
    await cluster.advance(7_000);
    let at = await toNextSecond(cluster);
    const w = winners(await fire(cluster, coords, 'job', at));
    assert.is(w.length, 1);
    const owner = cluster.nodes.find((n) => n.id === w[0]) as PesNode;
    const report = await cluster.run(owner.drain({ timeout: 10_000 }));
    assert.is(report.moved.length, 1);
    // The same fire asked again (a late instance) is refused by everyone, the next one is won at once.
    assert.equal(winners(await fire(cluster, coords, 'job', at)), []);
    at = await toNextSecond(cluster);
    const next = winners(await fire(cluster, coords, 'job', at));
    assert.is(next.length, 1);
    assert.ok(next[0] !== owner.id);
  });
});

test('node-cron coordinator: bad mode or skew -> InvalidArgumentError', async () => {
  await withCluster(async (cluster) => {
    const node = cluster.nodes[0]!;
    assert.throws(() => pesRunCoordinator(node, { mode: 'both' as 'fire' }), (e: unknown) => e instanceof InvalidArgumentError);
    assert.throws(() => pesRunCoordinator(node, { maxClockSkewMs: Number.NaN }), (e: unknown) => e instanceof InvalidArgumentError);
  });
});

test.run();
