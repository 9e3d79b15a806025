/**
 * The seed's cluster cases on three nodes: stale values everywhere, a node that missed a commit,
 * expired records, expired copies of a live owner, a guard that moves on update, names repaired after a
 * partition heals, and a killed guard freeing its names after three heartbeats.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LeaseLostError } from '../../lib/index.js';
import type { PesNode } from '../../lib/node.js';
import type { Owner } from '../../lib/owner.js';
import type { Value } from '../../lib/protocol/messages.js';
import type { TestCluster } from '../../lib/testing.js';
import { all, entryOf, nodeAt, registerEventually, withCluster } from './cluster-helpers.js';

const HB = 1000;
const opts = { nodes: 3, settings: { heartbeat: HB } };

async function whereisEverywhere(c: TestCluster, name: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const n of all(c)) out.push(await c.run(n.whereis(name)));
  return out;
}

/** (ballot, seq, owner) of each node's acceptor entry for `name`, as a comparable string. */
function entryKey(n: PesNode, name: string): string {
  const e = entryOf(n, name);
  if (e === undefined) return 'absent';
  const owner = e.value === null ? 'null' : `${e.value.owner.node}/${e.value.owner.inc}/${e.value.owner.id}`;
  return `${e.ballot?.t}/${e.ballot?.g}/${e.seq}/${owner}`;
}

/**
 * Builds, with partitions only, three different stale records of `name` on the three acceptors:
 * n1 keeps A (its guard lost the lease while isolated), n2 a tombstone of B (B's owner exited while n2
 * was cut off), n3 B itself (no longer renewed). Leaves every node isolated.
 */
async function threeStaleValues(c: TestCluster, name: string): Promise<void> {
  const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
  const a = n1.spawn();
  const regA = await c.run(n1.register(name, a));
  c.net.isolate(n1.id);
  await c.advance(4 * HB);
  assert.is(regA.ended, 'lost', 'the isolated guard gave the name up');
  const b = n2.spawn();
  await registerEventually(c, n2, name, b, 200, 10 * HB);
  c.net.isolate(n2.id);
  b.exit();
  await c.advance(4 * HB);
  const keys = [entryKey(n1, name), entryKey(n2, name), entryKey(n3, name)];
  assert.is(new Set(keys).size, 3, `three different records: ${keys.join(' | ')}`);
  assert.ok(entryOf(n2, name)?.value === null, 'n2 holds a tombstone');
  assert.ok(entryOf(n1, name)?.expired === true && entryOf(n3, name)?.expired === true, 'n1 and n3 hold expired values');
}

for (const from of [0, 1, 2]) {
  test(`cluster: three different stale records on three nodes -> a new registration from n${from + 1} succeeds`, () =>
    withCluster(opts, async (c) => {
      await threeStaleValues(c, 'stale');
      c.net.heal();
      await c.advance(10);
      const node = nodeAt(c, from);
      const owner = node.spawn();
      const reg = await c.run(node.register('stale', owner));
      assert.equal(reg.owner, owner.ref);
      assert.equal(await whereisEverywhere(c, 'stale'), [owner.ref, owner.ref, owner.ref]);
      await c.advance(3 * HB);
      const keys = all(c).map((n) => entryKey(n, 'stale'));
      assert.is(new Set(keys).size, 1, `acceptors converge: ${keys.join(' | ')}`);
    }));
}

test('cluster: three different expired values written straight into the acceptors -> a registration succeeds', () =>
  withCluster(opts, async (c) => {
    const nodes = all(c);
    nodes.forEach((n, i) => {
      const b = { t: n.acceptor.floor + 10 * (i + 1), g: `ghost/1/${i + 1}` };
      const v: Value = { owner: { node: 'ghost', inc: 1, id: i + 1 }, gnode: 'ghost', hb: HB };
      assert.ok(n.acceptor.prepare({ type: 'prep', rid: 1, name: 'injected', b, mode: 'free' }).ok);
      assert.ok(n.acceptor.commit({ type: 'com', rid: 2, name: 'injected', b, v, seq: 1 }).ok);
    });
    await c.advance(4 * HB);
    assert.equal(nodes.map((n) => entryOf(n, 'injected')?.expired), [true, true, true]);
    const owner = nodeAt(c, 1).spawn();
    const reg = await c.run(nodeAt(c, 1).register('injected', owner));
    assert.ok(reg.token > nodes[2]!.acceptor.floor + 30, 'the new term is above every stale one');
    assert.equal(await whereisEverywhere(c, 'injected'), [owner.ref, owner.ref, owner.ref]);
  }));

