/**
 * Guard records and the guard set: a held name's guard is parked (no request ids, no timers left) and
 * its record stands in for it, with the grant it made; an event wakes a guard in `monitoring` with that
 * same grant. Owner lists threaded through records find exactly an owner's records.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/clock.js';
import { Membership } from '../../lib/cluster/membership.js';
import type { GuardCallbacks } from '../../lib/guard/guard.js';
import { GuardSet } from '../../lib/guard/guard-set.js';
import { initialState, waitingState, type GuardState } from '../../lib/guard/machine.js';
import { GuardRecord, OwnerIndex } from '../../lib/guard/record.js';
import { Renewer } from '../../lib/guard/renewer.js';
import type { Ballot, Message, OwnerRef, Value } from '../../lib/protocol/messages.js';
import { Registration, type RegistrationHost } from '../../lib/registration.js';
import { Rpc } from '../../lib/rpc.js';
import { MemoryNetwork, MemoryTransport } from '../../lib/transport/memory.js';

const HB = 1000;
const NODE = 'a';
const owner = (id: number): OwnerRef => ({ node: NODE, inc: 7, id });

const host: RegistrationHost = { leaseUntil: () => Infinity, now: () => 0, unregister: () => Promise.resolve() };

interface Rig { clock: ManualClock; rpc: Rpc; membership: Membership; renewer: Renewer<GuardRecord>; set: GuardSet; events: string[]; ended: number }

function rig(): Rig {
  const clock = new ManualClock();
  const net = new MemoryNetwork(clock);
  const rpc = new Rpc({ transport: new MemoryTransport(net, NODE, 7) });
  const membership = new Membership(NODE, { version: 1, members: [{ id: NODE, endpoint: 'mem://a' }] });
  const renewer = new Renewer<GuardRecord>({ clock, rpc, members: () => membership.ids(), heartbeat: () => HB, random: () => 0.5 });
  const events: string[] = [];
  let set: GuardSet | undefined;
  const callbacks: GuardCallbacks = {
    granted: () => events.push('granted'),
    failed: () => events.push('failed'),
    revoke: (_g, reason) => events.push(`revoke ${reason}`),
    release: () => events.push('release'),
    handoffDone: () => events.push('handoff-done'),
    stopped: (g) => {
      events.push('stopped');
      if (set?.ended(g) !== undefined) r.ended++;
    },
    idle: (g) => set?.park(g),
  };
  set = new GuardSet({ clock, rpc, random: () => 0.5, reachable: () => true, membership, renewer, callbacks },
    { node: NODE, incarnation: 7, termFloor: () => 0, phaseTimeout: 100, turn: () => 0 });
  const r: Rig = { clock, rpc, membership, renewer, set, events, ended: 0 };
  return r;
}

/** A record whose guard sits in `monitoring` with a grant the renewer holds, as after a commit. */
function held(r: Rig, name: string, id: number, via?: 'handoff'): { rec: GuardRecord; b: Ballot; value: Value } {
  // Guard ids are node/incarnation/counter, counting from 1 per guard set.
  const b: Ballot = { t: 1_764_000_000_000_000 + id, g: `${NODE}/7/${r.set.size + r.ended + 1}` };
  const value: Value = via === undefined ? { owner: owner(id), gnode: NODE, hb: HB } : { owner: owner(id), gnode: NODE, hb: HB, via };
  const rec = r.set.create(name, owner(id), HB, { phase: 'monitoring', b, value, seq: 1 });
  assert.is(rec.gid, b.g);
  rec.grant(value, 1, new Registration({ name, owner: owner(id), token: b.t }, host));
  r.renewer.add(rec, r.clock.now());
  return { rec, b, value };
}

test('record: ballot and value are the ones committed (plain and by handoff); none before the grant', () => {
  const r = rig();
  const plain = held(r, 'p', 1);
  assert.equal(plain.rec.b, plain.b);
  assert.equal(plain.rec.value, plain.value);
  assert.is(plain.rec.term, plain.b.t);
  assert.ok(plain.rec.granted);
  const moved = held(r, 'm', 2, 'handoff');
  assert.equal(moved.rec.value, moved.value);
  assert.equal(Object.keys(plain.rec.value).sort(), ['gnode', 'hb', 'owner'], 'no via key on a plain grant');
  const fresh = r.set.create('f', owner(3), HB, initialState());
  assert.not.ok(fresh.granted);
  assert.is(fresh.term, 0);
  assert.throws(() => fresh.b, RangeError);
  assert.throws(() => fresh.value, RangeError);
  r.renewer.stop();
});

