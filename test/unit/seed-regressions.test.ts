/**
 * Regression tests for the failures measured on the Erlang seed (see issue 2, "The seed's own failures"):
 * steals with one node down, prepared-but-never-committed terms, crashes on no consensus, registrations
 * whose caller timed out, heartbeats below the floor, names blocked by a dead node; plus name validation.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AbortedError, NoConsensusError, TimeoutError, type OwnershipEvent,
} from '../../lib/index.js';
import type { PesNode } from '../../lib/node.js';
import type { Owner } from '../../lib/owner.js';
import type { Registration } from '../../lib/registration.js';
import { Random } from '../../lib/testing.js';
import { all, entryOf, expectReject, nodeAt, withCluster } from './cluster-helpers.js';

const HB = 1000;
const opts = { nodes: 3, settings: { heartbeat: HB } };

const refKey = (o: { node: string; inc: number; id: number }): string => `${o.node}/${o.inc}/${o.id}`;

/**
 * Counts steals: a grant of a name while an earlier grant of it has not ended (no 'released' yet),
 * across every node of the cluster.
 */
function watchSteals(nodes: readonly PesNode[]): { steals: string[]; grants: number } {
  const current = new Map<string, string>();
  const out = { steals: [] as string[], grants: 0 };
  for (const n of nodes) {
    n.events.on('registered', (ev: OwnershipEvent) => {
      out.grants++;
      const holder = current.get(ev.name);
      if (holder !== undefined) out.steals.push(`${ev.name}: ${holder} still held it when ${refKey(ev.owner)} got #${ev.token}`);
      current.set(ev.name, `${refKey(ev.owner)}#${ev.token}`);
    });
    n.events.on('released', (ev) => {
      if (current.get(ev.name) === `${refKey(ev.owner)}#${ev.token}`) current.delete(ev.name);
    });
  }
  return out;
}

// ---- steals with one node down ---------------------------------------------------------------------

for (const seed of [1, 2]) {
  test(`seed: one of 3 nodes down, held names, 60 s of contending registrations (seed ${seed}) -> 0 steals`, () =>
    withCluster({ ...opts, seed }, async (c) => {
      const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
      const live = [n1, n2];
      const watch = watchSteals(live);
      const held = new Map<string, { owner: Owner; reg: Registration }>();
      for (let i = 0; i < 10; i++) {
        const node = live[i % 2] as PesNode;
        const owner = node.spawn();
        held.set(`held-${i}`, { owner, reg: await c.run(node.register(`held-${i}`, owner)) });
      }
      await c.crash(2);
      c.net.set({ minDelay: 0, maxDelay: 5 });
      const rnd = new Random(seed * 31);
      const names = [...held.keys()];
      const pending: Promise<unknown>[] = [];
      let attempts = 0;
      const until = c.clock.now() + 60_000;
      while (c.clock.now() < until) {
        for (let k = 0; k < 4; k++) {
          const node = rnd.pick(live);
          attempts++;
          pending.push(node.registerName(rnd.pick(names), node.spawn()));
        }
        await c.advance(50 + rnd.int(0, 100));
      }
      const results = await c.run(Promise.all(pending));
      assert.ok(attempts > 1000, `${attempts} contending registrations`);
      assert.equal(watch.steals, []);
      assert.is(results.filter((r) => r === 'yes').length, 0, 'no contender was told yes');
      for (const [name, h] of held) {
        assert.ok(h.reg.valid, `${name} still held by its owner`);
        assert.is(h.reg.signal.aborted, false, `${name} never revoked`);
        assert.equal(await c.run(n1.whereis(name)), h.owner.ref, name);
        assert.equal(await c.run(n2.whereis(name)), h.owner.ref, name);
      }
    }));
}

