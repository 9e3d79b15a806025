/**
 * The cron plugin on a test cluster: the manual clock drives both the protocol and the job scheduler,
 * so every fire time is exact and every run is reproducible.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../lib/errors.js';
import type { PesNode } from '../../lib/node.js';
import { createTestCluster, type TestCluster } from '../../lib/testing.js';
import { cron, cronPlugin, type CronContext, type CronJobHandle, type CronOptions } from '../../plugins/cron.js';

const HB = 1000;
const EVERY_SECOND = '* * * * * *';

interface Fire { at: number; node: string; token: number; catchUp: boolean; start: number; end?: number }

interface Job {
  fires: Fire[];
  handles: Map<string, CronJobHandle>;
  /** Most runs in progress at once, cluster-wide. */
  maxConcurrent: number;
}

/**
 * Declares job `name` on every node; every run is recorded in one shared history (cluster time).
 * `work(ctx)` gives how long a run takes, in ms of the cluster clock (0 by default).
 */
function declare(cluster: TestCluster, name: string, pattern: string, opts: CronOptions = {}, work: (ctx: CronContext) => number = () => 0): Job {
  const job: Job = { fires: [], handles: new Map(), maxConcurrent: 0 };
  let concurrent = 0;
  for (const node of cluster.nodes) {
    const handle = cron(node, name, pattern, async (ctx) => {
      const fire: Fire = { at: ctx.scheduledAt.getTime(), node: ctx.node, token: ctx.token, catchUp: ctx.catchUp, start: cluster.clock.now() };
      job.fires.push(fire);
      concurrent++;
      job.maxConcurrent = Math.max(job.maxConcurrent, concurrent);
      const ms = work(ctx);
      if (ms > 0) await new Promise<void>((resolve) => node.clock.setTimeout(resolve, ms));
      concurrent--;
      fire.end = cluster.clock.now();
    }, opts);
    job.handles.set(node.id, handle);
  }
  return job;
}

/** Every fire time ran at most once; in fire-time order the tokens never go down. */
function assertOncePerFire(fires: readonly Fire[]): void {
  const seen = new Map<number, string>();
  for (const f of fires) {
    const prev = seen.get(f.at);
    assert.ok(prev === undefined, `fire ${new Date(f.at).toISOString()} ran twice: on ${prev} and ${f.node}`);
    seen.set(f.at, f.node);
  }
  const byTime = [...fires].sort((a, b) => a.at - b.at);
  for (let i = 1; i < byTime.length; i++) {
    const p = byTime[i - 1]!;
    const c = byTime[i]!;
    assert.ok(c.token >= p.token, `token went down from ${p.token} (${p.node}) to ${c.token} (${c.node})`);
    if (c.node !== p.node) assert.ok(c.token > p.token, 'a new owner runs under a higher token');
  }
}

function nodeById(cluster: TestCluster, id: string): PesNode {
  const n = cluster.nodes.find((x) => x.id === id);
  if (n === undefined) throw new Error(`no node ${id}`);
  return n;
}

async function withCluster(fn: (c: TestCluster) => Promise<void>, settings: { heartbeat: number } = { heartbeat: HB }): Promise<void> {
  const cluster = await createTestCluster({ nodes: 3, settings });
  try {
    await fn(cluster);
  } finally {
    await cluster.stop();
  }
}

test('cron: every-second job on 3 nodes, owner crashes mid-way -> each fire at most once, tokens rise, a gap but no duplicate', async () => {
  await withCluster(async (cluster) => {
    const job = declare(cluster, 'tick', EVERY_SECOND);
    await cluster.advance(15_000);
    const owner = job.fires.at(-1)!.node;
    assert.ok(job.fires.every((f) => f.node === owner), 'one node ran every fire before the crash');
    const lastBefore = job.fires.at(-1)!.at;
    await cluster.crash(cluster.ids.indexOf(owner));
    await cluster.advance(30_000);

    assertOncePerFire(job.fires);
    assert.ok(job.fires.length >= 30, `only ${job.fires.length} fires`);
    const after = job.fires.filter((f) => f.node !== owner);
    assert.ok(after.length >= 20, 'a standby took over and kept firing');
    assert.ok(new Set(after.map((f) => f.node)).size === 1, 'one new owner');
    const firstAfter = after[0]!.at;
    assert.ok(firstAfter > lastBefore, 'the new owner never ran a fire at or before the old owner\'s last');
    assert.ok(firstAfter - lastBefore > 1000, `a failover gap exists (${firstAfter - lastBefore} ms)`);
    // Within one ownership, no fire is skipped.
    for (const run of [job.fires.filter((f) => f.node === owner), after]) {
      for (let i = 1; i < run.length; i++) assert.is(run[i]!.at - run[i - 1]!.at, 1000);
    }
  });
});