test('guard set: an idle held guard is parked -> no open request ids or timers of its own; counted still', () => {
  const r = rig();
  const { rec } = held(r, 'x', 1);
  const timersBefore = r.clock.pendingTimers();
  const guard = rec.guard;
  assert.ok(guard !== undefined);
  guard.handle({ type: 'timeout', now: 0 });
  assert.is(rec.guard, undefined, 'parked');
  assert.is(r.set.size, 1);
  assert.is(r.set.running(rec.gid), undefined, 'no running guard by that id');
  assert.is(r.rpc.open_, 0);
  assert.ok(r.clock.pendingTimers() <= timersBefore);
  assert.equal(r.set.all(), [rec]);
  r.renewer.stop();
});

test('guard set: waking a parked record -> a guard in monitoring with the same grant; it handles the event', () => {
  const r = rig();
  const { rec, b, value } = held(r, 'x', 1);
  rec.guard?.handle({ type: 'timeout', now: 0 });
  assert.is(rec.guard, undefined);
  const guard = r.set.wake(rec);
  assert.is(rec.guard, guard);
  assert.equal(guard.state, { phase: 'monitoring', b, value, seq: 1 } satisfies GuardState);
  assert.is(guard.ctx.gid, rec.gid);
  assert.is(guard.ctx.name, 'x');
  assert.is(r.set.wake(rec), guard, 'a running guard is returned as is');
  assert.is(r.set.size, 1);
  r.renewer.remove('x');
  guard.handle({ type: 'lease-lost' });
  assert.equal(r.events.slice(-3), ['revoke lost', 'release', 'stopped']);
  assert.is(r.set.size, 0);
  r.renewer.stop();
});

test('guard set: a guard whose record is not the renewed holding -> keeps running', () => {
  const r = rig();
  const { rec } = held(r, 'x', 1);
  r.renewer.remove('x');
  rec.guard?.handle({ type: 'timeout', now: 0 });
  assert.ok(rec.guard !== undefined, 'not parked: nothing else would find it');
  r.renewer.stop();
});

test('guard set: a lease the renewer gives up -> the parked record wakes and revokes', async () => {
  const r = rig();
  const { rec } = held(r, 'x', 1);
  rec.guard?.handle({ type: 'timeout', now: 0 });
  r.renewer.stop();
  r.renewer.checkLeases();
  assert.is(r.events.includes('revoke lost'), false, 'still valid');
  await r.clock.advance(4 * HB);
  r.renewer.checkLeases();
  assert.equal(r.events.slice(-3), ['revoke lost', 'release', 'stopped']);
  assert.is(r.set.size, 0);
  assert.equal(r.set.all(), []);
});

test('guard set: a handoff receiver waiting while the member list changes -> its takeover asks the new list', () => {
  const r = rig();
  const from: Ballot = { t: 1_764_000_000_000_000, g: 'z/1/1' };
  const rec = r.set.create('x', owner(1), HB, waitingState(from));
  rec.guard?.wait(10 * HB);
  r.membership.merge({ version: 2, members: [{ id: NODE, endpoint: 'mem://a' }, { id: 'b', endpoint: 'mem://b' }] });
  const sent: [string, Message][] = [];
  const send = r.rpc.send.bind(r.rpc);
  r.rpc.send = (peer, msg) => {
    sent.push([peer, msg]);
    send(peer, msg);
  };
  rec.guard?.handle({ type: 'go', seq: 1, now: 0 });
  const prepares = sent.filter(([, m]) => m.type === 'prep');
  assert.equal(prepares.map(([peer]) => peer).sort(), [NODE, 'b']);
  for (const [, m] of prepares) assert.is(m.type === 'prep' ? m.mv : undefined, 2);
  r.renewer.stop();
});

test('owner index: each owner lists exactly its records, whatever the order of removal', () => {
  const r = rig();
  const idx = new OwnerIndex();
  const recs = Array.from({ length: 9 }, (_, i) => r.set.create(`n${i}`, owner(i % 3), HB, initialState()));
  for (const rec of recs) idx.add(rec);
  assert.is(idx.owners, 3);
  const names = (id: number): string[] => idx.of(id).map((x) => x.name).sort();
  assert.equal(names(0), ['n0', 'n3', 'n6']);
  idx.remove(recs[3] as GuardRecord);
  idx.remove(recs[3] as GuardRecord);
  assert.equal(names(0), ['n0', 'n6']);
  idx.remove(recs[6] as GuardRecord);
  idx.remove(recs[0] as GuardRecord);
  assert.equal(names(0), []);
  assert.is(idx.owners, 2);
  assert.equal(names(1), ['n1', 'n4', 'n7']);
  idx.remove(recs[1] as GuardRecord);
  assert.equal(names(1), ['n4', 'n7']);
  idx.add(recs[1] as GuardRecord);
  assert.equal(names(1), ['n1', 'n4', 'n7']);
  r.renewer.stop();
});

test.run();
