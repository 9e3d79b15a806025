/**
 * Guard machine: the pure transition function, event by event, with a 3-member context. Asserts the
 * next phase and the effects (sends, timers, outcomes), then a fast-check property over random event
 * sequences for the invariants every guard life must keep.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  initialState, ownValue, quorum, transition, waitingState,
  type GuardContext, type GuardEffect, type GuardEvent, type GuardState, type Outgoing,
} from '../../lib/guard/machine.js';
import type { Ballot, EntryView, Message, OwnerRef, PrepareReply, Value } from '../../lib/protocol/messages.js';

// ---- helpers ---------------------------------------------------------------------------------------

const MEMBERS = ['n1', 'n2', 'n3'] as const;
const OWNER: OwnerRef = { node: 'n1', inc: 1, id: 1 };
const OTHER: OwnerRef = { node: 'n2', inc: 1, id: 9 };

const CTX: GuardContext = {
  name: 'job:cron', gid: 'n1/1/1', node: 'n1', owner: OWNER, members: MEMBERS,
  hb: 1000, phaseTimeout: 500, termFloor: 0,
};

type Result = readonly [GuardState, readonly GuardEffect[]];

function step(s: GuardState, ev: GuardEvent, ctx: GuardContext = CTX): Result {
  return transition(ctx, s, ev);
}

/** Feeds events in order; returns the last state and every effect produced. */
function run(s: GuardState, events: readonly GuardEvent[], ctx: GuardContext = CTX): [GuardState, GuardEffect[]] {
  const all: GuardEffect[] = [];
  let cur = s;
  for (const ev of events) {
    const [next, effects] = transition(ctx, cur, ev);
    cur = next;
    all.push(...effects);
  }
  return [cur, all];
}

type Send = Extract<GuardEffect, { type: 'send' }>;
const sends = (effects: readonly GuardEffect[]): Send[] => effects.filter((e): e is Send => e.type === 'send');
function only<T extends GuardEffect['type']>(effects: readonly GuardEffect[], type: T): Extract<GuardEffect, { type: T }> {
  const found = effects.filter((e) => e.type === type);
  assert.is(found.length, 1, `exactly one '${type}' effect in ${JSON.stringify(effects)}`);
  return found[0] as Extract<GuardEffect, { type: T }>;
}
const types = (effects: readonly GuardEffect[]): string[] => effects.map((e) => e.type);
function msgOf<T extends Outgoing['type']>(e: Send, type: T): Extract<Outgoing, { type: T }> {
  assert.is(e.msg.type, type);
  return e.msg as Extract<Outgoing, { type: T }>;
}

function phase<P extends GuardState['phase']>(s: GuardState, p: P): Extract<GuardState, { phase: P }> {
  assert.is(s.phase, p);
  return s as Extract<GuardState, { phase: P }>;
}

const reply = (from: string, msg: Message, now = 0): GuardEvent => ({ type: 'reply', from, msg, now });

function prepR(from: string, b: Ballot, ok: boolean, extra: { why?: PrepareReply['why']; entry?: EntryView; floor?: number } = {}, now = 0): GuardEvent {
  const msg: PrepareReply = {
    type: 'prepR', rid: 1, name: CTX.name, b, ok, floor: extra.floor ?? 0,
    ...(extra.why === undefined ? {} : { why: extra.why }), ...(extra.entry === undefined ? {} : { entry: extra.entry }),
  };
  return reply(from, msg, now);
}

function comR(from: string, b: Ballot, seq: number, ok = true, now = 0): GuardEvent {
  return reply(from, { type: 'comR', rid: 1, name: CTX.name, b, seq, ok }, now);
}

function heldView(b: Ballot, owner: OwnerRef, seq = 1, expired = false): EntryView {
  return { promise: b, ballot: b, value: { owner, gnode: owner.node, hb: 1000 }, seq, expired };
}

/** Starts a guard and returns its prepare state. */
function started(ctx: GuardContext = CTX, now = 0): [Extract<GuardState, { phase: 'prepare' }>, readonly GuardEffect[]] {
  const [s, effects] = step(initialState(), { type: 'start', now }, ctx);
  return [phase(s, 'prepare'), effects];
}

/** A guard granted with ballot b (prepare + commit majorities). */
function granted(): Extract<GuardState, { phase: 'monitoring' }> {
  const [p] = started();
  const [c] = run(p, [prepR('n1', p.b, true), prepR('n2', p.b, true)]);
  const [m] = run(c, [comR('n1', p.b, 1), comR('n2', p.b, 1)]);
  return phase(m, 'monitoring');
}

// ---- acquiring -------------------------------------------------------------------------------------

test('start: fresh guard -> prepare phase, prep to every member with term max(maxTerm+1, floor), phase timer', () => {
  const [s, effects] = started();
  assert.equal(s.b, { t: 1, g: CTX.gid });
  assert.is(s.mode, 'free');
  assert.is(s.attempt, 0);
  const send = only(effects, 'send');
  assert.equal([...send.to].sort(), [...MEMBERS]);
  const m = msgOf(send, 'prep');
  assert.equal(m.b, s.b);
  assert.is(m.mode, 'free');
  assert.is(m.name, CTX.name);
  assert.is(m.from, undefined);
  const timer = only(effects, 'timer');
  assert.is(timer.ms, CTX.phaseTimeout);
  assert.is(timer.jitter, false);
});