test('cron: owner cut off (still alive) -> it stops firing before the new owner starts; no fire runs twice, also after heal', async () => {
  await withCluster(async (cluster) => {
    const job = declare(cluster, 'tick', EVERY_SECOND);
    await cluster.advance(10_000);
    const owner = job.fires.at(-1)!.node;
    cluster.net.isolate(owner);
    await cluster.advance(15_000);
    cluster.net.heal();
    await cluster.advance(10_000);

    assertOncePerFire(job.fires);
    const old = job.fires.filter((f) => f.node === owner);
    const next = job.fires.filter((f) => f.node !== owner);
    assert.ok(next.length > 0, 'another node took over');
    assert.ok(old.at(-1)!.start < next[0]!.start, 'the cut-off owner\'s last run started before the new owner\'s first');
    assert.ok(old.at(-1)!.at < next[0]!.at);
    const handle = job.handles.get(owner)!;
    assert.is(handle.running, false, 'the old owner is a standby after heal');
    assert.ok(handle.stats().skippedLease <= 1);
  });
});

test('cron: catchUp last, a handoff waits for a slow run -> the new owner runs the most recent missed fire once', async () => {
  for (const catchUp of ['last', 'skip'] as const) {
    await withCluster(async (cluster) => {
      let slow = 0;
      const job = declare(cluster, 'tick', EVERY_SECOND, { catchUp }, () => {
        const ms = slow;
        slow = 0;
        return ms;
      });
      await cluster.advance(5_000);
      const owner = nodeById(cluster, job.fires.at(-1)!.node);
      slow = 3_500;
      await cluster.advance(1_000); // a slow run is now in flight on the owner
      const inFlight = job.fires.at(-1)!;
      assert.is(inFlight.end, undefined);
      const report = await cluster.run(owner.drain({ timeout: 20_000 }));
      assert.is(report.moved.length, 1);
      await cluster.advance(5_000);

      assertOncePerFire(job.fires);
      const next = job.fires.filter((f) => f.node !== owner.id);
      const oldLast = Math.max(...job.fires.filter((f) => f.node === owner.id).map((f) => f.at));
      assert.ok(next[0]!.start >= inFlight.end!, 'the new owner starts after the old run finished');
      const catchUps = next.filter((f) => f.catchUp);
      const handle = job.handles.get(next[0]!.node)!;
      if (catchUp === 'last') {
        assert.is(catchUps.length, 1, 'exactly one catch-up run');
        const cu = catchUps[0]!;
        assert.is(next[0], cu, 'the catch-up runs first');
        assert.ok(cu.at > oldLast);
        const wallAtRun = cu.start + (cluster.clock.wallNow() - cluster.clock.now());
        assert.ok(cu.at <= wallAtRun && wallAtRun < cu.at + 1000, 'the most recent fire before the new owner started');
        assert.is(next[1]!.at, cu.at + 1000, 'then the schedule goes on from the catch-up');
        assert.ok(handle.stats().missed >= 1, 'older missed fires are counted');
        assert.is(handle.stats().caughtUp, 1);
      } else {
        assert.is(catchUps.length, 0);
        assert.ok(handle.stats().missed >= 2, 'missed fires are counted');
        assert.ok(next[0]!.at - oldLast >= 3000, 'the missed fires were dropped');
      }
    });
  }
});

