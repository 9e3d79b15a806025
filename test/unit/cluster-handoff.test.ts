/**
 * Handoff (update) under faults, and what an ended registration may still do: a target node the holder
 * cannot reach, a target that dies mid-handoff, racing updates, and a stale Registration's unregister().
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortedError, NoConsensusError, OwnerNotAliveError, TimeoutError } from '../../lib/index.js';
import type { Ballot } from '../../lib/protocol/messages.js';
import type { TestCluster } from '../../lib/testing.js';
import { all, expectReject, injectAs, nodeAt, registerEventually, tapMessages, withCluster } from './cluster-helpers.js';

const HB = 1000;
const opts = { nodes: 3, settings: { heartbeat: HB } };

async function whereisEverywhere(c: TestCluster, name: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const n of all(c)) out.push(await c.run(n.whereis(name)));
  return out;
}

function cutBoth(c: TestCluster, a: string, b: string): void {
  c.net.cutOneWay(a, b);
  c.net.cutOneWay(b, a);
}

test('handoff: the holder cannot reach the target node -> update rejects, the old owner keeps the name', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const owner = n1.spawn();
    const reg = await c.run(n1.register('h', owner));
    cutBoth(c, n1.id, n2.id);
    await expectReject(c, n1.update('h', n2.spawn()), [TimeoutError, NoConsensusError]);
    await expectReject(c, n3.update('h', n2.spawn()), [TimeoutError, NoConsensusError]);
    assert.ok(reg.valid);
    assert.is(reg.signal.aborted, false);
    assert.is(owner.signal.aborted, false);
    c.net.heal();
    await c.advance(2 * HB);
    assert.equal(await whereisEverywhere(c, 'h'), [owner.ref, owner.ref, owner.ref]);
    assert.is(n2.stat().activeGuards, 0, 'the waiting guard on the target went away');
  }));

test('handoff: update times out reaching the target -> the TimeoutError describes the update, not a register', () =>
  withCluster(opts, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    await c.run(n1.register('h', n1.spawn()));
    cutBoth(c, n1.id, n2.id);
    const started = c.clock.now();
    const e = await expectReject(c, n1.update('h', n2.spawn()), [TimeoutError, NoConsensusError]);
    const took = c.clock.now() - started;
    if (e instanceof TimeoutError) {
      assert.is(e.operation, 'update');
      assert.ok(e.timeoutMs <= took + 1, `timeoutMs ${e.timeoutMs} is at most what the update waited (${took} ms)`);
    }
  }));

test('handoff: the target node dies after the marker is committed -> update rejects, the name is free after expiry', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const owner = n1.spawn();
    const reg = await c.run(n1.register('h', owner));
    c.net.set({ minDelay: 10, maxDelay: 10 });
    const p = n1.update('h', n2.spawn());
    // hoff +10, hoffR +20, marker commit +30, acks +40, hgo arrives +50: n2 dies in between.
    c.clock.setTimeout(() => { void c.crash(1); }, 45);
    await expectReject(c, p, [NoConsensusError, TimeoutError, AbortedError]);
    assert.is(reg.ended, 'handoff', 'the old owner was revoked before the move');
    c.net.set({ minDelay: 0, maxDelay: 0 });
    const o3 = n3.spawn();
    await registerEventually(c, n3, 'h', o3, 200, 6 * HB);
    assert.equal(await c.run(n1.whereis('h')), o3.ref);
    assert.is(n1.stat().activeGuards, 0);
  }));

test('handoff: two updates of one name race to different nodes -> one owner in the end, every node agrees', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    await c.run(n1.register('h', n1.spawn()));
    c.net.set({ minDelay: 0, maxDelay: 5 });
    const a = n2.spawn();
    const b = n3.spawn();
    const results = await c.run(Promise.allSettled([n3.update('h', a), n2.update('h', b)]));
    for (const r of results) {
      if (r.status === 'rejected') {
        assert.ok([TimeoutError, NoConsensusError, AbortedError, OwnerNotAliveError].some((k) => r.reason instanceof k), (r.reason as Error).name);
      }
    }
    await c.advance(2 * HB);
    const where = await whereisEverywhere(c, 'h');
    assert.is(new Set(where.map((w) => JSON.stringify(w))).size, 1, `agree: ${JSON.stringify(where)}`);
    const held = all(c).filter((n) => n.registration('h')?.valid === true);
    assert.ok(held.length <= 1, 'at most one node holds it');
    if (held.length === 1) assert.equal(where[0], held[0]?.registration('h')?.owner);
  }));

test('registration: unregister() on a registration that was handed off -> does not end the new owner\'s registration', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const old = await c.run(n1.register('stale', n1.spawn()));
    const next = n2.spawn();
    await c.run(n1.update('stale', next));
    assert.is(old.ended, 'handoff');
    const current = n2.registration('stale');
    assert.ok(current?.valid);
    await c.run(old.unregister());
    await c.advance(50);
    assert.ok(current.valid, 'the new owner still holds the name');
    assert.equal(await c.run(n3.whereis('stale')), next.ref);
  }));

test('registration: unregister() on a registration lost to a partition -> does not end the owner that holds it now', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    const old = await c.run(n1.register('stale', n1.spawn()));
    c.net.isolate(n1.id);
    await c.advance(4 * HB);
    assert.is(old.ended, 'lost');
    const next = n2.spawn();
    await registerEventually(c, n2, 'stale', next, 100, 5 * HB);
    c.net.heal();
    await c.advance(10);
    await c.run(old.unregister());
    await c.advance(50);
    assert.ok(n2.registration('stale')?.valid, 'the new owner still holds the name');
    assert.equal(await c.run(n3.whereis('stale')), next.ref);
  }));

test('handoff: a probe of a marker whose target guard here waits for its go -> holds (the asker gives up; no takeover)', () =>
  withCluster(opts, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    await c.run(n1.register('h', n1.spawn()));
    const held = n1.acceptor.live('h')[0];
    assert.ok(held !== undefined);
    const target = n2.spawn();
    const toN3 = tapMessages(c, n2.id, n3.id);
    // n1 offers the name to an owner on n2: n2's guard now waits for the go (which never comes here).
    injectAs(n2, n1, [{ type: 'hoff', rid: 1, name: 'h', owner: target.ref, from: held.ballot }]);
    await c.clock.flush();
    const probe = (rid: number, b: Ballot): void => injectAs(n2, n3, [{ type: 'probe', rid, name: 'h', owner: target.ref, b }]);
    probe(2, held.ballot);
    probe(3, { t: held.ballot.t + 1, g: held.ballot.g });
    await c.clock.flush();
    const replies = toN3.filter((m) => m.type === 'probeR');
    assert.equal(replies, [
      { type: 'probeR', rid: 2, alive: true, holds: true },
      { type: 'probeR', rid: 3, alive: true, holds: false },
    ]);
  }));

test.run();