test('start: term floor above maxTerm+1 -> the floor is the term', () => {
  const [s] = started({ ...CTX, termFloor: 50 });
  assert.is(s.b.t, 50);
  const [b] = step({ phase: 'backoff', attempt: 1, maxTerm: 70 }, { type: 'timeout', now: 0 }, { ...CTX, termFloor: 50 });
  assert.is(phase(b, 'prepare').b.t, 71);
});

test('prepare: one ok of three -> still preparing, no effects', () => {
  const [s] = started();
  const [n, effects] = step(s, prepR('n2', s.b, true));
  assert.is(n.phase, 'prepare');
  assert.equal(effects, []);
});

test('prepare: majority of ok replies -> commit phase sending com seq 1 with own value', () => {
  const [s] = started();
  const [c, effects] = run(s, [prepR('n1', s.b, true), prepR('n3', s.b, true, {}, 77)]);
  const cs = phase(c, 'commit');
  assert.equal(cs.b, s.b);
  assert.is(cs.sentAt, 77);
  const send = only(effects, 'send');
  assert.equal([...send.to].sort(), [...MEMBERS]);
  const m = msgOf(send, 'com');
  assert.equal(m.b, s.b);
  assert.is(m.seq, 1);
  assert.equal(m.v, ownValue(CTX));
  assert.equal(m.v, { owner: OWNER, gnode: 'n1', hb: 1000 });
  assert.is(only(effects, 'timer').ms, CTX.phaseTimeout);
});

test('prepare: duplicate ok from the same member -> counted once', () => {
  const [s] = started();
  const [n, effects] = run(s, [prepR('n2', s.b, true), prepR('n2', s.b, true)]);
  assert.is(n.phase, 'prepare');
  assert.equal(sends(effects), []);
});

test('prepare: ok replies from a node outside the member list -> do not make a majority', () => {
  const [s] = started();
  const [n, effects] = run(s, [prepR('n1', s.b, true), prepR('x9', s.b, true)]);
  assert.is(n.phase, 'prepare');
  assert.equal(sends(effects), []);
});

test('prepare: replies for another ballot -> ignored', () => {
  const [s] = started();
  const stale = { t: s.b.t, g: 'n1/1/0' };
  const [n, effects] = run(s, [prepR('n1', stale, true), prepR('n2', stale, true), prepR('n3', { t: 9, g: CTX.gid }, true)]);
  assert.is(n, s);
  assert.equal(effects, []);
});

test('commit: majority of acks -> monitoring and one granted effect carrying the commit send time', () => {
  const [s] = started();
  const [c] = run(s, [prepR('n1', s.b, true), prepR('n2', s.b, true, {}, 40)]);
  const [m1, e1] = step(c, comR('n3', s.b, 1, true, 60));
  assert.is(m1.phase, 'commit');
  assert.equal(e1, []);
  const [m, effects] = step(m1, comR('n1', s.b, 1, true, 90));
  const ms = phase(m, 'monitoring');
  assert.equal(ms.b, s.b);
  assert.is(ms.seq, 1);
  const g = only(effects, 'granted');
  assert.equal(g.b, s.b);
  assert.is(g.seq, 1);
  assert.is(g.sentAt, 40);
  assert.equal(g.value, ownValue(CTX));
});

test('commit: acks for another ballot or seq -> ignored', () => {
  const [s] = started();
  const [c] = run(s, [prepR('n1', s.b, true), prepR('n2', s.b, true)]);
  const other = { t: s.b.t + 1, g: 'n2/1/1' };
  const [n, effects] = run(c, [comR('n1', other, 1), comR('n2', other, 1), comR('n2', s.b, 2), comR('n3', s.b, 2)]);
  assert.is(n, c);
  assert.equal(effects, []);
});

test('commit: majority of nacks -> back off and take back what was accepted (tombstone)', () => {
  const [s] = started();
  const [c] = run(s, [prepR('n1', s.b, true), prepR('n2', s.b, true)]);
  const [n, effects] = run(c, [comR('n1', s.b, 1, false), comR('n2', s.b, 1, false)]);
  assert.is(n.phase, 'backoff');
  const tomb = msgOf(only(effects, 'send'), 'com');
  assert.is(tomb.v, null);
  assert.equal(tomb.b, s.b);
  assert.ok(tomb.seq > 1);
  assert.ok(!types(effects).includes('granted'));
});

test('prepare: majority refusing held (same ballot and seq) -> reg_check probing the holder\'s node', () => {
  const [s] = started();
  const hb: Ballot = { t: 4, g: 'n2/1/3' };
  const [r, effects] = run(s, [
    prepR('n1', s.b, false, { why: 'held', entry: heldView(hb, OTHER) }),
    prepR('n2', s.b, false, { why: 'held', entry: heldView(hb, OTHER) }),
  ]);
  const rc = phase(r, 'reg_check');
  assert.is(rc.promised, false);
  assert.equal(rc.holder.b, hb);
  const send = only(effects, 'send');
  assert.equal(send.to, [OTHER.node]);
  const probe = msgOf(send, 'probe');
  assert.equal(probe.owner, OTHER);
  assert.equal(probe.b, hb);
  assert.is(probe.name, CTX.name);
  assert.ok(types(effects).includes('timer'));
});