test('cluster: a node that missed a handoff -> whereis from it returns the majority value, then renewals repair it', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    await c.run(n1.register('lag', n1.spawn()));
    const before = entryKey(n3, 'lag');
    c.net.partition([n3.id], [n1.id, n2.id]);
    const moved = n2.spawn();
    await c.run(n1.update('lag', moved));
    assert.is(entryKey(n3, 'lag'), before, 'n3 missed the new value');
    c.net.heal();
    assert.equal(await c.run(n3.whereis('lag')), moved.ref, 'the majority value wins');
    const l = await c.run(n3.lookup('lag'));
    await c.advance(3 * HB);
    const e = entryOf(n3, 'lag');
    assert.ok(e !== undefined && e.value !== null);
    assert.equal(e.ballot, { t: l?.token, g: l?.guard }, 'n3 now holds the majority ballot');
    assert.equal(e.value.owner, moved.ref);
    assert.is(e.expired, false);
    assert.is(entryKey(n3, 'lag'), entryKey(n1, 'lag'));
    assert.is(entryKey(n3, 'lag'), entryKey(n2, 'lag'));
  }));

test('cluster: a node that missed a registration -> whereis from it returns the owner, renewals repair its acceptor', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    c.net.partition([n3.id], [n1.id, n2.id]);
    const owner = n1.spawn();
    const reg = await c.run(n1.register('missed', owner));
    assert.is(entryOf(n3, 'missed'), undefined);
    c.net.heal();
    assert.equal(await c.run(n3.whereis('missed')), owner.ref);
    await c.advance(3 * HB);
    const r = n3.acceptor.read({ type: 'read', rid: 1, name: 'missed' });
    assert.is(r.ok, true);
    assert.equal(r.entry?.ballot?.t, reg.token);
    assert.equal(r.entry?.value?.owner, owner.ref);
    // Now n3 alone with either other node is a majority that knows the owner.
    c.net.isolate(n1.id);
    assert.equal(await c.run(n3.whereis('missed')), owner.ref);
  }));

test('cluster: a lagging acceptor repaired by renewals -> its repairs counter and rate move', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    n3.stat();
    c.net.partition([n3.id], [n1.id, n2.id]);
    for (let i = 0; i < 3; i++) await c.run(n1.register(`rep-${i}`, n1.spawn()));
    const repairs = n3.stat().acceptor.repairs;
    c.net.heal();
    await c.advance(3 * HB);
    for (let i = 0; i < 3; i++) assert.ok(entryOf(n3, `rep-${i}`)?.value != null, `rep-${i} repaired on n3`);
    const s = n3.stat();
    assert.ok(s.acceptor.repairs >= repairs + 3, `repairs ${repairs} -> ${s.acceptor.repairs}`);
    assert.ok(s.rates.repairs > 0, `repair rate ${s.rates.repairs}`);
  }));

test('cluster: the previous record expired (its guard lost the lease) -> the name is free although the old owner lives', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const old = n1.spawn();
    const reg = await c.run(n1.register('exp', old));
    c.net.isolate(n1.id);
    await c.advance(4 * HB);
    assert.is(reg.ended, 'lost');
    c.net.heal();
    await c.advance(10);
    assert.is(old.alive, true);
    assert.equal(await whereisEverywhere(c, 'exp'), [undefined, undefined, undefined]);
    const owner = n2.spawn();
    assert.is(await c.run(n2.registerName('exp', owner)), 'yes');
    assert.equal(await whereisEverywhere(c, 'exp'), [owner.ref, owner.ref, owner.ref]);
  }));

test('cluster: the guard\'s node is killed -> its name is held until about 2 heartbeats, free after 3, on the others', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    await c.run(n1.register('killed', n1.spawn()));
    await c.advance(2 * HB + 300);
    await c.crash(0);
    const crashedAt = c.clock.now();
    await c.advance(HB + HB / 2);
    const held = await c.run(n2.whereis('killed'));
    assert.is(held?.node, 'n1', 'still held 1.5 heartbeats after the crash (the last renewal may be 1.25 old)');
    await c.advance(crashedAt + 3 * HB + 50 - c.clock.now());
    assert.is(await c.run(n2.whereis('killed')), undefined);
    assert.is(await c.run(n3.whereis('killed')), undefined);
    const owner = n3.spawn();
    assert.is(await c.run(n3.registerName('killed', owner)), 'yes');
    assert.ok(c.clock.now() - crashedAt < 3 * HB + 1000, 'granted within 3 heartbeats and a bit');
    assert.equal(await c.run(n2.whereis('killed')), owner.ref);
  }));

test('cluster: acceptors whose clocks run fast see a live owner\'s value expired -> registering it is refused (probe: holds)', () =>
  withCluster({ ...opts, rates: [1, 4, 4] }, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const owner = n1.spawn();
    const reg = await c.run(n1.register('fast', owner));
    await c.advance(2 * HB);
    let tries = 0;
    while (!(entryOf(n2, 'fast')?.expired === true && entryOf(n3, 'fast')?.expired === true)) {
      assert.ok(++tries < 400, 'the fast acceptors never saw the value expired');
      await c.advance(10);
    }
    assert.ok(reg.valid, 'the owner still holds a valid lease by its own clock');
    const promises = [n2.stat().acceptor.promises, n3.stat().acceptor.promises];
    const rival = n2.spawn();
    assert.is(await c.run(n2.registerName('fast', rival)), 'no');
    assert.ok(n2.stat().acceptor.promises > (promises[0] ?? 0) && n3.stat().acceptor.promises > (promises[1] ?? 0),
      'the fast acceptors did promise (they saw the value expired): the refusal came from the probe');
    assert.ok(reg.valid);
    assert.is(reg.signal.aborted, false);
    assert.is(n1.registration('fast'), reg);
    await c.advance(5 * HB);
    assert.ok(reg.valid, 'the owner keeps renewing afterwards');
    assert.equal(await c.run(n1.whereis('fast')), owner.ref);
  }));

