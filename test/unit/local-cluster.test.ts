/**
 * startLocalCluster (`pes/testing`): the real-time in-process cluster the examples run on. Driven here
 * on a ManualClock (its `clock` option), so that every step is deterministic.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/clock.js';
import { InvalidArgumentError, StoppedError, TimeoutError } from '../../lib/errors.js';
import type { PesNode } from '../../lib/node.js';
import { startLocalCluster } from '../../lib/testing.js';

/** Moves `clock` from timer to timer until `p` settles (at most `maxMs` of clock time); returns its result. */
async function drive<T>(clock: ManualClock, p: Promise<T>, maxMs = 60_000): Promise<T> {
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  const limit = clock.now() + maxMs;
  await clock.flush();
  while (!settled) {
    const due = clock.nextDue();
    if (due === undefined || due > limit) throw new Error(`did not settle within ${maxMs} ms of clock time`);
    await clock.advance(due - clock.now());
  }
  return p;
}

/** Drives `p` and asserts it rejected with `cls`; returns the error. */
async function rejects<C extends abstract new (...args: never[]) => Error>(clock: ManualClock, p: Promise<unknown>, cls: C): Promise<InstanceType<C>> {
  let error: unknown;
  try {
    await drive(clock, p);
  } catch (e) {
    error = e;
  }
  assert.instance(error, cls, 'expected a rejection with that class');
  return error as InstanceType<C>;
}

test('startLocalCluster: 3 nodes -> ids node-a..node-c, every node a voting member with the settings, one shared network', async () => {
  const clock = new ManualClock();
  const c = await drive(clock, startLocalCluster(3, { clock, settings: { heartbeat: 1000 } }));
  try {
    assert.equal(c.ids, ['node-a', 'node-b', 'node-c']);
    assert.equal(c.nodes.map((n) => n.id), c.ids);
    assert.is(c.clock, clock);
    for (const node of c.nodes) {
      assert.ok(node.voting, `${node.id} votes`);
      assert.equal([...node.nodes()].sort(), c.ids);
      assert.equal([...node.liveNodes()].sort(), c.ids);
      assert.is(node.config.get('heartbeat'), 1000);
    }
    const [a, , z] = c.nodes as [PesNode, PesNode, PesNode];
    const reg = await drive(clock, a.register('job', a.spawn()));
    assert.equal(await drive(clock, z.whereis('job')), reg.owner);
    c.net.isolate(a.id);
    await drive(clock, new Promise<void>((resolve) => clock.setTimeout(resolve, 5000)));
    assert.ok(reg.signal.aborted, 'cut off by the shared network, the owner stands down');
  } finally {
    c.net.heal();
    await drive(clock, c.stop());
  }
});

test('startLocalCluster: stop() -> every node stopped, no timer left behind; a second stop() resolves too', async () => {
  const clock = new ManualClock();
  const c = await drive(clock, startLocalCluster(2, { clock }));
  const node = c.nodes[0] as PesNode;
  await drive(clock, node.register('job', node.spawn()));
  await drive(clock, c.stop());
  for (const n of c.nodes) assert.throws(() => n.spawn(), (e: unknown) => e instanceof StoppedError);
  assert.is(clock.pendingTimers(), 0);
  await drive(clock, c.stop());
});

test('startLocalCluster: ids given -> used in order', async () => {
  const clock = new ManualClock();
  const c = await drive(clock, startLocalCluster(2, { clock, ids: ['west', 'east'] }));
  try {
    assert.equal(c.ids, ['west', 'east']);
    assert.equal(c.nodes.map((n) => n.id), ['west', 'east']);
  } finally {
    await drive(clock, c.stop());
  }
});

test('startLocalCluster: n below 1 or not an integer, ids not n distinct ids -> InvalidArgumentError naming the argument', async () => {
  const clock = new ManualClock();
  for (const n of [0, -1, 1.5]) assert.is((await rejects(clock, startLocalCluster(n, { clock }), InvalidArgumentError)).argument, 'n');
  for (const ids of [['x', 'y', 'z'], ['x'], ['x', 'x']]) {
    assert.is((await rejects(clock, startLocalCluster(2, { clock, ids }), InvalidArgumentError)).argument, 'ids');
  }
  assert.is(clock.pendingTimers(), 0);
});

test('startLocalCluster: nodes not all voting within readyTimeout -> TimeoutError, every node stopped first', async () => {
  const clock = new ManualClock();
  // Frames travel on the clock: with no time allowed, no node has heard from the others yet.
  const e = await rejects(clock, startLocalCluster(3, { clock, readyTimeout: 0 }), TimeoutError);
  assert.is(e.operation, 'startLocalCluster');
  assert.is(e.timeoutMs, 0);
  assert.is(clock.pendingTimers(), 0);
});

test.run();