test('prepare: held refusals that disagree on the seq -> no reg_check from them', () => {
  const [s] = started();
  const hb: Ballot = { t: 4, g: 'n2/1/3' };
  const [r] = run(s, [
    prepR('n1', s.b, false, { why: 'held', entry: heldView(hb, OTHER, 1) }),
    prepR('n2', s.b, false, { why: 'held', entry: heldView(hb, OTHER, 2) }),
  ]);
  assert.is(r.phase, 'prepare');
});

function heldCheck(): Extract<GuardState, { phase: 'reg_check' }> {
  const [s] = started();
  const hb: Ballot = { t: 4, g: 'n2/1/3' };
  const [r] = run(s, [
    prepR('n1', s.b, false, { why: 'held', entry: heldView(hb, OTHER) }),
    prepR('n2', s.b, false, { why: 'held', entry: heldView(hb, OTHER) }),
  ]);
  return phase(r, 'reg_check');
}

test('reg_check: probe says the holder holds -> failed already with the owner, stopped', () => {
  const rc = heldCheck();
  const [n, effects] = step(rc, reply('n2', { type: 'probeR', rid: 1, alive: true, holds: true }));
  assert.is(n.phase, 'stopped');
  assert.equal(only(effects, 'failed').failure, { kind: 'already', owner: OTHER });
  only(effects, 'stopped');
  assert.equal(sends(effects), []);
});

test('reg_check: probe says owner dead and not holding -> prepare takeover from the held ballot with a higher term', () => {
  const rc = heldCheck();
  const [n, effects] = step(rc, reply('n2', { type: 'probeR', rid: 1, alive: false, holds: false }));
  const p = phase(n, 'prepare');
  assert.is(p.mode, 'takeover');
  assert.equal(p.from, rc.holder.b);
  assert.ok(p.b.t > rc.holder.b.t);
  assert.ok(p.b.t > rc.b.t);
  const m = msgOf(only(effects, 'send'), 'prep');
  assert.is(m.mode, 'takeover');
  assert.equal(m.from, rc.holder.b);
  assert.equal(m.b, p.b);
});

test('prepare: takeover still refused held by a majority (a live handoff marker) -> backoff with a timer and abandon, no new probe', () => {
  const rc = heldCheck();
  const [t] = step(rc, reply('n2', { type: 'probeR', rid: 1, alive: true, holds: false }));
  const p = phase(t, 'prepare');
  const marker: EntryView = { ...heldView(rc.holder.b, OTHER, 2), value: { owner: OTHER, gnode: 'n2', hb: 1000, handoffTo: 'n2/1/9' } };
  const [n, effects] = run(p, [
    prepR('n1', p.b, false, { why: 'held', entry: marker }),
    prepR('n3', p.b, false, { why: 'held', entry: marker }),
  ]);
  const b = phase(n, 'backoff');
  assert.is(b.attempt, p.attempt + 1);
  assert.ok(only(effects, 'timer').ms > 0);
  assert.equal(only(effects, 'abandon').b, p.b);
  assert.equal(sends(effects), []);
});

test('reg_check: the holder\'s node never holds it but a majority keeps refusing held -> every retry waits, then failed already', () => {
  // Probe says "not held" each time and acceptors keep a live marker: the guard must not spin at network speed.
  let s: GuardState;
  let effects: readonly GuardEffect[];
  [s, effects] = run(initialState(), [{ type: 'start', now: 0 }]);
  const hb: Ballot = { t: 4, g: 'n2/1/3' };
  let waits = 0;
  for (let i = 0; i < 100 && s.phase !== 'stopped'; i++) {
    if (s.phase === 'prepare') {
      const b = s.b;
      const entry = s.mode === 'takeover' ? { ...heldView(hb, OTHER, 2), value: { owner: OTHER, gnode: 'n2', hb: 1000, handoffTo: 'n2/1/9' } } : heldView(hb, OTHER);
      [s, effects] = run(s, [prepR('n1', b, false, { why: 'held', entry }), prepR('n2', b, false, { why: 'held', entry })]);
    } else if (s.phase === 'reg_check') {
      [s, effects] = step(s, reply('n2', { type: 'probeR', rid: 1, alive: true, holds: false }));
    } else if (s.phase === 'backoff') {
      assert.ok(only(effects, 'timer').ms > 0);
      waits++;
      [s, effects] = step(s, { type: 'timeout', now: 0 });
    } else {
      assert.unreachable(`unexpected phase ${s.phase}`);
    }
  }
  assert.is(s.phase, 'stopped');
  assert.equal(only(effects, 'failed').failure, { kind: 'already', owner: OTHER });
  assert.ok(waits >= 1);
});

test('reg_check: no probe answer on a held name -> failed already, never a takeover', () => {
  const rc = heldCheck();
  const [n, effects] = step(rc, { type: 'timeout', now: 0 });
  assert.is(n.phase, 'stopped');
  assert.is(only(effects, 'failed').failure.kind, 'already');
  assert.equal(sends(effects), []);
});

function expiredCheck(): [Extract<GuardState, { phase: 'reg_check' }>, readonly GuardEffect[], Ballot] {
  const [s] = started({ ...CTX, termFloor: 10 });
  const old: Ballot = { t: 3, g: 'n2/1/3' };
  const entry: EntryView = { promise: s.b, ballot: old, value: { owner: OTHER, gnode: 'n2', hb: 1000 }, seq: 1, expired: true };
  const [r, effects] = run(s, [prepR('n1', s.b, true, { entry }), prepR('n3', s.b, true, { entry: { value: null, seq: 0, expired: false, promise: s.b } })], { ...CTX, termFloor: 10 });
  return [phase(r, 'reg_check'), effects, s.b];
}