test('cluster: update to an owner on another node -> the guard moves there (lookup().node changes on every node)', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const first = n1.spawn();
    const reg1 = await c.run(n1.register('mover', first));
    for (const n of all(c)) assert.is((await c.run(n.lookup('mover')))?.node, 'n1');
    const events: string[] = [];
    n1.events.on('released', (ev) => events.push(`n1 released ${ev.reason} #${ev.token}`));
    n2.events.on('registered', (ev) => events.push(`n2 registered #${ev.token} old-aborted=${reg1.signal.aborted}`));
    const second = n2.spawn();
    await c.run(n3.update('mover', second));
    assert.equal(events, [`n1 released handoff #${reg1.token}`, `n2 registered #${n2.registration('mover')?.token} old-aborted=true`]);
    assert.is((reg1.signal.reason as LeaseLostError).reason, 'handoff');
    assert.instance(first.signal.reason, LeaseLostError, 'the old owner is told it lost the name');
    assert.is(first.alive, true);
    const reg2 = n2.registration('mover');
    assert.ok(reg2 !== undefined && reg2.token > reg1.token);
    for (const n of all(c)) {
      const l = await c.run(n.lookup('mover'));
      assert.is(l?.node, 'n2', `on ${n.id}`);
      assert.equal(l?.owner, second.ref);
      assert.is(l?.token, reg2.token);
    }
    await c.advance(50);
    assert.is(n1.stat().activeGuards, 0);
    assert.is(n1.stat().heldNames, 0);
    assert.is(n2.stat().activeGuards, 1);
    assert.is(n2.stat().heldNames, 1);
    // The moved guard keeps the name alive, and a move back works too.
    await c.advance(5 * HB);
    assert.ok(reg2.valid);
    const third = n1.spawn();
    await c.run(n2.update('mover', third));
    assert.is((await c.run(n3.lookup('mover')))?.node, 'n1');
    assert.ok((n1.registration('mover')?.token ?? 0) > reg2.token);
  }));

test('cluster: the majority re-grants names while their old node is cut off -> after healing, one owner each, acceptors converge', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const names = ['r0', 'r1', 'r2', 'r3', 'r4'];
    const lost: string[] = [];
    n1.events.on('lost', (ev) => lost.push(ev.name));
    for (const name of names) await c.run(n1.register(name, n1.spawn()));
    c.net.isolate(n1.id);
    await c.advance(4 * HB);
    const owners = new Map<string, Owner>();
    for (const name of names) {
      const o = n2.spawn();
      owners.set(name, o);
      await registerEventually(c, n2, name, o, 100, 5 * HB);
    }
    c.net.heal();
    await c.advance(4 * HB);
    assert.equal(lost.sort(), names);
    assert.is(n1.stat().heldNames, 0);
    for (const name of names) {
      const o = owners.get(name) as Owner;
      assert.is(n1.registration(name), undefined);
      assert.ok(n2.registration(name)?.valid, `${name} still held on n2`);
      assert.equal(await whereisEverywhere(c, name), [o.ref, o.ref, o.ref], name);
      const keys = all(c).map((n) => entryKey(n, name));
      assert.is(new Set(keys).size, 1, `${name} converged: ${keys.join(' | ')}`);
    }
  }));

test('cluster: a cut-off node tries to take held names -> it fails; after healing its acceptor converges', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const names = ['h0', 'h1', 'h2', 'h3'];
    const owners = names.map(() => n1.spawn());
    const regs = [];
    for (const [i, name] of names.entries()) regs.push(await c.run(n1.register(name, owners[i] as Owner)));
    c.net.isolate(n3.id);
    await c.advance(4 * HB);
    for (const name of names) assert.is(await c.run(n3.registerName(name, n3.spawn())), 'no', name);
    // And it must not have disturbed the holders.
    for (const r of regs) assert.ok(r.valid);
    c.net.heal();
    await c.advance(3 * HB);
    for (const [i, name] of names.entries()) {
      assert.equal(await whereisEverywhere(c, name), [owners[i]?.ref, owners[i]?.ref, owners[i]?.ref], name);
      const keys = all(c).map((n) => entryKey(n, name));
      assert.is(new Set(keys).size, 1, `${name} converged: ${keys.join(' | ')}`);
      assert.is(entryOf(n3, name)?.expired, false);
    }
    for (const r of regs) assert.ok(r.valid && r.ended === undefined);
    assert.is(n2.stat().heldNames + n3.stat().heldNames, 0);
  }));

test.run();