test('seed: one of 3 nodes down with names of its own -> those are taken once each after expiry, the others never', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const watch = watchSteals([n1, n2]);
    const mine = await c.run(n1.register('mine', n1.spawn()));
    await c.run(n3.register('orphan', n3.spawn()));
    await c.crash(2);
    const wins = new Map<string, number>();
    const pending: Promise<void>[] = [];
    for (let t = 0; t < 100; t++) {
      for (const node of [n1, n2]) {
        for (const name of ['mine', 'orphan']) {
          pending.push(node.registerName(name, node.spawn()).then((r) => { if (r === 'yes') wins.set(name, (wins.get(name) ?? 0) + 1); }));
        }
      }
      await c.advance(100);
    }
    await c.run(Promise.all(pending));
    assert.equal(watch.steals, []);
    assert.is(wins.get('orphan'), 1, 'the dead node\'s name went to exactly one contender');
    assert.is(wins.get('mine'), undefined);
    assert.ok(mine.valid);
  }));

/**
 * The seed's exact hole: one node down and the other live node lagging (it missed the commits), so a
 * read gets no majority agreement. Holders must keep their names: owner changes while the owner lives
 * count as steals, whether or not the holder was first told it lost the lease.
 */
for (const seed of [1, 2, 3]) {
  test(`seed: one node down, the other live node lagging, 60 s of contention (seed ${seed}) -> no name changes owner while its owner lives`, () =>
    withCluster({ ...opts, seed }, async (c) => {
      const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
      const live = [n1, n2];
      const watch = watchSteals(live);
      const lost: string[] = [];
      n1.events.on('lost', (ev) => lost.push(`${ev.name}@${Math.round(c.clock.now())}`));
      c.net.partition([n2.id], [n1.id, c.ids[2] as string]);
      const held = new Map<string, { owner: Owner; reg: Registration }>();
      for (let i = 0; i < 10; i++) {
        const owner = n1.spawn();
        held.set(`lag-${i}`, { owner, reg: await c.run(n1.register(`lag-${i}`, owner)) });
      }
      c.net.heal();
      await c.crash(2);
      c.net.set({ minDelay: 0, maxDelay: 5 });
      const rnd = new Random(seed * 17);
      const names = [...held.keys()];
      const pending: Promise<'yes' | 'no'>[] = [];
      const until = c.clock.now() + 60_000;
      while (c.clock.now() < until) {
        for (let k = 0; k < 4; k++) {
          const node = rnd.pick(live);
          pending.push(node.registerName(rnd.pick(names), node.spawn()));
        }
        await c.advance(50 + rnd.int(0, 100));
      }
      const results = await c.run(Promise.all(pending));
      const changed = [...held].filter(([, h]) => h.owner.alive && !h.reg.valid).map(([name]) => name);
      assert.equal(watch.steals, []);
      assert.equal(lost, [], 'live holders lost their names to contention');
      assert.equal(changed, []);
      assert.is(results.filter((r) => r === 'yes').length, 0, 'contenders were granted names whose owners live');
    }));
}

test('seed: one node down, the other lagging behind a leftover promise -> once the promise is withdrawn the holder repairs it and keeps the name', () =>
  withCluster({ nodes: 3, settings: { heartbeat: HB, promiseTtl: 1600 } }, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    c.net.partition([n2.id], [n1.id, c.ids[2] as string]);
    const reg = await c.run(n1.register('repairme', n1.spawn()));
    c.net.heal();
    await c.crash(2);
    // A contender's prepare, never followed by anything, sits on the lagging node when the first renewal syncs it.
    assert.ok(n2.acceptor.prepare({ type: 'prep', rid: 1, name: 'repairme', b: { t: reg.token + 5, g: 'n2/1/999' }, mode: 'free' }).ok);
    await c.advance(8 * HB);
    assert.equal(entryOf(n2, 'repairme')?.ballot?.t, reg.token, 'n2 was repaired after the promise lapsed');
    assert.ok(reg.valid, 'the holder kept its name');
    assert.is(reg.ended, undefined);
  }));

// ---- prepared, never committed ---------------------------------------------------------------------