test('prepare: majority promised but one carries an expired value of another owner -> reg_check probe', () => {
  const [rc, effects, b] = expiredCheck();
  assert.is(rc.promised, true);
  assert.equal(rc.holder.owner, OTHER);
  assert.equal(rc.b, b);
  const send = only(effects, 'send');
  assert.equal(send.to, ['n2']);
  assert.equal(msgOf(send, 'probe').owner, OTHER);
});

test('reg_check: expired holder still holds -> failed already and abandon of our promised ballot', () => {
  const [rc, , b] = expiredCheck();
  const [n, effects] = step(rc, reply('n2', { type: 'probeR', rid: 1, alive: true, holds: true }));
  assert.is(n.phase, 'stopped');
  assert.equal(only(effects, 'abandon').b, b);
  assert.equal(only(effects, 'failed').failure, { kind: 'already', owner: OTHER });
  assert.equal(sends(effects), []);
});

test('reg_check: expired holder gone -> commit our promised ballot', () => {
  const [rc, , b] = expiredCheck();
  const [n, effects] = step(rc, reply('n2', { type: 'probeR', rid: 1, alive: false, holds: false }));
  assert.equal(phase(n, 'commit').b, b);
  const m = msgOf(only(effects, 'send'), 'com');
  assert.equal(m.b, b);
  assert.equal(m.v, ownValue(CTX));
});

test('prepare: refusals carrying terms and floors -> the next prepare goes above every term and at least the floor', () => {
  const [s] = started();
  const [b, effects] = run(s, [
    prepR('n1', s.b, false, { why: 'ballot', entry: { promise: { t: 7, g: 'x' }, ballot: { t: 5, g: 'x' }, value: null, seq: 1, expired: false } }),
    prepR('n2', s.b, false, { why: 'ballot', floor: 12 }),
    prepR('n3', s.b, false, { why: 'ballot', entry: { promise: { t: 9, g: 'y' }, value: null, seq: 0, expired: false }, floor: 3 }),
  ]);
  assert.is(b.phase, 'backoff');
  assert.equal(only(effects, 'abandon').b, s.b);
  const [p] = step(b, { type: 'timeout', now: 0 });
  const ps = phase(p, 'prepare');
  assert.ok(ps.b.t > 9, `term ${ps.b.t} above 9`);
  assert.ok(ps.b.t >= 12, `term ${ps.b.t} at least the floor 12`);
});

test('prepare: promise replies carrying higher terms -> counted in maxTerm for later attempts', () => {
  const [s] = started();
  const [n] = run(s, [
    prepR('n1', s.b, true, { entry: { promise: s.b, ballot: { t: 0, g: 'z' }, value: null, seq: 0, expired: false } }),
    prepR('n2', s.b, false, { why: 'ballot', entry: { promise: { t: 30, g: 'z' }, value: null, seq: 0, expired: false } }),
    prepR('n3', s.b, false, { why: 'ballot' }),
  ]);
  const [p] = step(n, { type: 'timeout', now: 0 });
  assert.ok(phase(p, 'prepare').b.t > 30);
});

test('backoff: no majority and all replied -> jittered timer, then a new prepare with a higher attempt', () => {
  const [s] = started();
  const [b, effects] = run(s, [
    prepR('n1', s.b, true, { entry: { promise: s.b, value: null, seq: 0, expired: false } }),
    prepR('n2', s.b, false, { why: 'ballot', entry: { promise: { t: 1, g: 'n2/1/1' }, value: null, seq: 0, expired: false } }),
    prepR('n3', s.b, false, { why: 'ballot', entry: { promise: { t: 1, g: 'n3/1/1' }, value: null, seq: 0, expired: false } }),
  ]);
  assert.is(b.phase, 'backoff');
  const timer = only(effects, 'timer');
  assert.is(timer.jitter, true);
  assert.ok(timer.ms > 0);
  assert.equal(sends(effects), []);
  const [p, pe] = step(b, { type: 'timeout', now: 5 });
  const ps = phase(p, 'prepare');
  assert.ok(ps.attempt > s.attempt);
  assert.ok(ps.b.t > s.b.t);
  assert.equal(msgOf(only(pe, 'send'), 'prep').b, ps.b);
});

test('backoff: retry after a round whose replies carried no terms -> a ballot above the one just tried', () => {
  const [s] = started();
  const [b] = run(s, [prepR('n1', s.b, true), prepR('n2', s.b, false, { why: 'ballot' }), prepR('n3', s.b, false, { why: 'ballot' })]);
  assert.is(b.phase, 'backoff');
  const [p] = step(b, { type: 'timeout', now: 5 });
  const ps = phase(p, 'prepare');
  assert.ok(ps.b.t > s.b.t, `retry term ${ps.b.t} must be above the term already tried (${s.b.t})`);
});

test('backoff: phase timeout with no reply at all -> the retry uses a new, higher ballot', () => {
  const [s] = started();
  const [b] = step(s, { type: 'timeout', now: 500 });
  assert.is(b.phase, 'backoff');
  const [p] = step(b, { type: 'timeout', now: 600 });
  const ps = phase(p, 'prepare');
  assert.ok(ps.b.t > s.b.t, `retry term ${ps.b.t} must be above the term already tried (${s.b.t})`);
});

