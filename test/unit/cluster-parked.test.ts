/**
 * Names held quietly: once granted, a guard is parked and its record stands in for it. Everything a
 * running guard did must still happen from the record: renewals keep every name held, a lost lease
 * revokes, unregister and owner exit release, handoffs move the name (and a failed one leaves it held
 * and renewed), a stop releases. Many names per owner, as a busy node holds them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LeaseLostError, OwnerNotAliveError, type Registration } from '../../lib/index.js';
import type { TestCluster } from '../../lib/testing.js';
import { expectReject, nodeAt, registerEventually, withCluster } from './cluster-helpers.js';

const HB = 1000;
const opts = { nodes: 3, settings: { heartbeat: HB } };
const N = 60;

async function registerMany(c: TestCluster, node: number, prefix: string, owner = nodeAt(c, node).spawn()): Promise<Registration[]> {
  const n = nodeAt(c, node);
  return c.run(Promise.all(Array.from({ length: N }, (_, i) => n.register(`${prefix}/${i}`, owner))));
}

test('held names: many names of one owner over 20 heartbeats -> all stay valid and found everywhere, no lease lost', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const owner = n1.spawn();
    const regs = await registerMany(c, 0, 'q', owner);
    assert.is(n1.stat().activeGuards, N, 'parked guards still count');
    assert.is(n1.stat().heldNames, N);
    for (let k = 0; k < 20; k++) {
      await c.advance(HB);
      assert.ok(regs.every((r) => r.valid), `all valid after ${k + 1} heartbeats`);
    }
    assert.is(n1.stat().renewer.lost, 0);
    // The records' rebuilt ballots match what the acceptors hold: renewals agree, with no full list resent.
    const syncs = n1.stat().renewer.syncs;
    await c.advance(5 * HB);
    assert.is(n1.stat().renewer.syncs, syncs);
    for (const i of [0, 17, N - 1]) {
      assert.equal(await c.run(n2.whereis(`q/${i}`)), owner.ref);
      assert.equal(await c.run(n3.lookup(`q/${i}`)), { owner: owner.ref, guard: (await c.run(n1.lookup(`q/${i}`)))?.guard, node: n1.id, token: regs[i]?.token });
    }
    assert.is((await c.run(n1.lookup('q/3')))?.token, regs[3]?.token, 'a local lookup answers from the record');
  }));

test('held names: the holder is cut off -> every registration ends \'lost\' within its lease; then another node may take them', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const owner = n1.spawn();
    const regs = await registerMany(c, 0, 'q', owner);
    const lost: string[] = [];
    n1.events.on('lost', (ev) => lost.push(ev.name));
    const before = c.clock.now();
    c.net.isolate(n1.id);
    await c.advance(3 * HB);
    assert.is(lost.length, N);
    for (const r of regs) {
      assert.is(r.ended, 'lost');
      assert.ok(r.signal.aborted);
      assert.instance(r.signal.reason, LeaseLostError);
    }
    assert.ok(owner.signal.aborted, 'the owner is told');
    assert.is(n1.stat().activeGuards, 0);
    assert.is(n1.stat().heldNames, 0);
    assert.ok(c.clock.now() - before <= 3 * HB);
    const { token } = await registerEventually(c, n2, 'q/5', n2.spawn(), HB, 10 * HB);
    assert.ok(token > (regs[5]?.token ?? Infinity));
  }));

test('held names: unregister of one -> released \'unregistered\', free everywhere at once; the others stay held', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const regs = await registerMany(c, 0, 'q');
    await c.advance(2 * HB);
    const released: string[] = [];
    n1.events.on('released', (ev) => released.push(`${ev.name}:${ev.reason}`));
    await c.run((regs[7] as Registration).unregister());
    assert.equal(released, ['q/7:unregistered']);
    assert.is(regs[7]?.ended, 'unregistered');
    assert.is(await c.run(n2.whereis('q/7')), undefined);
    assert.is(n1.stat().activeGuards, N - 1);
    await c.run(n1.unregister('q/8'));
    assert.is(regs[8]?.ended, 'unregistered');
    await c.advance(5 * HB);
    assert.ok(regs.every((r, i) => r.valid === (i !== 7 && i !== 8)));
  }));

test('held names: the owner exits -> each of its names is released \'exit\' and free at once; another owner\'s stay', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const a = n1.spawn();
    const b = n1.spawn();
    const regsA = await registerMany(c, 0, 'a', a);
    const regsB = await registerMany(c, 0, 'b', b);
    await c.advance(2 * HB);
    a.exit();
    await c.advance(10);
    assert.ok(regsA.every((r) => r.ended === 'exit'));
    assert.ok(regsB.every((r) => r.valid));
    assert.is(n1.stat().activeGuards, N);
    assert.is(await c.run(n2.whereis('a/0')), undefined);
    assert.equal(await c.run(n2.whereis('b/0')), b.ref);
  }));

test('held names: handoff to another node and back, and to a local owner -> tokens rise, each old registration ends \'handoff\'', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const regs = await registerMany(c, 0, 'q');
    await c.advance(2 * HB);
    const remote = n2.spawn();
    await c.run(n1.update('q/1', remote));
    assert.is(regs[1]?.ended, 'handoff');
    const there = n2.registration('q/1');
    assert.ok(there !== undefined && there.token > (regs[1]?.token ?? Infinity));
    await c.advance(2 * HB);
    assert.ok(there.valid, 'the receiver parked and renews too');
    const back = n1.spawn();
    await c.run(n3.update('q/1', back));
    assert.is(there.ended, 'handoff');
    const home = n1.registration('q/1');
    assert.ok(home !== undefined && home.token > there.token);
    const local = n1.spawn();
    await c.run(n1.update('q/2', local));
    assert.is(regs[2]?.ended, 'handoff');
    assert.equal(await c.run(n3.whereis('q/2')), local.ref);
    await c.advance(5 * HB);
    assert.ok(home.valid);
    assert.ok(n1.registration('q/2')?.valid);
    assert.is(n1.stat().renewer.lost + n2.stat().renewer.lost, 0);
  }));

test('held names: a handoff to a dead owner fails -> the name stays held and renewed; unregister still ends it', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const regs = await registerMany(c, 0, 'q');
    const dead = n2.spawn();
    dead.exit();
    await expectReject(c, n1.update('q/4', dead), OwnerNotAliveError);
    const reg = regs[4] as Registration;
    await c.advance(10 * HB);
    assert.ok(reg.valid);
    assert.is(n1.stat().activeGuards, N);
    await c.run(reg.unregister());
    assert.is(reg.ended, 'unregistered');
    assert.is(await c.run(n2.whereis('q/4')), undefined);
  }));

test('held names: the node stops -> every parked name is released \'stopped\' and free on the others at once', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const regs = await registerMany(c, 0, 'q');
    await c.advance(2 * HB);
    await c.run(n1.stop());
    assert.ok(regs.every((r) => r.ended === 'stopped'));
    assert.is(await c.run(n2.whereis('q/9')), undefined);
    assert.is(await c.run(n2.registerName('q/9', n2.spawn())), 'yes');
  }));

test('registration: a signal first read after the end -> already aborted with the end\'s reason; the same signal every time', () =>
  withCluster(opts, async (c) => {
    const n1 = nodeAt(c, 0);
    const early = await c.run(n1.register('early', n1.spawn()));
    const late = await c.run(n1.register('late', n1.spawn()));
    const signal = early.signal;
    assert.is(early.signal, signal);
    await c.run(early.unregister());
    await c.run(late.unregister());
    assert.ok(signal.aborted);
    assert.ok(late.signal.aborted);
    assert.is(late.signal, late.signal);
    assert.instance(late.signal.reason, LeaseLostError);
    assert.is((late.signal.reason as LeaseLostError).reason, 'unregistered');
    assert.is((signal.reason as LeaseLostError).reason, 'unregistered');
  }));

test.run();