test('seed: a high term prepared on every acceptor and never committed -> does not block a registration', () =>
  withCluster(opts, async (c) => {
    const rogue = { t: nodeAt(c, 0).acceptor.floor + 1000, g: 'rogue/1/1' };
    for (const n of all(c)) assert.ok(n.acceptor.prepare({ type: 'prep', rid: 1, name: 'blocked', b: rogue, mode: 'free' }).ok);
    const owner = nodeAt(c, 1).spawn();
    const reg = await c.run(nodeAt(c, 1).register('blocked', owner), 2000);
    assert.ok(reg.token > rogue.t, 'the grant goes above the leftover term');
    assert.equal(await c.run(nodeAt(c, 2).whereis('blocked')), owner.ref);
  }));

test('seed: a term prepared and never committed on a majority, with a live owner on record -> the owner keeps the name', () =>
  withCluster(opts, async (c) => {
    const n1 = nodeAt(c, 0);
    const owner = n1.spawn();
    const reg = await c.run(n1.register('kept', owner));
    const rogue = { t: reg.token + 1000, g: 'rogue/1/1' };
    // A takeover prepare that was never followed by anything.
    for (const n of [nodeAt(c, 1), nodeAt(c, 2)]) {
      n.acceptor.prepare({ type: 'prep', rid: 1, name: 'kept', b: rogue, mode: 'free' });
    }
    await c.advance(10 * HB);
    assert.ok(reg.valid, 'renewals go on');
    assert.equal(await c.run(nodeAt(c, 2).whereis('kept')), owner.ref);
    assert.is(await c.run(nodeAt(c, 2).registerName('kept', nodeAt(c, 2).spawn())), 'no');
  }));

test('seed: a leftover promise is withdrawn after promiseTtl and its entry is cleaned up', () =>
  withCluster({ nodes: 3, settings: { heartbeat: HB, promiseTtl: 1000, deleteTimeThreshold: 1000, cleanupPeriod: 100 } }, async (c) => {
    const rogue = { t: nodeAt(c, 0).acceptor.floor + 1000, g: 'rogue/1/1' };
    for (const n of all(c)) n.acceptor.prepare({ type: 'prep', rid: 1, name: 'leftover', b: rogue, mode: 'free' });
    await c.advance(500);
    for (const n of all(c)) assert.equal(entryOf(n, 'leftover')?.promise, rogue, `promise visible on ${n.id} before the ttl`);
    await c.advance(1000 + 1000 + 1500);
    for (const n of all(c)) {
      assert.is(entryOf(n, 'leftover'), undefined, `entry cleaned up on ${n.id}`);
      assert.is(n.stat().acceptor.entries, 0);
    }
    // And the name is as free as one never used.
    assert.is(await c.run(nodeAt(c, 2).registerName('leftover', nodeAt(c, 2).spawn())), 'yes');
  }));

test('seed: a leftover promise of a high term, once past promiseTtl -> withdrawn; refusals name the floor above it and the name registers', () =>
  withCluster({ nodes: 3, settings: { heartbeat: HB, promiseTtl: 1000 } }, async (c) => {
    const n1 = nodeAt(c, 0);
    const rogue = { t: n1.acceptor.floor + 1000, g: 'rogue/1/1' };
    for (const n of all(c)) n.acceptor.prepare({ type: 'prep', rid: 1, name: 'ttl', b: rogue, mode: 'free' });
    const lower = { t: n1.acceptor.floor + 10, g: 'probe/1/1' };
    assert.is(n1.acceptor.prepare({ type: 'prep', rid: 2, name: 'ttl', b: lower, mode: 'free' }).ok, false, 'refused while promised');
    await c.advance(1100);
    assert.is(entryOf(n1, 'ttl')?.promise, undefined, 'the leftover promise was withdrawn');
    const r = n1.acceptor.prepare({ type: 'prep', rid: 3, name: 'ttl', b: { t: lower.t + 1, g: lower.g }, mode: 'free' });
    assert.is(r.ok, false, 'terms are never reused, so a fencing token cannot repeat');
    assert.is(r.floor, rogue.t + 1);
    const reg = await c.run(nodeAt(c, 1).register('ttl', nodeAt(c, 1).spawn()));
    assert.ok(reg.token > rogue.t, 'the guard learnt the floor and was granted above it');
  }));

// ---- no consensus ------------------------------------------------------------------------------------