test('backoff: phase timeout without a majority -> backoff and abandon', () => {
  const [s] = started();
  const [b, effects] = run(s, [prepR('n1', s.b, true), { type: 'timeout', now: 500 }]);
  assert.is(b.phase, 'backoff');
  assert.equal(only(effects, 'abandon').b, s.b);
  assert.is(only(effects, 'timer').jitter, true);
});

/** Runs prepare rounds that always lose until the guard fails; returns the attempts of each prepare. */
function contend(heldBy?: OwnerRef): { attempts: number[]; effects: GuardEffect[] } {
  const attempts: number[] = [];
  const all: GuardEffect[] = [];
  let [s, effects] = step(initialState(), { type: 'start', now: 0 });
  all.push(...effects);
  for (let round = 0; round < 50 && s.phase === 'prepare'; round++) {
    attempts.push(s.attempt);
    const b = s.b;
    const entry = heldBy === undefined ? undefined : heldView({ t: 1, g: `n3/1/${round}` }, heldBy);
    const extra = heldBy === undefined ? { why: 'ballot' as const } : { why: 'held' as const, entry: entry as EntryView };
    const [n, e] = run(s, [prepR('n1', b, true), prepR('n2', b, false, extra), prepR('n3', b, false, { why: 'ballot' })]);
    all.push(...e);
    if (n.phase !== 'backoff') { s = n; break; }
    [s, effects] = step(n, { type: 'timeout', now: 0 });
    all.push(...effects);
  }
  return { attempts, effects: all };
}

test('backoff: every retry -> the next attempt (attempt rises by one per prepare round)', () => {
  const { attempts } = contend();
  assert.ok(attempts.length >= 2);
  attempts.forEach((a, i) => assert.is(a, i, `prepare round ${i} has attempt ${a}`));
});

test('backoff: after MAX (8) losing prepare rounds -> failed no-consensus and stopped', () => {
  const { attempts, effects } = contend();
  const failed = only(effects, 'failed');
  assert.is(failed.failure.kind, 'no-consensus');
  only(effects, 'stopped');
  assert.is(attempts.length, 8, `prepare rounds before giving up: ${attempts.length}`);
});

test('backoff: giving up after contention with a live holder -> failed already with that owner', () => {
  const { effects } = contend(OTHER);
  assert.equal(only(effects, 'failed').failure, { kind: 'already', owner: OTHER });
});

test('deadline: in commit phase -> failed timeout and a tombstone commit so nothing is left without a guard', () => {
  const [s] = started();
  const [c] = run(s, [prepR('n1', s.b, true), prepR('n2', s.b, true)]);
  const [n, effects] = step(c, { type: 'deadline', now: 500 });
  assert.equal(only(effects, 'failed').failure, { kind: 'timeout' });
  const send = only(effects, 'send');
  assert.equal([...send.to].sort(), [...MEMBERS]);
  const tomb = msgOf(send, 'com');
  assert.is(tomb.v, null);
  assert.equal(tomb.b, s.b);
  assert.ok(tomb.seq > 1, 'above the value commit so a late value commit cannot undo it');
  const st = phase(n, 'stopping');
  assert.ok(!types(effects).includes('stopped'), 'stops only after the tombstone is acked');
  const [done, de] = run(st, [comR('n1', s.b, tomb.seq), comR('n3', s.b, tomb.seq)]);
  assert.is(done.phase, 'stopped');
  only(de, 'stopped');
});

test('deadline: in prepare phase -> abandon our ballot, failed timeout, stopped', () => {
  const [s] = started();
  const [n, effects] = step(s, { type: 'deadline', now: 500 });
  assert.is(n.phase, 'stopped');
  assert.equal(only(effects, 'abandon').b, s.b);
  assert.equal(only(effects, 'failed').failure, { kind: 'timeout' });
  only(effects, 'stopped');
  assert.equal(sends(effects), []);
});

test('release: owner exits while preparing -> failed not-alive, abandon, stopped', () => {
  const [s] = started();
  const [n, effects] = step(s, { type: 'release', reason: 'exit', now: 1 });
  assert.is(n.phase, 'stopped');
  assert.equal(only(effects, 'failed').failure, { kind: 'not-alive' });
  only(effects, 'abandon');
});

// ---- monitoring ------------------------------------------------------------------------------------

test('monitoring: lease-lost -> revoke lost, release, stopped, nothing sent', () => {
  const m = granted();
  const [n, effects] = step(m, { type: 'lease-lost' });
  assert.is(n.phase, 'stopped');
  assert.equal(only(effects, 'revoke').reason, 'lost');
  only(effects, 'release');
  only(effects, 'stopped');
  assert.equal(sends(effects), []);
  assert.ok(types(effects).indexOf('revoke') < types(effects).indexOf('stopped'));
});

test('monitoring: release -> revoke, release, tombstone commit with seq+1; stopped after a majority of acks', () => {
  const m = granted();
  const [st, effects] = step(m, { type: 'release', reason: 'unregistered', now: 10 });
  assert.equal(only(effects, 'revoke').reason, 'unregistered');
  only(effects, 'release');
  const tomb = msgOf(only(effects, 'send'), 'com');
  assert.is(tomb.v, null);
  assert.equal(tomb.b, m.b);
  assert.is(tomb.seq, m.seq + 1);
  assert.ok(!types(effects).includes('stopped'));
  const [s1, e1] = step(st, comR('n2', m.b, m.seq + 1));
  assert.is(s1.phase, 'stopping');
  assert.equal(e1, []);
  // An ack for the old seq does not count.
  const [s2, e2] = step(s1, comR('n3', m.b, m.seq));
  assert.is(s2.phase, 'stopping');
  assert.equal(e2, []);
  const [s3, e3] = step(s2, comR('n3', m.b, m.seq + 1));
  assert.is(s3.phase, 'stopped');
  only(e3, 'stopped');
});