test('cron: catchUp last after an owner crash -> nothing provably missed, so no catch-up run and no duplicate', async () => {
  await withCluster(async (cluster) => {
    const job = declare(cluster, 'tick', EVERY_SECOND, { catchUp: 'last' });
    await cluster.advance(8_000);
    const owner = job.fires.at(-1)!.node;
    await cluster.crash(cluster.ids.indexOf(owner));
    await cluster.advance(15_000);
    assertOncePerFire(job.fires);
    assert.is(job.fires.filter((f) => f.catchUp).length, 0);
  });
});

test('cron: slow runs (3.5 s) on an every-second job -> overrunning fires skipped and counted, never concurrent', async () => {
  await withCluster(async (cluster) => {
    const skipped: string[] = [];
    const job = declare(cluster, 'slow', EVERY_SECOND, { onSkip: (_at, reason) => skipped.push(reason) }, () => 3_500);
    await cluster.advance(20_000);
    assert.is(job.maxConcurrent, 1, 'never two runs at once');
    const owner = job.handles.get(job.fires[0]!.node)!;
    const s = owner.stats();
    assert.ok(s.skippedOverrun >= 10, `skipped ${s.skippedOverrun}`);
    assert.ok(skipped.length === s.skippedOverrun && skipped.every((r) => r === 'overrun'));
    assert.ok(s.fired >= 4 && s.fired <= 6, `fired ${s.fired}`);
    for (let i = 1; i < job.fires.length; i++) assert.is(job.fires[i]!.at - job.fires[i - 1]!.at, 4000, 'the next fire after a run is the first one after it ends');
    assertOncePerFire(job.fires);
  });
});

test('cron: protect false -> overlapping runs are allowed on the owner', async () => {
  await withCluster(async (cluster) => {
    const job = declare(cluster, 'slow', EVERY_SECOND, { protect: false }, () => 2_500);
    await cluster.advance(10_000);
    assert.ok(job.maxConcurrent >= 2);
    assert.is(job.handles.get(job.fires[0]!.node)!.stats().skippedOverrun, 0);
    assertOncePerFire(job.fires);
  });
});

test('cron: timezone -> a daily 09:00 job in America/New_York and in UTC get different next dates', async () => {
  await withCluster(async (cluster) => {
    const node = cluster.nodes[0]!;
    const ny = cron(node, 'ny', '0 0 9 * * *', () => {}, { timezone: 'America/New_York' });
    const utc = cron(node, 'utc', '0 0 9 * * *', () => {}, { timezone: 'UTC' });
    // The manual clock's wall starts at 2026-01-01T00:00Z (EST is UTC-5 in January).
    assert.is(ny.nextRun()?.toISOString(), '2026-01-01T14:00:00.000Z');
    assert.is(utc.nextRun()?.toISOString(), '2026-01-01T09:00:00.000Z');
    await Promise.all([cluster.run(ny.stop()), cluster.run(utc.stop())]);
    assert.is(ny.nextRun(), null);
  });
});

test('cron: timezone -> an hourly job in Asia/Kolkata (UTC+5:30) fires at half past in UTC', async () => {
  // A longer heartbeat keeps an hour of cluster time cheap to simulate.
  await withCluster(async (cluster) => {
    const kolkata = declare(cluster, 'kolkata', '0 0 * * * *', { timezone: 'Asia/Kolkata' });
    const utc = declare(cluster, 'utc', '0 0 * * * *', { timezone: 'UTC' });
    await cluster.advance(3_700_000);
    assert.equal(kolkata.fires.map((f) => new Date(f.at).toISOString()), ['2026-01-01T00:30:00.000Z']);
    assert.equal(utc.fires.map((f) => new Date(f.at).toISOString()), ['2026-01-01T01:00:00.000Z']);
    const owner = [...kolkata.handles.values()].find((h) => h.running)!;
    assert.is(owner.nextRun()?.toISOString(), '2026-01-01T01:30:00.000Z');
  }, { heartbeat: 20_000 });
});