test('seed: whereis, lookup, unregister, update, send, call from a cut-off node -> typed rejections, never a guess', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    await c.run(n2.register('far', n2.spawn()));
    c.net.isolate(n1.id);
    const typed = [NoConsensusError, TimeoutError];
    for (const name of ['far', 'never-registered']) {
      const e = await expectReject(c, n1.whereis(name), typed);
      if (e instanceof NoConsensusError) {
        assert.is(e.key, name);
        assert.is(e.needed, 2);
        assert.ok(e.answered < 2);
      }
      await expectReject(c, n1.lookup(name), typed);
      await expectReject(c, n1.unregister(name), typed);
      await expectReject(c, n1.update(name, n1.spawn()), typed);
      await expectReject(c, n1.send(name, 'hi'), typed);
      await expectReject(c, n1.call(name, 'hi'), typed);
    }
    // The node is fine afterwards.
    c.net.heal();
    await c.advance(10);
    assert.is((await c.run(n1.lookup('far')))?.node, 'n2');
    assert.is(await c.run(n1.whereis('never-registered')), undefined);
  }));

test('seed: whereis with two of three nodes down -> NoConsensusError or TimeoutError', () =>
  withCluster(opts, async (c) => {
    await c.run(nodeAt(c, 0).register('lonely', nodeAt(c, 0).spawn()));
    await c.crash(1);
    await c.crash(2);
    const n1 = nodeAt(c, 0);
    await expectReject(c, n1.whereis('other'), [NoConsensusError, TimeoutError]);
    await expectReject(c, n1.unregister('other'), [NoConsensusError, TimeoutError]);
  }));

test('seed: whereis with a short timeout or an abort while cut off -> TimeoutError / AbortedError', () =>
  withCluster(opts, async (c) => {
    const n1 = nodeAt(c, 0);
    c.net.isolate(n1.id);
    const t = await expectReject(c, n1.whereis('x', { timeout: 100 }), TimeoutError);
    assert.is(t.timeoutMs, 100);
    const ac = new AbortController();
    const p = n1.whereis('x', { signal: ac.signal });
    c.clock.setTimeout(() => ac.abort(), 50);
    await expectReject(c, p, AbortedError);
    const before = c.clock.now();
    await expectReject(c, n1.unregister('x', { timeout: 100 }), TimeoutError);
    assert.ok(c.clock.now() - before <= 150);
  }));

// ---- caller timeouts ---------------------------------------------------------------------------------

for (const timeout of [5, 15, 25, 30, 35, 38, 45]) {
  test(`seed: register times out after ${timeout} ms while messages take 10 ms -> no entry is left without a guard`, () =>
    withCluster(opts, async (c) => {
      const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
      c.net.set({ minDelay: 10, maxDelay: 10 });
      const owner = n1.spawn();
      let reg: Registration | undefined;
      try {
        reg = await c.run(n1.register('late', owner, { timeout }));
      } catch (e) {
        assert.instance(e, TimeoutError);
        assert.is((e as TimeoutError).operation, 'register');
      }
      await c.advance(200);
      if (reg !== undefined) {
        // It made it in time: then it must be a real, guarded registration.
        assert.ok(reg.valid);
        assert.is(n1.stat().heldNames, 1);
        return;
      }
      assert.is(n1.registration('late'), undefined);
      assert.is(n1.stat().activeGuards, 0);
      assert.is(n1.stat().heldNames, 0);
      for (const n of all(c)) {
        const e = entryOf(n, 'late');
        assert.ok(e === undefined || e.value === null || e.expired, `${n.id} keeps no live value: ${JSON.stringify(e)}`);
      }
      assert.is(await c.run(n2.whereis('late')), undefined);
      assert.is(owner.alive, true);
      const next = n2.spawn();
      assert.is(await c.run(n2.registerName('late', next)), 'yes');
      assert.equal(await c.run(n1.whereis('late')), next.ref);
    }));
}