test('monitoring: kill -> revoke lost, release, stopped, nothing sent', () => {
  const m = granted();
  const [n, effects] = step(m, { type: 'kill' });
  assert.is(n.phase, 'stopped');
  assert.equal(only(effects, 'revoke').reason, 'lost');
  only(effects, 'release');
  only(effects, 'stopped');
  assert.equal(sends(effects), []);
});

test('monitoring: replies and timeouts -> ignored', () => {
  const m = granted();
  const [n, effects] = run(m, [comR('n1', m.b, 1), { type: 'timeout', now: 1 }, { type: 'start', now: 2 }]);
  assert.is(n, m);
  assert.equal(effects, []);
});

// ---- handoff ---------------------------------------------------------------------------------------

const NEW_OWNER: OwnerRef = { node: 'n3', inc: 2, id: 5 };
const NEW_GUARD = 'n3/2/8';

test('handoff: handoff event -> hoff to the new owner\'s node from our ballot', () => {
  const m = granted();
  const [h, effects] = step(m, { type: 'handoff', owner: NEW_OWNER, now: 3 });
  assert.is(h.phase, 'handoff');
  const send = only(effects, 'send');
  assert.equal(send.to, ['n3']);
  const hoff = msgOf(send, 'hoff');
  assert.equal(hoff.owner, NEW_OWNER);
  assert.equal(hoff.from, m.b);
  assert.is(hoff.name, CTX.name);
  assert.ok(!types(effects).includes('revoke'), 'the owner keeps the name until the receiver accepts');
});

function offered(): [Extract<GuardState, { phase: 'monitoring' }>, GuardState] {
  const m = granted();
  const [h] = step(m, { type: 'handoff', owner: NEW_OWNER, now: 3 });
  return [m, h];
}

test('handoff: receiver accepts with its guard id -> revoke handoff, release, marker commit (same ballot, seq+1)', () => {
  const [m, h] = offered();
  const [k, effects] = step(h, reply('n3', { type: 'hoffR', rid: 1, ok: true, guard: NEW_GUARD }));
  assert.is(k.phase, 'handoff');
  assert.equal(only(effects, 'revoke').reason, 'handoff');
  only(effects, 'release');
  assert.ok(types(effects).indexOf('revoke') < types(effects).indexOf('send'), 'old owner revoked before the marker goes out');
  const send = only(effects, 'send');
  assert.equal([...send.to].sort(), [...MEMBERS]);
  const marker = msgOf(send, 'com');
  assert.equal(marker.b, m.b);
  assert.is(marker.seq, m.seq + 1);
  const v = marker.v as Value;
  assert.ok(v !== null);
  assert.is(v.handoffTo, NEW_GUARD);
  assert.equal(v.owner, NEW_OWNER);
});

test('handoff: marker acked by a majority -> hgo to the receiver; hgoR ok -> handoff-done ok, stopped', () => {
  const [m, h] = offered();
  const [k] = step(h, reply('n3', { type: 'hoffR', rid: 1, ok: true, guard: NEW_GUARD }));
  const [k1, e1] = step(k, comR('n1', m.b, m.seq + 1));
  assert.equal(sends(e1), []);
  const [g, e2] = step(k1, comR('n2', m.b, m.seq + 1));
  const send = only(e2, 'send');
  assert.equal(send.to, ['n3']);
  const hgo = msgOf(send, 'hgo');
  assert.is(hgo.guard, NEW_GUARD);
  assert.is(hgo.seq, m.seq + 1);
  assert.is(hgo.name, CTX.name);
  const [d, e3] = step(g, reply('n3', { type: 'hgoR', rid: 1, ok: true, token: 9 }));
  assert.is(d.phase, 'stopped');
  const done = only(e3, 'handoff-done');
  assert.is(done.ok, true);
  only(e3, 'stopped');
});

test('handoff: marker acks for the old seq -> not counted', () => {
  const [m, h] = offered();
  const [k] = step(h, reply('n3', { type: 'hoffR', rid: 1, ok: true, guard: NEW_GUARD }));
  const [k1, e1] = run(k, [comR('n1', m.b, m.seq), comR('n2', m.b, m.seq)]);
  assert.equal(sends(e1), []);
  assert.is(k1, k);
});

test('handoff: kill after the owner was already revoked for the handoff -> no second revoke or release', () => {
  const [, h] = offered();
  const [k, e1] = step(h, reply('n3', { type: 'hoffR', rid: 1, ok: true, guard: NEW_GUARD }));
  assert.equal(only(e1, 'revoke').reason, 'handoff');
  const [n, effects] = step(k, { type: 'kill' });
  assert.is(n.phase, 'stopped');
  only(effects, 'stopped');
  assert.ok(!types(effects).includes('revoke'), `owner revoked twice: ${JSON.stringify(effects)}`);
  assert.ok(!types(effects).includes('release'), 'name released twice');
});