test('cron: stop() on the owner -> a standby takes over; stop() on every node -> no fire anywhere', async () => {
  await withCluster(async (cluster) => {
    const job = declare(cluster, 'tick', EVERY_SECOND);
    await cluster.advance(5_000);
    const owner = job.fires.at(-1)!.node;
    await cluster.run(job.handles.get(owner)!.stop());
    await cluster.advance(5_000);
    assert.ok(job.fires.at(-1)!.node !== owner, 'another node runs it');
    assertOncePerFire(job.fires);

    await Promise.all([...job.handles.values()].map((h) => cluster.run(h.stop())));
    const count = job.fires.length;
    await cluster.advance(10_000);
    assert.is(job.fires.length, count, 'no fire after stop on every node');
    for (const h of job.handles.values()) {
      assert.is(h.running, false);
      assert.is(h.nextRun(), null);
    }
    await cluster.run(job.handles.get(owner)!.stop()); // idempotent
  });
});

test('cron: drain -> the job moves with its last-fire state; the next owner neither repeats it nor waits out the skew', async () => {
  await withCluster(async (cluster) => {
    const job = declare(cluster, 'tick', EVERY_SECOND, { maxClockSkewMs: 5_000 });
    await cluster.advance(10_000);
    const owner = nodeById(cluster, job.fires.at(-1)!.node);
    const report = await cluster.run(owner.drain({ timeout: 10_000 }));
    assert.is(report.moved.length, 1);
    const lastOld = job.fires.at(-1)!;
    assert.is(lastOld.node, owner.id);
    await cluster.advance(5_000);
    assertOncePerFire(job.fires);
    const next = job.fires.filter((f) => f.node !== owner.id);
    assert.ok(next.length >= 4);
    assert.ok(next[0]!.at > lastOld.at, 'the last fire is not repeated');
    assert.ok(next[0]!.at - lastOld.at <= 2000, `the handoff state spares the skew wait (gap ${next[0]!.at - lastOld.at} ms)`);
    assert.ok(next.every((f) => f.token > lastOld.token));
    assert.is(job.handles.get(owner.id)!.running, false);
  });
});

test('cron: a job function throws -> the failure is counted and reported, the schedule goes on', async () => {
  await withCluster(async (cluster) => {
    const errors: unknown[] = [];
    let runs = 0;
    const handles = cluster.nodes.map((node) => cron(node, 'boom', EVERY_SECOND, () => {
      runs++;
      throw new Error('boom');
    }, { onError: (e) => errors.push(e) }));
    await cluster.advance(6_000);
    assert.ok(runs >= 4);
    assert.is(errors.length, runs);
    assert.is(handles.reduce((n, h) => n + h.stats().failed, 0), runs);
  });
});

test('cron: plugin form -> node.use declares the jobs, handles are exposed, node.stop stops them', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const fires: { at: number; node: string }[] = [];
    const plugins = cluster.nodes.map((node) => cronPlugin([
      { name: 'a', pattern: EVERY_SECOND, fn: (ctx) => { fires.push({ at: ctx.scheduledAt.getTime(), node: ctx.node }); } },
    ]));
    for (const [i, node] of cluster.nodes.entries()) await cluster.run(node.use(plugins[i]!));
    await cluster.advance(5_000);
    assert.ok(fires.length >= 3);
    assert.is(new Set(fires.map((f) => f.at)).size, fires.length);
    assert.is(plugins.filter((p) => p.jobs.get('a')?.running === true).length, 1);
    await assert.throws(() => plugins[0]!.setup(cluster.nodes[1]!), (e: unknown) => e instanceof InvalidArgumentError);
  } finally {
    await cluster.stop();
  }
});

test('cron: bad pattern, timezone or option -> InvalidArgumentError, nothing declared', async () => {
  await withCluster(async (cluster) => {
    const node = cluster.nodes[0]!;
    const bad: [string, CronOptions][] = [
      ['not a pattern', {}],
      [EVERY_SECOND, { timezone: 'Mars/Olympus_Mons' }],
      [EVERY_SECOND, { catchUp: 'all' as 'last' }],
      [EVERY_SECOND, { maxClockSkewMs: -1 }],
    ];
    for (const [pattern, opts] of bad) {
      try {
        cron(node, 'x', pattern, () => {}, opts);
        assert.unreachable(`accepted ${pattern} ${JSON.stringify(opts)}`);
      } catch (e) {
        assert.instance(e, InvalidArgumentError);
      }
    }
    cron(node, 'x', EVERY_SECOND, () => {}); // the name is still free
  });
});

test.run();