for (const seed of [1, 2, 3, 4]) {
  test(`seed: register timing out under jittered delay (seed ${seed}) -> the name is eventually free and registrable`, () =>
    withCluster({ ...opts, seed }, async (c) => {
      const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
      c.net.set({ minDelay: 2, maxDelay: 20 });
      const outcomes: string[] = [];
      for (let i = 0; i < 8; i++) {
        const name = `jit-${i}`;
        try {
          await c.run(n1.register(name, n1.spawn(), { timeout: 10 + 5 * i }));
          outcomes.push('ok');
        } catch (e) {
          assert.instance(e, TimeoutError);
          outcomes.push('timeout');
        }
      }
      await c.advance(4 * HB);
      c.net.set({ minDelay: 0, maxDelay: 0 });
      for (let i = 0; i < 8; i++) {
        const name = `jit-${i}`;
        const where = await c.run(n2.whereis(name));
        if (outcomes[i] === 'ok') {
          assert.ok(where !== undefined && n1.registration(name)?.valid === true, `${name} registered and guarded`);
        } else {
          assert.is(where, undefined, `${name} (timed out) is not held`);
          assert.is(await c.run(n2.registerName(name, n2.spawn())), 'yes');
        }
      }
      assert.is(n1.stat().activeGuards, outcomes.filter((o) => o === 'ok').length);
    }));
}

// ---- heartbeat floor, dead nodes -------------------------------------------------------------------

for (const heartbeat of [100, 1]) {
  test(`seed: heartbeat ${heartbeat} ms (below the floor) -> a live record never looks expired over 30 s`, () =>
    withCluster({ nodes: 3, settings: { heartbeat } }, async (c) => {
      const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
      const owner = n1.spawn();
      const reg = await c.run(n1.register('floor', owner));
      const lost: string[] = [];
      n1.events.on('lost', (ev) => lost.push(ev.name));
      for (let t = 0; t < 60; t++) {
        await c.advance(500);
        for (const n of all(c)) assert.is(entryOf(n, 'floor')?.expired, false, `${n.id} at ${t}`);
        if (t % 6 === 0) {
          assert.is(await c.run(n2.registerName('floor', n2.spawn())), 'no');
          assert.is(await c.run(n3.registerName('floor', n3.spawn())), 'no');
        }
      }
      assert.equal(lost, []);
      assert.ok(reg.valid);
      assert.is((await c.run(n3.lookup('floor')))?.token, reg.token);
    }));
}

test('seed: heartbeat set below the floor at run time -> the held name stays held with its token', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    const reg = await c.run(n1.register('runtime', n1.spawn()));
    n2.config.set('heartbeat', 50);
    await c.advance(3000);
    for (const n of all(c)) assert.is(n.config.get('heartbeat'), 50);
    for (let t = 0; t < 30; t++) {
      await c.advance(1000);
      for (const n of all(c)) assert.is(entryOf(n, 'runtime')?.expired, false, `${n.id} at ${t}`);
    }
    assert.ok(reg.valid);
    assert.is(await c.run(n2.registerName('runtime', n2.spawn())), 'no');
    assert.is((await c.run(n2.lookup('runtime')))?.token, reg.token);
  }));

test('seed: the guard\'s node dies with the default heartbeat -> its name is free within 3 heartbeats, not ~200 s', () =>
  withCluster({ nodes: 3 }, async (c) => {
    const hb = nodeAt(c, 0).config.get('heartbeat');
    await c.run(nodeAt(c, 0).register('dead-node', nodeAt(c, 0).spawn()));
    await c.advance(hb * 2);
    await c.crash(0);
    const crashedAt = c.clock.now();
    const n2 = nodeAt(c, 1);
    let freeAt: number | undefined;
    while (freeAt === undefined) {
      assert.ok(c.clock.now() - crashedAt < 200_000, 'never freed');
      if ((await c.run(n2.whereis('dead-node'))) === undefined) freeAt = c.clock.now();
      else await c.advance(250);
    }
    assert.ok(freeAt - crashedAt <= 3 * (hb + 250) + 500, `free ${freeAt - crashedAt} ms after the crash`);
    assert.is(await c.run(n2.registerName('dead-node', n2.spawn())), 'yes');
  }));

test.run();