test('handoff: receiver refuses not-alive -> back to monitoring with handoff-done not ok, owner kept', () => {
  const [m, h] = offered();
  const [n, effects] = step(h, reply('n3', { type: 'hoffR', rid: 1, ok: false, err: 'not-alive' }));
  const ms = phase(n, 'monitoring');
  assert.equal(ms.b, m.b);
  assert.is(ms.seq, m.seq);
  const done = only(effects, 'handoff-done');
  assert.is(done.ok, false);
  assert.equal(done.failure, { kind: 'not-alive' });
  assert.ok(!types(effects).includes('revoke'));
  assert.ok(!types(effects).includes('release'));
  assert.equal(sends(effects), []);
});

test('waiting: go -> prepare in handoff mode from the given ballot with a higher term', () => {
  const from: Ballot = { t: 6, g: 'n1/1/1' };
  const ctx = { ...CTX, gid: NEW_GUARD, node: 'n3', owner: NEW_OWNER };
  const [p, effects] = step(waitingState(from), { type: 'go', seq: 2, now: 0 }, ctx);
  const ps = phase(p, 'prepare');
  assert.is(ps.mode, 'handoff');
  assert.equal(ps.from, from);
  assert.ok(ps.b.t > from.t);
  assert.is(ps.b.g, NEW_GUARD);
  const m = msgOf(only(effects, 'send'), 'prep');
  assert.is(m.mode, 'handoff');
  assert.equal(m.from, from);
});

test('waiting: handoff prepare promised by a majority over the unexpired marker -> commit, no probe', () => {
  const from: Ballot = { t: 6, g: 'n1/1/1' };
  const ctx = { ...CTX, gid: NEW_GUARD, node: 'n3', owner: NEW_OWNER };
  const [p] = step(waitingState(from), { type: 'go', seq: 2, now: 0 }, ctx);
  const ps = phase(p, 'prepare');
  const marker: EntryView = { promise: ps.b, ballot: from, value: { owner: NEW_OWNER, gnode: 'n1', hb: 1000, handoffTo: NEW_GUARD }, seq: 2, expired: true };
  const [c, effects] = run(p, [prepR('n1', ps.b, true, { entry: marker }), prepR('n2', ps.b, true, { entry: marker })], ctx);
  assert.is(c.phase, 'commit');
  assert.equal(msgOf(only(effects, 'send'), 'com').v, { ...ownValue(ctx), via: 'handoff' });
});

// ---- property --------------------------------------------------------------------------------------

type Spec =
  | { k: 'prepR'; from: number; cur: boolean; t: number; ok: boolean; why: 0 | 1 | 2; entry: null | { t: number; expired: boolean; other: boolean; seq: number; value: boolean }; floor: number }
  | { k: 'comR'; from: number; cur: boolean; t: number; seqDelta: number; ok: boolean }
  | { k: 'probeR'; alive: boolean; holds: boolean }
  | { k: 'hoffR'; ok: boolean; guard: boolean; notAlive: boolean }
  | { k: 'hgoR'; ok: boolean }
  | { k: 'timeout' } | { k: 'deadline' } | { k: 'lease-lost' } | { k: 'kill' } | { k: 'start' }
  | { k: 'release'; reason: 0 | 1 | 2 } | { k: 'handoff' } | { k: 'go' };

/** Repliers in the property: members only (a non-member's reply has its own test above). */
const FROM: readonly string[] = MEMBERS;

/** True with probability p/10: replies mostly match and mostly agree, so walks get past each phase. */
const likely = (p: number): fc.Arbitrary<boolean> => fc.integer({ min: 0, max: 9 }).map((x) => x < p);

