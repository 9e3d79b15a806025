/**
 * One-round-trip registration: a guard's first prepare for a free name carries its value, acceptors that
 * hold no value for the name accept it with the promise, and a majority of such accepts is the grant.
 * Driven at three levels: one acceptor, the pure guard machine, and a memory cluster with fixed delays.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Acceptor } from '../../lib/acceptor/acceptor.js';
import { ManualClock } from '../../lib/clock.js';
import { initialState, ownValue, transition, type GuardContext, type GuardEffect, type GuardEvent, type GuardState } from '../../lib/guard/machine.js';
import type { Ballot, Message, OwnerRef, PrepareReply, Value } from '../../lib/protocol/messages.js';
import { entryOf, injectAs, nodeAt, tapMessages, withCluster } from './cluster-helpers.js';

// ---- one acceptor ------------------------------------------------------------------------------------

const HB = 1000;
const NAME = 'cron:report';

function acceptor(): { a: Acceptor; clock: ManualClock } {
  const clock = new ManualClock();
  const settings = { deleteTimeThreshold: 10_000, deleteLimit: 100, promiseTtl: 3000 };
  return { a: new Acceptor({ clock, settings: () => settings }, { shards: 2, termFloor: 0, voting: true }), clock };
}

const val = (node: string, id = 1): Value => ({ owner: { node, inc: 1, id }, gnode: node, hb: HB });
const b = (t: number, g: string): Ballot => ({ t, g });
let rid = 0;
const fast = (a: Acceptor, ballot: Ballot, v: Value): PrepareReply => a.prepare({ type: 'prep', rid: ++rid, name: NAME, b: ballot, mode: 'free', v });
const plain = (a: Acceptor, ballot: Ballot): PrepareReply => a.prepare({ type: 'prep', rid: ++rid, name: NAME, b: ballot, mode: 'free' });
const commit = (a: Acceptor, ballot: Ballot, v: Value | null, seq: number): boolean => a.commit({ type: 'com', rid: ++rid, name: NAME, b: ballot, v, seq }).ok;
const view = (a: Acceptor) => a.read({ type: 'read', rid: ++rid, name: NAME }).entry;

test('acceptor: prepare with a value on an absent name -> promised and accepted at seq 1', () => {
  const { a } = acceptor();
  const r = fast(a, b(5, 'g1'), val('n1'));
  assert.is(r.ok, true);
  assert.is(r.acc, true);
  assert.equal(view(a), { promise: b(5, 'g1'), ballot: b(5, 'g1'), value: val('n1'), seq: 1, expired: false });
});

test('acceptor: prepare with a value over a tombstone -> accepted', () => {
  const { a } = acceptor();
  assert.ok(plain(a, b(1, 'g0')).ok);
  assert.ok(commit(a, b(1, 'g0'), null, 1));
  const r = fast(a, b(2, 'g1'), val('n1'));
  assert.is(r.acc, true);
  assert.equal(view(a)?.value, val('n1'));
});

test('acceptor: prepare with a value over an expired value -> promise only (the guard must ask the holder first)', async () => {
  const { a, clock } = acceptor();
  assert.ok(plain(a, b(1, 'g0')).ok);
  assert.ok(commit(a, b(1, 'g0'), val('n2'), 1));
  await clock.advance(3 * HB);
  const r = fast(a, b(2, 'g1'), val('n1'));
  assert.is(r.ok, true);
  assert.is(r.acc, undefined);
  assert.equal(view(a)?.value, val('n2'));
  assert.equal(view(a)?.promise, b(2, 'g1'));
});

test('acceptor: prepare with a value over a live value -> refused held, nothing changes', () => {
  const { a } = acceptor();
  assert.ok(plain(a, b(1, 'g0')).ok);
  assert.ok(commit(a, b(1, 'g0'), val('n2'), 1));
  const r = fast(a, b(2, 'g1'), val('n1'));
  assert.is(r.ok, false);
  assert.is(r.why, 'held');
  assert.equal(view(a)?.ballot, b(1, 'g0'));
  assert.equal(view(a)?.promise, b(1, 'g0'));
});

test('acceptor: abandon of a value accepted in one round trip -> void tombstone; a lease holder\'s sync may replace it, a later prepare with a value may not land on it', () => {
  const { a } = acceptor();
  assert.ok(fast(a, b(9, 'rival'), val('n3')).acc);
  a.abandon({ type: 'abandon', name: NAME, b: b(9, 'rival') });
  assert.equal(view(a)?.value, null);
  assert.equal(view(a)?.ballot, b(9, 'rival'));
  // Another rival: promise only, so the holder's sync below still reaches this acceptor.
  const r = fast(a, b(10, 'rival2'), val('n3', 2));
  assert.is(r.ok, true);
  assert.is(r.acc, undefined);
  const s = a.sync('n1', { type: 'sync', rid: ++rid, hb: HB, part: 0, parts: 1, entries: [[NAME, b(4, 'holder'), val('n1'), 1]] });
  assert.equal(s?.refused, []);
  assert.equal(view(a)?.value, val('n1'));
  assert.equal(view(a)?.ballot, b(4, 'holder'));
  // Terms used here stay used: fencing tokens never repeat.
  assert.is(plain(a, b(10, 'x')).ok, false);
});

test('acceptor: a live value accepted in one round trip and not abandoned -> a lower ballot\'s sync is refused', () => {
  const { a } = acceptor();
  assert.ok(fast(a, b(9, 'winner'), val('n3')).acc);
  const s = a.sync('n1', { type: 'sync', rid: ++rid, hb: HB, part: 0, parts: 1, entries: [[NAME, b(4, 'stale'), val('n1'), 1]] });
  assert.is(s?.refused.length, 1);
  assert.equal(view(a)?.value, val('n3'));
});

test('acceptor: abandon never touches a renewed or later seq, nor another ballot', () => {
  const { a } = acceptor();
  assert.ok(plain(a, b(3, 'g')).ok);
  assert.ok(commit(a, b(3, 'g'), val('n1'), 1));
  assert.ok(commit(a, b(3, 'g'), val('n2'), 2));
  a.abandon({ type: 'abandon', name: NAME, b: b(3, 'g') });
  assert.equal(view(a)?.value, val('n2'));
  a.abandon({ type: 'abandon', name: NAME, b: b(3, 'other') });
  assert.equal(view(a)?.value, val('n2'));
});

test('acceptor: learn (a grant notice) -> installs a decided value here when absent, confirms a copy, never goes below what is here', () => {
  const { a } = acceptor();
  assert.is(a.learn(NAME, b(5, 'g'), val('n1'), 1), true);
  assert.equal(view(a), { promise: b(5, 'g'), ballot: b(5, 'g'), value: val('n1'), seq: 1, expired: false });
  assert.equal(a.live().map((e) => e.confirmed), [true]);
  // Released meanwhile (tombstone seq 2 of the same ballot): a late notice changes nothing.
  assert.ok(commit(a, b(5, 'g'), null, 2));
  assert.is(a.learn(NAME, b(5, 'g'), val('n1'), 1), false);
  assert.equal(view(a)?.value, null);
  // A higher promise here: the older grant is not installed under it.
  assert.ok(plain(a, b(8, 'rival')).ok);
  assert.is(a.learn(NAME, b(7, 'other'), val('n2'), 1), false);
  assert.equal(view(a)?.promise, b(8, 'rival'));
});

// ---- the guard machine -----------------------------------------------------------------------------

const OWNER: OwnerRef = { node: 'n1', inc: 1, id: 1 };
const CTX: GuardContext = { name: NAME, gid: 'n1/1/1', node: 'n1', owner: OWNER, members: ['n1', 'n2', 'n3'], hb: HB, phaseTimeout: 500, termFloor: 0 };

function feed(s: GuardState, events: readonly GuardEvent[]): [GuardState, GuardEffect[]] {
  return feedIn(CTX, s, events);
}

function feedIn(ctx: GuardContext, s: GuardState, events: readonly GuardEvent[]): [GuardState, GuardEffect[]] {
  const out: GuardEffect[] = [];
  for (const ev of events) {
    const [n, effects] = transition(ctx, s, ev);
    s = n;
    out.push(...effects);
  }
  return [s, out];
}
const prepR = (from: string, ballot: Ballot, extra: Partial<PrepareReply>, now = 0): GuardEvent => ({
  type: 'reply', from, now, msg: { type: 'prepR', rid: 1, name: NAME, b: ballot, ok: true, floor: 0, ...extra } as Message,
});

function start(now = 0): [Extract<GuardState, { phase: 'prepare' }>, GuardEffect[]] {
  const [s, effects] = feed(initialState(), [{ type: 'start', now }]);
  assert.is(s.phase, 'prepare');
  return [s as Extract<GuardState, { phase: 'prepare' }>, effects];
}

test('machine: first attempt -> the prepare carries the guard\'s own value', () => {
  const [, effects] = start();
  const send = effects.find((e) => e.type === 'send');
  assert.ok(send !== undefined && send.msg.type === 'prep');
  assert.equal(send.msg.type === 'prep' ? send.msg.v : undefined, ownValue(CTX));
});

test('machine: a majority accepted -> granted at seq 1 with the prepare\'s send time as the lease start, no commit sent', () => {
  const [s] = start(40);
  const [m, effects] = feed(s, [prepR('n1', s.b, { acc: true }, 41), prepR('n3', s.b, { acc: true }, 43)]);
  assert.is(m.phase, 'monitoring');
  assert.equal(effects.map((e) => e.type), ['granted']);
  const g = effects[0] as Extract<GuardEffect, { type: 'granted' }>;
  assert.is(g.seq, 1);
  assert.is(g.sentAt, 40);
  assert.equal(g.value, ownValue(CTX));
});

test('machine: a majority promised but one only promised (expired value there) -> the two-phase path (probe, then commit)', () => {
  const [s] = start();
  const expired = { promise: s.b, ballot: b(1, 'old'), value: val('n2'), seq: 1, expired: true };
  const [r, effects] = feed(s, [prepR('n1', s.b, { acc: true }), prepR('n2', s.b, { entry: expired })]);
  assert.is(r.phase, 'reg_check');
  assert.ok(effects.some((e) => e.type === 'send' && e.msg.type === 'probe'));
});

test('machine: one accept, then refusals -> back off and abandon the ballot (which takes the accepted value back)', () => {
  const [s] = start();
  const held = { promise: b(1, 'x'), ballot: b(1, 'x'), value: val('n2'), seq: 1, expired: false };
  const [r, effects] = feed(s, [prepR('n1', s.b, { acc: true }), prepR('n2', s.b, { ok: false, why: 'ballot', entry: held }), prepR('n3', s.b, { ok: false, why: 'ballot' })]);
  assert.is(r.phase, 'backoff');
  assert.ok(effects.some((e) => e.type === 'abandon'));
  // The retry is a plain two-phase prepare above every term seen.
  const [p, retry] = feed(r, [{ type: 'timeout', now: 1 }]);
  assert.is(p.phase, 'prepare');
  const send = retry.find((e) => e.type === 'send');
  assert.ok(send !== undefined && send.msg.type === 'prep' && send.msg.v === undefined);
});

test('machine: a majority holds the name (one acceptor lagged and accepted) -> probe; holder holds -> failed already with abandon', () => {
  const [s] = start();
  const held = { promise: b(1, 'x'), ballot: b(1, 'x'), value: val('n2'), seq: 1, expired: false };
  const [r] = feed(s, [prepR('n1', s.b, { acc: true }), prepR('n2', s.b, { ok: false, why: 'held', entry: held }), prepR('n3', s.b, { ok: false, why: 'held', entry: held })]);
  assert.is(r.phase, 'reg_check');
  const [done, effects] = feed(r, [{ type: 'reply', from: 'n2', now: 2, msg: { type: 'probeR', rid: 1, alive: true, holds: true } }]);
  assert.is(done.phase, 'stopped');
  assert.equal(effects.map((e) => e.type), ['abandon', 'failed', 'stopped']);
});

const THRIFTY: GuardContext = { ...CTX, first: ['n1', 'n2'] };

test('machine: first wave of a majority -> the prepare goes only to it, with a short timer; two accepts grant, the third member is never asked', () => {
  const [s, effects] = feedIn(THRIFTY, initialState(), [{ type: 'start', now: 0 }]);
  const send = effects.find((e) => e.type === 'send');
  assert.equal(send?.type === 'send' ? [...send.to] : [], ['n1', 'n2']);
  const timer = effects.find((e) => e.type === 'timer');
  assert.is(timer?.type === 'timer' ? timer.ms : 0, THRIFTY.phaseTimeout / 10);
  const p = s as Extract<GuardState, { phase: 'prepare' }>;
  const [m, more] = feedIn(THRIFTY, s, [prepR('n2', p.b, { acc: true }), prepR('n1', p.b, { acc: true })]);
  assert.is(m.phase, 'monitoring');
  assert.equal(more.map((e) => e.type), ['granted']);
});

test('machine: first wave, one member only promises or refuses -> the same prepare (ballot and value) goes to the rest at once', () => {
  const [s] = feedIn(THRIFTY, initialState(), [{ type: 'start', now: 0 }]);
  const p = s as Extract<GuardState, { phase: 'prepare' }>;
  const [w, effects] = feedIn(THRIFTY, s, [prepR('n1', p.b, { acc: true }), prepR('n2', p.b, { ok: false, why: 'recovering' })]);
  assert.is(w.phase, 'prepare');
  const send = effects.find((e) => e.type === 'send');
  assert.ok(send?.type === 'send' && send.msg.type === 'prep');
  assert.equal([...send.to], ['n3']);
  assert.equal(send.msg.type === 'prep' ? [send.msg.b, send.msg.v] : [], [p.b, ownValue(THRIFTY)]);
  assert.is(effects.find((e) => e.type === 'timer')?.type === 'timer' ? (effects.find((e) => e.type === 'timer') as { ms: number }).ms : 0, THRIFTY.phaseTimeout);
  const [m, more] = feedIn(THRIFTY, w, [prepR('n3', p.b, { acc: true })]);
  assert.is(m.phase, 'monitoring');
  assert.equal(more.map((e) => e.type), ['granted']);
});

test('machine: first wave, both asked say the name is held -> straight to the probe, the third member is not asked', () => {
  const [s] = feedIn(THRIFTY, initialState(), [{ type: 'start', now: 0 }]);
  const p = s as Extract<GuardState, { phase: 'prepare' }>;
  const held = { promise: b(1, 'x'), ballot: b(1, 'x'), value: val('n2'), seq: 1, expired: false };
  const [r, effects] = feedIn(THRIFTY, s, [prepR('n1', p.b, { ok: false, why: 'held', entry: held }), prepR('n2', p.b, { ok: false, why: 'held', entry: held })]);
  assert.is(r.phase, 'reg_check');
  const sendsTo = effects.flatMap((e) => (e.type === 'send' ? [...e.to] : []));
  assert.equal(sendsTo, ['n2'], 'only the probe, to the holder\'s node');
});

test('machine: first wave silent past its short timer -> the rest is asked; a later full timeout fails as before', () => {
  const [s] = feedIn(THRIFTY, initialState(), [{ type: 'start', now: 0 }]);
  const [w, effects] = feedIn(THRIFTY, s, [{ type: 'timeout', now: 50 }]);
  assert.is(w.phase, 'prepare');
  const send = effects.find((e) => e.type === 'send');
  assert.equal(send?.type === 'send' ? [...send.to] : [], ['n3']);
  const [f, fx] = feedIn(THRIFTY, w, [{ type: 'timeout', now: 550 }]);
  assert.is(f.phase, 'backoff');
  assert.ok(fx.some((e) => e.type === 'abandon'));
});

// ---- a cluster -------------------------------------------------------------------------------------

test('cluster: messages take 10 ms -> a free name is granted after one round trip on every node\'s acceptor', () =>
  withCluster({ nodes: 3, settings: { heartbeat: HB } }, async (c) => {
    const n1 = nodeAt(c, 0);
    c.net.set({ minDelay: 10, maxDelay: 10 });
    const t0 = c.clock.now();
    let grantedAt = -1;
    const p = n1.register('fast', n1.spawn()).then((r) => { grantedAt = c.clock.now(); return r; });
    const reg = await c.run(p);
    assert.is(grantedAt - t0, 20);
    assert.ok(reg.valid);
    await c.advance(20);
    for (const n of c.nodes) assert.equal(entryOf(n, 'fast')?.ballot?.t, reg.token, `${n.id} accepted the value`);
    // A second register of the held name is refused and leaves the holder's value everywhere.
    const n2 = nodeAt(c, 1);
    assert.is(await c.run(n2.registerName('fast', n2.spawn())), 'no');
    await c.advance(50);
    for (const n of c.nodes) assert.equal(entryOf(n, 'fast')?.ballot?.t, reg.token, `${n.id} still holds the winner`);
    assert.ok(reg.valid);
  }));

test('cluster: one member cut off -> still granted in one round trip (its peer is chosen first or asked after a refusal)', () =>
  withCluster({ nodes: 3, settings: { heartbeat: HB } }, async (c) => {
    const [n1, n3] = [nodeAt(c, 0), nodeAt(c, 2)];
    c.net.partition([n3.id], [n1.id, nodeAt(c, 1).id]);
    c.net.set({ minDelay: 10, maxDelay: 10 });
    for (let i = 0; i < 4; i++) {
      const t0 = c.clock.now();
      const reg = await c.run(n1.register(`cut-${i}`, n1.spawn()));
      assert.ok(reg.valid);
      assert.ok(c.clock.now() - t0 <= 20 + 50, `granted within one round trip and the widening wait (${c.clock.now() - t0} ms)`);
    }
  }));

test('cluster: a probe for a ballot whose guard is still acquiring (acks in flight) -> "holds", so no one takes over a grant about to be made', () =>
  withCluster({ nodes: 3, settings: { heartbeat: HB } }, async (c) => {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    c.net.set({ minDelay: 10, maxDelay: 10 });
    const toN2 = tapMessages(c, n1.id, n2.id);
    const p = n1.register('pending', n1.spawn());
    await c.advance(5); // n1 has accepted its own value; the peer's accept is still on its way
    const mine = entryOf(n1, 'pending');
    assert.ok(mine?.ballot !== undefined && mine.value != null, 'accepted here already');
    const probe: Message = { type: 'probe', rid: 77, name: 'pending', owner: mine.value.owner, b: mine.ballot };
    injectAs(n1, n2, [probe]);
    await c.advance(15);
    assert.equal(toN2.filter((m) => m.type === 'probeR').map((m) => m.type === 'probeR' && m.holds), [true]);
    assert.ok((await c.run(p)).valid);
  }));

test.run();
