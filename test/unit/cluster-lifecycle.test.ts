/**
 * Node lifecycle as the registry sees it: a graceful stop frees names at once (no expiry wait), ends
 * registrations with 'stopped', is idempotent, leaves no timers, and afterwards every async call rejects.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortedError, LeaseLostError, StoppedError } from '../../lib/index.js';
import { entryOf, expectReject } from './cluster-helpers.js';
import { createTestCluster } from '../../lib/testing.js';
import { nodeAt, withCluster } from './cluster-helpers.js';

const HB = 1000;
const opts = { nodes: 3, settings: { heartbeat: HB } };

test('lifecycle: a node stops gracefully -> its names are free on the others at once, registrations end \'stopped\'', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const owner = n1.spawn();
    const regs = [await c.run(n1.register('a', owner)), await c.run(n1.register('b', n1.spawn()))];
    const released: string[] = [];
    n1.events.on('released', (ev) => released.push(`${ev.name}:${ev.reason}`));
    const stoppedAt = c.clock.now();
    await c.run(n1.stop());
    assert.ok(c.clock.now() - stoppedAt <= 500, 'stop is bounded by one phase');
    for (const r of regs) {
      assert.is(r.ended, 'stopped');
      assert.instance(r.signal.reason, LeaseLostError);
    }
    assert.equal(released.sort(), ['a:stopped', 'b:stopped']);
    assert.is(owner.alive, false, 'owners exit with their node');
    assert.is(await c.run(n2.whereis('a')), undefined);
    assert.is(await c.run(n3.whereis('b')), undefined);
    assert.ok(c.clock.now() - stoppedAt < HB, 'free well before an expiry');
    assert.is(await c.run(n2.registerName('a', n2.spawn())), 'yes');
  }));

test('lifecycle: stop twice, even concurrently -> both resolve', () =>
  withCluster(opts, async (c) => {
    const n1 = nodeAt(c, 0);
    await c.run(n1.register('a', n1.spawn()));
    await c.run(Promise.all([n1.stop(), n1.stop()]));
    await c.run(n1.stop());
  }));

test('lifecycle: async calls on a stopped node -> a rejected promise with StoppedError, never a synchronous throw', () =>
  withCluster(opts, async (c) => {
    const n1 = nodeAt(c, 0);
    const owner = n1.spawn();
    await c.run(n1.stop());
    const calls: [string, () => Promise<unknown>][] = [
      ['register', () => n1.register('x', owner)],
      ['registerName', () => n1.registerName('x', owner)],
      ['whereis', () => n1.whereis('x')],
      ['lookup', () => n1.lookup('x')],
      ['unregister', () => n1.unregister('x')],
      ['update', () => n1.update('x', owner)],
      ['send', () => n1.send('x', 'm')],
      ['call', () => n1.call('x', 'm')],
    ];
    for (const [what, call] of calls) {
      let p: Promise<unknown> | undefined;
      try {
        p = call();
      } catch (e) {
        assert.unreachable(`${what} threw ${(e as Error).name} synchronously`);
      }
      let err: unknown;
      try {
        await c.run(p as Promise<unknown>, 10);
      } catch (e) {
        err = e;
      }
      assert.instance(err, StoppedError, what);
    }
  }));

test('lifecycle: an owner holding several names exits -> every one of them is free on every node', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const owner = n2.spawn();
    const regs = [];
    for (const name of ['m1', 'm2', 'm3']) regs.push(await c.run(n2.register(name, owner)));
    const other = await c.run(n2.register('other', n2.spawn()));
    owner.exit('crash');
    await c.advance(10);
    for (const r of regs) assert.is(r.ended, 'exit');
    for (const name of ['m1', 'm2', 'm3']) {
      for (const n of [n1, n2, n3]) assert.is(await c.run(n.whereis(name)), undefined, `${name} on ${n.id}`);
    }
    assert.ok(other.valid, 'names of other owners are untouched');
    assert.is(n2.stat().heldNames, 1);
  }));

// A free name is granted in one round trip (20 ms here): abort before, during and just before its end.
for (const abortAfter of [5, 15, 19]) {
  test(`lifecycle: the caller aborts a registration after ${abortAfter} ms (messages take 10 ms) -> AbortedError, no live entry left`, () =>
    withCluster(opts, async (c) => {
      const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
      c.net.set({ minDelay: 10, maxDelay: 10 });
      const ac = new AbortController();
      const owner = n1.spawn();
      const p = n1.register('aborted', owner, { signal: ac.signal });
      c.clock.setTimeout(() => ac.abort(), abortAfter);
      await expectReject(c, p, AbortedError);
      await c.advance(200);
      assert.is(n1.stat().activeGuards, 0);
      assert.is(n1.registration('aborted'), undefined);
      for (const n of [n1, n2, nodeAt(c, 2)]) {
        const e = entryOf(n, 'aborted');
        assert.ok(e === undefined || e.value === null || e.expired, `${n.id} keeps no live value`);
      }
      assert.is(owner.alive, true);
      assert.is(await c.run(n2.registerName('aborted', n2.spawn())), 'yes');
    }));
}

test('lifecycle: a node stops while a registration is in flight -> the call rejects, the name is not left held', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    c.net.set({ minDelay: 10, maxDelay: 10 });
    const p = n1.register('inflight', n1.spawn());
    c.clock.setTimeout(() => { void n1.stop(); }, 15);
    await expectReject(c, p, [StoppedError, AbortedError]);
    await c.advance(4 * HB);
    assert.is(await c.run(n2.whereis('inflight')), undefined);
    assert.is(await c.run(n2.registerName('inflight', n2.spawn())), 'yes');
  }));

test('lifecycle: the whole cluster stops -> no timer is left on the clock', async () => {
  const c = await createTestCluster({ ...opts, node: { phaseTimeout: 100 } });
  try {
    const n1 = nodeAt(c, 0);
    await c.run(n1.register('a', n1.spawn()));
    await c.run(nodeAt(c, 1).register('b', nodeAt(c, 1).spawn()));
    c.net.set({ minDelay: 1, maxDelay: 3 });
    await c.advance(2 * HB);
  } finally {
    await c.stop();
  }
  await c.advance(10 * HB);
  assert.is(c.clock.pendingTimers(), 0);
});

test.run();
