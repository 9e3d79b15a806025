/**
 * The seed's basic registry cases, run on a single-node cluster (majority of one) and on three nodes:
 * register / whereis / unregister, already registered, owner exits, send and call, update (handoff),
 * cluster config, cleanup and stat. Manual clock and in-memory transport only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AlreadyRegisteredError, ConfigError, InvalidArgumentError, LeaseLostError, NotFoundError, NotRegisteredError,
  OwnerExit, OwnerNotAliveError, RemoteCallError,
} from '../../lib/index.js';
import type { TestCluster } from '../../lib/testing.js';
import { all, entryOf, expectReject, nodeAt, withCluster } from './cluster-helpers.js';

const HB = 1000;
const SIZES = [1, 3] as const;

/** The node a 3-node test calls from when it wants "another node" (the same node on a 1-node cluster). */
const other = (c: TestCluster): number => (c.nodes.length > 1 ? 1 : 0);
const third = (c: TestCluster): number => (c.nodes.length > 2 ? 2 : 0);

async function whereisEverywhere(c: TestCluster, name: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const n of all(c)) out.push(await c.run(n.whereis(name)));
  return out;
}

for (const size of SIZES) {
  const opts = { nodes: size, settings: { heartbeat: HB } };
  const at = `registry (${size} node${size === 1 ? '' : 's'})`;

  test(`${at}: register -> whereis and lookup on every node return the owner and the token`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn();
      const reg = await c.run(a.register('alpha', owner));
      assert.is(reg.name, 'alpha');
      assert.equal(reg.owner, owner.ref);
      assert.ok(Number.isSafeInteger(reg.token) && reg.token > 0);
      assert.ok(reg.valid);
      assert.is(reg.signal.aborted, false);
      assert.is(a.registration('alpha'), reg);
      for (const n of all(c)) {
        assert.equal(await c.run(n.whereis('alpha')), owner.ref, `whereis on ${n.id}`);
        const l = await c.run(n.lookup('alpha'));
        assert.ok(l !== undefined);
        assert.equal(l.owner, owner.ref);
        assert.is(l.node, a.id);
        assert.is(l.token, reg.token);
      }
    }));

  test(`${at}: unregister -> whereis undefined on every node and the registration ends 'unregistered'`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn();
      const reg = await c.run(a.register('alpha', owner));
      const released: string[] = [];
      a.events.on('released', (ev) => released.push(`${ev.name}:${ev.reason}`));
      await c.run(nodeAt(c, other(c)).unregister('alpha'));
      await c.advance(10);
      assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => undefined));
      assert.is(reg.signal.aborted, true);
      assert.instance(reg.signal.reason, LeaseLostError);
      assert.is((reg.signal.reason as LeaseLostError).reason, 'unregistered');
      assert.is(reg.ended, 'unregistered');
      assert.is(reg.valid, false);
      assert.equal(released, ['alpha:unregistered']);
      assert.is(owner.alive, true, 'unregister ends the registration, not the owner');
      assert.is(a.registration('alpha'), undefined);
      assert.is(a.stat().heldNames, 0);
    }));

  test(`${at}: unregister, then register again -> the name is granted again`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const first = a.spawn();
      await c.run(a.register('alpha', first));
      await c.run(a.unregister('alpha'));
      const second = nodeAt(c, other(c)).spawn();
      const reg = await c.run(nodeAt(c, other(c)).register('alpha', second));
      assert.equal(reg.owner, second.ref);
      assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => second.ref));
      // And the first owner can have it back once more.
      await c.run(reg.unregister());
      assert.is(await c.run(a.registerName('alpha', first)), 'yes');
      assert.equal(await c.run(nodeAt(c, third(c)).whereis('alpha')), first.ref);
    }));

  test(`${at}: register a held name -> AlreadyRegisteredError with the holder's ref, registerName 'no', nothing changes`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const holder = a.spawn();
      const reg = await c.run(a.register('alpha', holder));
      for (const n of all(c)) {
        const rival = n.spawn();
        const e = await expectReject(c, n.register('alpha', rival), AlreadyRegisteredError);
        assert.is(e.key, 'alpha');
        assert.equal(e.owner, holder.ref);
        assert.is(await c.run(n.registerName('alpha', rival)), 'no');
        assert.is(rival.signal.aborted, false);
      }
      assert.ok(reg.valid);
      assert.is(reg.signal.aborted, false);
      assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => holder.ref));
      assert.is((await c.run(nodeAt(c, third(c)).lookup('alpha')))?.token, reg.token);
      await c.advance(50);
      for (const n of all(c)) assert.is(n.stat().activeGuards, n === a ? 1 : 0, `guards left on ${n.id}`);
    }));

  for (const reason of ['normal', new Error('boom')] as const) {
    const label = typeof reason === 'string' ? 'normally' : 'with a crash reason';
    test(`${at}: owner exits ${label} -> the name is free on every node at once`, () =>
      withCluster(opts, async (c) => {
        const a = nodeAt(c, 0);
        const owner = a.spawn();
        const reg = await c.run(a.register('alpha', owner));
        const released: string[] = [];
        a.events.on('released', (ev) => released.push(ev.reason));
        owner.exit(reason);
        assert.is(owner.alive, false);
        assert.instance(owner.signal.reason, OwnerExit);
        assert.is((owner.signal.reason as OwnerExit).reason, reason);
        await c.advance(5);
        assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => undefined));
        assert.is(reg.ended, 'exit');
        assert.is(reg.signal.aborted, true);
        assert.equal(released, ['exit']);
        assert.is(a.stat().heldNames, 0);
        assert.is(a.stat().activeGuards, 0);
        // Free for anyone, right away (not after an expiry).
        const next = nodeAt(c, other(c)).spawn();
        assert.is(await c.run(nodeAt(c, other(c)).registerName('alpha', next), 50), 'yes');
      }));
  }

  test(`${at}: register an owner that already exited -> 'no' / OwnerNotAliveError, no guard started`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const dead = a.spawn();
      dead.exit();
      const before = a.stat().activeGuards;
      assert.is(await c.run(a.registerName('alpha', dead)), 'no');
      const e = await expectReject(c, a.register('alpha', dead), OwnerNotAliveError);
      assert.equal(e.owner, dead.ref);
      assert.is(a.stat().activeGuards, before);
      assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => undefined));
      assert.is(entryOf(a, 'alpha'), undefined, 'nothing was written to the acceptor');
    }));

  test(`${at}: owner exits while its registration is in flight -> the name ends up free`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn();
      const p = a.register('alpha', owner);
      owner.exit();
      try {
        await c.run(p);
      } catch {
        // either outcome is fine for the caller; the name must not stay held by a dead owner
      }
      await c.advance(50);
      assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => undefined));
      assert.is(a.stat().activeGuards, 0);
      assert.is(a.stat().heldNames, 0);
    }));

  test(`${at}: send to an unknown, unregistered or dead owner's name -> NotRegisteredError`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const b = nodeAt(c, other(c));
      const unknown = await expectReject(c, b.send('nobody', 'hi'), NotRegisteredError);
      assert.is(unknown.key, 'nobody');
      await expectReject(c, b.call('nobody', 'hi'), NotRegisteredError);

      const o1 = a.spawn();
      await c.run(a.register('gone', o1));
      await c.run(a.unregister('gone'));
      await expectReject(c, b.send('gone', 'hi'), NotRegisteredError);

      const o2 = a.spawn();
      await c.run(a.register('dead', o2));
      o2.exit('crash');
      await c.advance(5);
      await expectReject(c, b.send('dead', 'hi'), NotRegisteredError);
      await expectReject(c, a.send('dead', 'hi'), NotRegisteredError);
      await expectReject(c, b.call('dead', 'hi'), NotRegisteredError);
    }));

  test(`${at}: send -> the owner's handler receives it, from its own node and from another`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const got: { message: unknown; name: string; call: boolean }[] = [];
      const owner = a.spawn((message, meta) => { got.push({ message, name: meta.name, call: meta.call }); });
      await c.run(a.register('alpha', owner));
      assert.equal(await c.run(a.send('alpha', { n: 1 })), owner.ref);
      assert.equal(await c.run(nodeAt(c, third(c)).send('alpha', { n: 2 })), owner.ref);
      await c.advance(10);
      assert.equal(got, [
        { message: { n: 1 }, name: 'alpha', call: false },
        { message: { n: 2 }, name: 'alpha', call: false },
      ]);
    }));

  test(`${at}: send to an owner without handler -> messages() yields them in order, ends on exit`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn();
      await c.run(a.register('alpha', owner));
      await c.run(a.send('alpha', 'one'));
      await c.run(nodeAt(c, other(c)).send('alpha', 'two'));
      await c.advance(10);
      const it = owner.messages();
      assert.equal(await it.next(), { done: false, value: 'one' });
      assert.equal(await it.next(), { done: false, value: 'two' });
      const pending = it.next();
      await c.run(nodeAt(c, third(c)).send('alpha', 'three'));
      assert.equal(await c.run(pending), { done: false, value: 'three' });
      const last = it.next();
      owner.exit();
      assert.equal(await c.run(last), { done: true, value: undefined });
    }));

  test(`${at}: call -> returns the handler's value (sync and async) from every node; a throwing handler -> RemoteCallError`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn(async (message) => {
        if (message === 'fail') throw new Error('handler failed');
        return { echo: message };
      });
      await c.run(a.register('alpha', owner));
      for (const n of all(c)) assert.equal(await c.run(n.call('alpha', n.id)), { echo: n.id }, `call from ${n.id}`);
      const syncOwner = a.spawn((m) => (m as number) * 2);
      await c.run(a.register('beta', syncOwner));
      assert.is(await c.run(nodeAt(c, third(c)).call('beta', 21)), 42);
      const e = await expectReject(c, nodeAt(c, third(c)).call('alpha', 'fail'), RemoteCallError);
      assert.is(e.key, 'alpha');
    }));

  test(`${at}: unregister a name nobody holds -> resolves, nothing is created`, () =>
    withCluster(opts, async (c) => {
      for (const n of all(c)) await c.run(n.unregister('nobody'));
      assert.equal(await whereisEverywhere(c, 'nobody'), all(c).map(() => undefined));
      for (const n of all(c)) assert.is(n.stat().activeGuards, 0);
    }));

  test(`${at}: update a name nobody holds -> NotFoundError`, () =>
    withCluster(opts, async (c) => {
      const b = nodeAt(c, other(c));
      const e = await expectReject(c, b.update('nobody', b.spawn()), NotFoundError);
      assert.is(e.key, 'nobody');
      assert.is(await c.run(b.whereis('nobody')), undefined);
    }));

  test(`${at}: update to another owner on the same node -> every node sees it, token rises, old signal aborts 'handoff' first`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const oldOwner = a.spawn();
      const oldReg = await c.run(a.register('alpha', oldOwner));
      const newOwner = a.spawn();
      const order: string[] = [];
      oldReg.signal.addEventListener('abort', () => order.push('old-aborted'));
      a.events.on('registered', (ev) => order.push(`registered:${ev.owner.id}:old-aborted=${oldReg.signal.aborted}`));
      await c.run(nodeAt(c, third(c)).update('alpha', newOwner));
      assert.equal(order, ['old-aborted', `registered:${newOwner.ref.id}:old-aborted=true`]);
      assert.is(oldReg.ended, 'handoff');
      assert.is((oldReg.signal.reason as LeaseLostError).reason, 'handoff');
      assert.is(oldOwner.alive, true);
      const newReg = a.registration('alpha');
      assert.ok(newReg !== undefined);
      assert.equal(newReg.owner, newOwner.ref);
      assert.ok(newReg.token > oldReg.token, `token ${newReg.token} > ${oldReg.token}`);
      assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => newOwner.ref));
      for (const n of all(c)) assert.is((await c.run(n.lookup('alpha')))?.token, newReg.token);
      assert.is(a.stat().heldNames, 1);
      await c.advance(50);
      assert.is(a.stat().activeGuards, 1);
    }));

  test(`${at}: update to the owner that already holds the name -> resolves, nothing changes`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn();
      const reg = await c.run(a.register('alpha', owner));
      await c.run(a.update('alpha', owner));
      await c.run(nodeAt(c, third(c)).update('alpha', owner.ref));
      assert.is(a.registration('alpha'), reg);
      assert.ok(reg.valid);
      assert.is(reg.signal.aborted, false);
      assert.is((await c.run(nodeAt(c, other(c)).lookup('alpha')))?.token, reg.token);
    }));

  test(`${at}: update to an owner that has exited -> OwnerNotAliveError, the old owner keeps the name`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn();
      const reg = await c.run(a.register('alpha', owner));
      for (const [caller, host] of [[0, 0], [third(c), 0], [0, other(c)], [third(c), other(c)]] as const) {
        const dead = nodeAt(c, host).spawn();
        dead.exit();
        await expectReject(c, nodeAt(c, caller).update('alpha', dead), OwnerNotAliveError);
        assert.ok(reg.valid, `still valid after caller ${caller}, host ${host}`);
      }
      assert.is(reg.signal.aborted, false);
      assert.is(owner.signal.aborted, false);
      assert.is(a.registration('alpha'), reg);
      assert.equal(await whereisEverywhere(c, 'alpha'), all(c).map(() => owner.ref));
      for (const n of all(c)) assert.is((await c.run(n.lookup('alpha')))?.token, reg.token);
      await c.advance(5 * HB);
      assert.ok(reg.valid, 'still renewed afterwards');
    }));

  test(`${at}: update to an exited owner -> the OwnerNotAliveError names that owner, not the holder`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      await c.run(a.register('alpha', a.spawn()));
      for (const [caller, host] of [[0, 0], [third(c), 0], [0, other(c)], [third(c), other(c)]] as const) {
        const dead = nodeAt(c, host).spawn();
        dead.exit();
        const e = await expectReject(c, nodeAt(c, caller).update('alpha', dead), OwnerNotAliveError);
        assert.equal(e.owner, dead.ref, `update called on node ${caller}, dead owner on node ${host}`);
      }
    }));

  test(`${at}: config set on one node -> every node gets it by gossip; invalid values and keys -> typed errors`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const seen: [string, string, number][] = [];
      for (const n of all(c)) n.events.on('config', (k, v) => seen.push([n.id, k, v]));
      a.config.set('deleteLimit', 7);
      assert.is(a.config.get('deleteLimit'), 7);
      await c.advance(3000);
      for (const n of all(c)) assert.is(n.config.get('deleteLimit'), 7, `on ${n.id}`);
      assert.equal(seen.map(([id]) => id).sort(), all(c).map((n) => n.id).sort());
      // A later set from another node wins everywhere.
      nodeAt(c, third(c)).config.set('deleteLimit', 9);
      await c.advance(3000);
      for (const n of all(c)) assert.is(n.config.get('deleteLimit'), 9, `on ${n.id}`);

      const bad = (fn: () => void): unknown => { try { fn(); } catch (e) { return e; } return undefined; };
      const e1 = bad(() => a.config.set('deleteLimit', 0));
      assert.instance(e1, InvalidArgumentError);
      assert.is((e1 as InvalidArgumentError).argument, 'deleteLimit');
      assert.instance(bad(() => a.config.set('heartbeat', 1.5)), InvalidArgumentError);
      assert.instance(bad(() => a.config.set('promiseTtl', Number.NaN)), InvalidArgumentError);
      const e2 = bad(() => a.config.set('noSuchKey' as 'heartbeat', 10));
      assert.instance(e2, ConfigError);
      assert.is((e2 as ConfigError).key, 'noSuchKey');
      await c.advance(3000);
      for (const n of all(c)) assert.is(n.config.get('deleteLimit'), 9, `unchanged on ${n.id}`);
    }));

  test(`${at}: cleanup -> entries of unregistered names are deleted after deleteTimeThreshold, held ones stay`, () =>
    withCluster({ nodes: size, settings: { heartbeat: HB, deleteTimeThreshold: 1000, cleanupPeriod: 100 } }, async (c) => {
      const a = nodeAt(c, 0);
      const keep = a.spawn();
      await c.run(a.register('kept', keep));
      const names = Array.from({ length: 20 }, (_, i) => `tmp-${i}`);
      for (const name of names) await c.run(a.register(name, a.spawn()));
      for (const n of all(c)) assert.is(n.stat().acceptor.entries, names.length + 1, `entries on ${n.id}`);
      for (const name of names) await c.run(nodeAt(c, third(c)).unregister(name));
      await c.advance(10);
      for (const n of all(c)) assert.is(n.stat().acceptor.entries, names.length + 1, `tombstones kept for a while on ${n.id}`);
      await c.advance(1000 + 2000);
      for (const n of all(c)) {
        const s = n.stat().acceptor;
        assert.is(s.entries, 1, `only the held name is left on ${n.id}`);
        assert.ok(s.cleaned >= names.length, `cleaned on ${n.id}`);
        assert.is(entryOf(n, 'tmp-0'), undefined);
        assert.ok(entryOf(n, 'kept')?.value !== null);
      }
      assert.equal(await c.run(nodeAt(c, other(c)).whereis('kept')), keep.ref);
      // A deleted name can be registered again.
      assert.is(await c.run(a.registerName('tmp-0', a.spawn())), 'yes');
    }));

  test(`${at}: cleanup -> the entry of a name whose owner exited is deleted on every node`, () =>
    withCluster({ nodes: size, settings: { heartbeat: HB, deleteTimeThreshold: 1000, cleanupPeriod: 100 } }, async (c) => {
      const a = nodeAt(c, 0);
      const owner = a.spawn();
      await c.run(a.register('alpha', owner));
      owner.exit();
      await c.advance(3000);
      for (const n of all(c)) assert.is(n.stat().acceptor.entries, 0, `entries on ${n.id}`);
    }));

  test(`${at}: stat -> guards, held names, latencies, rates and acceptor counters move with use`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      const b = nodeAt(c, other(c));
      const s0 = a.stat();
      assert.is(s0.node, a.id);
      assert.equal(s0.members, c.ids);
      assert.is(s0.voting, true);
      assert.is(s0.activeGuards, 0);
      assert.is(s0.heldNames, 0);
      assert.is(s0.register.count, 0);
      assert.is(s0.lookup.count, 0);

      const owners = [a.spawn(), a.spawn(), a.spawn()];
      for (const [i, o] of owners.entries()) await c.run(a.register(`s${i}`, o));
      await c.advance(500);
      const s1 = a.stat();
      assert.is(s1.activeGuards, 3);
      assert.is(s1.heldNames, 3);
      assert.is(s1.register.count, 3);
      assert.ok(s1.register.p99 >= s1.register.p50 && s1.register.p50 >= 0);
      // A majority accepts each grant; the member not asked learns it from the grant notice.
      assert.ok(a.stat().acceptor.acks >= 3, 'acks on the registering node');
      assert.ok(all(c).reduce((n, x) => n + x.stat().acceptor.acks, 0) >= 3 * Math.floor(c.nodes.length / 2 + 1), 'a majority of acks per grant');
      for (const n of all(c)) for (const i of [0, 1, 2]) assert.ok(entryOf(n, `s${i}`)?.value != null, `s${i} held on ${n.id}`);
      assert.ok(s1.rates.acks > 0, 'ack rate');
      assert.ok(s1.rates.requests > 0, 'request rate');
      assert.ok(s1.acceptor.requests > 0);

      const lookups = b.stat().lookup.count;
      await c.run(b.whereis('unknown-name'));
      await c.run(b.lookup('unknown-name'));
      assert.is(b.stat().lookup.count, lookups + 2);

      // Two registrations of one name racing from one node: the loser's ballot is refused somewhere.
      const nacks = all(c).reduce((sum, n) => sum + n.stat().acceptor.nacks, 0);
      const race = await c.run(Promise.all([b.registerName('raced', b.spawn()), b.registerName('raced', b.spawn())]));
      assert.equal([...race].sort(), ['no', 'yes']);
      await c.advance(500);
      const nacksAfter = all(c).reduce((sum, n) => sum + n.stat().acceptor.nacks, 0);
      assert.ok(nacksAfter > nacks, `nacks ${nacks} -> ${nacksAfter}`);
      assert.ok(all(c).some((n) => n.stat().rates.nacks > 0), 'nack rate');

      owners[0]?.exit();
      await c.run(a.unregister('s1'));
      await c.advance(50);
      const s2 = a.stat();
      assert.is(s2.activeGuards, b === a ? 2 : 1);
      assert.is(s2.heldNames, b === a ? 2 : 1);
      // Renewals keep the acceptors busy while a name is held.
      const renewals = a.stat().acceptor.renewals;
      await c.advance(5 * HB);
      assert.ok(a.stat().acceptor.renewals > renewals, 'renewals counted');
      assert.ok(a.stat().renewer.rounds > 0);
    }));

  test(`${at}: stat called for the first time after activity -> rates report that activity (last 10 s)`, () =>
    withCluster(opts, async (c) => {
      const a = nodeAt(c, 0);
      for (let i = 0; i < 5; i++) {
        await c.run(a.register(`r${i}`, a.spawn()));
        await c.advance(1000);
      }
      const s = a.stat();
      assert.ok(s.acceptor.acks >= 5, 'the counters moved');
      assert.ok(s.rates.requests > 0, `requests rate ${s.rates.requests}`);
      assert.ok(s.rates.acks > 0, `acks rate ${s.rates.acks}`);
    }));
}

test.run();