const specArb: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 12, arbitrary: fc.record({
    k: fc.constant('prepR' as const), from: fc.nat(FROM.length - 1), cur: likely(8), t: fc.nat(12), ok: likely(7),
    why: fc.constantFrom(0 as const, 1 as const, 2 as const),
    entry: fc.option(fc.record({ t: fc.nat(12), expired: fc.boolean(), other: fc.boolean(), seq: fc.nat(3), value: fc.boolean() }), { nil: null }),
    floor: fc.nat(15),
  }) },
  { weight: 12, arbitrary: fc.record({
    k: fc.constant('comR' as const), from: fc.nat(FROM.length - 1), cur: likely(8), t: fc.nat(12),
    seqDelta: fc.constantFrom(0, 0, 0, 0, -1, 1), ok: likely(8),
  }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('probeR' as const), alive: fc.boolean(), holds: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('hoffR' as const), ok: likely(7), guard: likely(8), notAlive: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('hgoR' as const), ok: likely(7) }) },
  { weight: 2, arbitrary: fc.constant({ k: 'timeout' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'deadline' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'lease-lost' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'kill' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'start' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('release' as const), reason: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
  { weight: 3, arbitrary: fc.constant({ k: 'handoff' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'go' as const }) },
);

function curBallot(s: GuardState): Ballot | undefined {
  return 'b' in s ? s.b : undefined;
}
function curSeq(s: GuardState): number {
  if (s.phase === 'commit') return 1;
  return 'seq' in s ? s.seq : 1;
}

/** Turns a spec into an event against the current state (so replies often match the live ballot). */
function materialise(spec: Spec, s: GuardState, now: number): GuardEvent {
  const b = (cur: boolean, t: number): Ballot => (cur ? curBallot(s) : undefined) ?? { t, g: t % 2 === 0 ? CTX.gid : 'n2/1/1' };
  const from = (i: number): string => FROM[i] as string;
  switch (spec.k) {
    case 'prepR': {
      const bb = b(spec.cur, spec.t);
      const e = spec.entry;
      const entry: EntryView | undefined = e === null ? undefined : {
        promise: bb, ballot: { t: e.t, g: 'n2/1/1' }, seq: e.seq, expired: e.expired,
        value: e.value ? { owner: e.other ? OTHER : OWNER, gnode: e.other ? 'n2' : 'n1', hb: 1000 } : null,
      };
      const why = (['ballot', 'held', 'recovering'] as const)[spec.why];
      const msg: PrepareReply = {
        type: 'prepR', rid: 1, name: CTX.name, b: bb, ok: spec.ok, floor: spec.floor,
        ...(spec.ok ? {} : { why }), ...(entry === undefined ? {} : { entry }),
      };
      return reply(from(spec.from), msg, now);
    }
    case 'comR': return comR(from(spec.from), b(spec.cur, spec.t), Math.max(0, curSeq(s) + spec.seqDelta), spec.ok, now);
    case 'probeR': return reply('n2', { type: 'probeR', rid: 1, alive: spec.alive, holds: spec.holds }, now);
    case 'hoffR': return reply('n3', spec.ok
      ? (spec.guard ? { type: 'hoffR', rid: 1, ok: true, guard: NEW_GUARD } : { type: 'hoffR', rid: 1, ok: true })
      : (spec.notAlive ? { type: 'hoffR', rid: 1, ok: false, err: 'not-alive' } : { type: 'hoffR', rid: 1, ok: false }), now);
    case 'hgoR': return reply('n3', spec.ok ? { type: 'hgoR', rid: 1, ok: true, token: 3 } : { type: 'hgoR', rid: 1, ok: false, err: 'failed' }, now);
    case 'timeout': return { type: 'timeout', now };
    case 'deadline': return { type: 'deadline', now };
    case 'lease-lost': return { type: 'lease-lost' };
    case 'kill': return { type: 'kill' };
    case 'start': return { type: 'start', now };
    case 'release': return { type: 'release', reason: (['unregistered', 'exit', 'stopped'] as const)[spec.reason], now };
    case 'handoff': return { type: 'handoff', owner: NEW_OWNER, now };
    case 'go': return { type: 'go', seq: 2, now };
  }
}

const key = (b: Ballot): string => `${b.t}/${b.g}`;

test('property: random event sequences -> never throws, one grant at most, silent once stopped, value commits only on promised ballots', () => {
  const reached = new Set<string>();
  let valueCommits = 0;
  fc.assert(
    fc.property(
      fc.boolean(), fc.nat(8), fc.array(specArb, { minLength: 1, maxLength: 120, size: 'max' }),
      (waiting, fromT, specs) => {
        let s: GuardState = waiting ? waitingState({ t: fromT, g: 'n1/1/0' }) : initialState();
        let grants = 0;
        let stopped = false;
        const promisedBy = new Map<string, Set<string>>();
        const need = quorum(CTX.members);
        const startEv: GuardEvent = waiting ? { type: 'go', seq: 2, now: 0 } : { type: 'start', now: 0 };
        // Replies are built against the live state when they are fed, so many match the current ballot.
        const queue: (GuardEvent | Spec)[] = [startEv, ...specs];
        let now = 0;
        let i = 0;
        for (const item of queue) {
          const ev: GuardEvent = 'k' in item ? materialise(item, s, (now += 7)) : item;
          i++;
          if (ev.type === 'reply' && ev.msg.type === 'prepR' && ev.msg.ok && (CTX.members as readonly string[]).includes(ev.from)) {
            const k = key(ev.msg.b);
            const set = promisedBy.get(k) ?? new Set<string>();
            set.add(ev.from);
            promisedBy.set(k, set);
          }
          const [next, effects] = transition(CTX, s, ev);
          if (stopped) assert.equal(effects, [], `effects after stopped at event ${i}: ${JSON.stringify(ev)}`);
          for (const e of effects) {
            if (e.type === 'granted') grants++;
            if (e.type === 'send' && e.msg.type === 'com' && e.msg.v !== null) {
              const got = promisedBy.get(key(e.msg.b))?.size ?? 0;
              assert.ok(got >= need, `com with a value on ballot ${key(e.msg.b)} promised by only ${got} members`);
              valueCommits++;
            }
          }
          const saysStopped = effects.some((e) => e.type === 'stopped');
          assert.is(next.phase === 'stopped' && s.phase !== 'stopped', saysStopped, `'stopped' effect iff the guard stops (event ${i})`);
          if (next.phase === 'stopped') stopped = true;
          assert.ok(grants <= 1, 'granted at most once');
          s = next;
          reached.add(s.phase === 'handoff' ? `handoff:${s.step}` : s.phase);
        }
      },
    ),
    { seed: 20260101, numRuns: 3000 },
  );
  // The property is only worth something if the random walks reach every phase.
  for (const p of ['prepare', 'reg_check', 'backoff', 'commit', 'monitoring', 'handoff:offer', 'handoff:marker', 'handoff:go', 'stopping', 'stopped']) {
    assert.ok(reached.has(p), `phase ${p} reached by the property (reached: ${[...reached].join(', ')})`);
  }
  assert.ok(valueCommits > 100, `value commits checked: ${valueCommits}`);
});

test.run();
