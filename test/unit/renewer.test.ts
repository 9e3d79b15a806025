/**
 * Renewer: lease bookkeeping driven directly with a scripted request layer and a ManualClock (a
 * SkewedClock over it stands in for a process that wakes from a pause with its timers overdue); syncs go
 * out a few parts at a time as replies come back, and each part counts once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, SkewedClock } from '../../lib/clock.js';
import { Renewer, SYNC_PART_ENTRIES, type Holding } from '../../lib/guard/renewer.js';
import { leaseDuration } from '../../lib/guard/lease.js';
import type { Ballot, Message, SyncMsg, Value } from '../../lib/protocol/messages.js';
import type { ReplyHandler, Rpc } from '../../lib/rpc.js';
import { scripted } from './scripted-rpc.js';

const HB = 1000;
const MEMBERS = ['a', 'b', 'c'];
const value: Value = { owner: { node: 'a', inc: 1, id: 1 }, gnode: 'a', hb: HB };

function renewer(clock: ManualClock | SkewedClock, rpc: Rpc): Renewer {
  return new Renewer({ clock, rpc, members: () => MEMBERS, heartbeat: () => HB, random: () => 0.5 });
}

/** Starts renewing `name` (its commit sent at `sentAt`); `onLost` runs when its lease ends. */
function hold(r: Renewer, name: string, b: Ballot, v: Value, seq: number, sentAt: number, onLost: () => void): void {
  const h: Holding = { name, b, value: v, seq, leaseUntil: 0, addedRound: 0, lost: onLost };
  r.add(h, sentAt);
}

test('renewer: lease timer overdue after a pause -> checkOverdue revokes at once, before anything else runs', async () => {
  const base = new ManualClock();
  const clock = new SkewedClock(base);
  const { rpc } = scripted(() => undefined);
  const r = renewer(clock, rpc);
  let lost = 0;
  hold(r, 'job', { t: 1, g: 'g' }, value, 1, 0, () => lost++);
  r.checkOverdue();
  assert.is(lost, 0, 'not overdue yet');
  clock.jump(leaseDuration(HB) + 1); // the process was stopped: time moved on, no timer ran
  r.checkOverdue();
  assert.is(lost, 1);
  assert.is(r.leaseOf('job'), undefined);
  r.stop();
});

test('renewer: a member refused a name whose lease no other member covers -> it is re-synced on the next round, not four rounds later', async () => {
  const clock = new ManualClock();
  // b refuses the name in every sync; c never answers; a (this node) acks renewals.
  const { rpc, sent } = scripted((to, msg) => {
    if (msg.type === 'renew' && to === 'a') return { type: 'renewR', rid: msg.rid, ok: true, count: msg.count, digest: msg.digest };
    // b holds nothing of this node: it agrees with a renewal that leaves the refused name out.
    if (msg.type === 'renew' && to === 'b') return { type: 'renewR', rid: msg.rid, ok: msg.count === 0, count: 0, digest: 0 };
    if (msg.type === 'sync' && to === 'b') return { type: 'syncR', rid: msg.rid, part: msg.part, refused: [[0, { value: null, seq: 0, expired: false }]] };
    return undefined;
  });
  const r = renewer(clock, rpc);
  hold(r, 'job', { t: 1, g: 'g' }, value, 1, 0, () => {});
  r.renewNow();
  await clock.flush();
  const syncs = (): number => sent.filter((s) => s.to === 'b' && s.msg.type === 'sync').length;
  assert.is(syncs(), 1, 'the mismatch brought a sync, which b refused');
  await clock.advance(HB); // the heartbeat tick sends the next round; the lease now ends within two rounds
  assert.is(syncs(), 2, 'the next round syncs b again: the lease needs it');
  assert.is(sent.filter((s) => s.to === 'b' && s.msg.type === 'renew').length, 1, 'instead of a renewal that leaves the name out');
  r.stop();
});

test('renewer: a sync in two parts whose first reply arrives twice -> not complete until the second part answers', async () => {
  const clock = new ManualClock();
  const parts: { rid: number; part: number }[] = [];
  const { rpc } = scripted((to, msg) => {
    if (msg.type === 'renew' && to === 'a') return { type: 'renewR', rid: msg.rid, ok: true, count: msg.count, digest: msg.digest };
    if (msg.type === 'renew' && to === 'b') return { type: 'renewR', rid: msg.rid, ok: false, count: 0, digest: 0 };
    if (msg.type === 'sync' && to === 'b') parts.push({ rid: msg.rid, part: msg.part });
    return undefined;
  });
  const handlers = rpc as unknown as { open: (h: (from: string, m: Message) => void) => number };
  const open = handlers.open.bind(rpc);
  const byRid = new Map<number, (from: string, m: Message) => void>();
  handlers.open = (h) => { const rid = open(h); byRid.set(rid, h); return rid; };
  const r = renewer(clock, rpc);
  const size = SYNC_PART_ENTRIES;
  for (let i = 0; i <= size; i++) hold(r, `n${i}`, { t: 1, g: 'g' }, value, 1, 0, () => {});
  await clock.advance(100); // the round is sent after the grants, so a counted round extends their leases
  r.renewNow();
  await clock.flush();
  assert.equal(parts.map((p) => p.part), [0, 1], 'two parts');
  const reply = (part: number): Message => ({ type: 'syncR', rid: parts[0]!.rid, part, refused: [] });
  const deliver = byRid.get(parts[0]!.rid)!;
  const before = r.leaseOf('n0');
  deliver('b', reply(0));
  deliver('b', reply(0)); // duplicated by the network
  assert.is(r.leaseOf('n0'), before, 'no ack from b yet: part 1 is unanswered');
  deliver('b', reply(1));
  assert.ok((r.leaseOf('n0') ?? 0) > (before ?? 0), 'both parts answered: b counts, the round has a majority');
  r.stop();
});

// ---- syncs sent a few parts at a time --------------------------------------------------------------

/** An rpc that records what is sent and lets the test answer. */
function fakeRpc(): { rpc: Rpc; sent: { to: string; msg: Message }[]; reply: (from: string, msg: Message) => void } {
  const handlers = new Map<number, ReplyHandler>();
  let next = 1;
  const sent: { to: string; msg: Message }[] = [];
  const rpc = {
    open: (h: ReplyHandler) => { handlers.set(next, h); return next++; },
    close: (rid: number) => { handlers.delete(rid); },
    send: (to: string, msg: Message) => { sent.push({ to, msg }); },
  } as unknown as Rpc;
  const reply = (from: string, msg: Message): void => handlers.get((msg as { rid: number }).rid)?.(from, msg);
  return { rpc, sent, reply };
}

function holding(i: number): Holding {
  return {
    name: `n/${i}`, b: { t: 1000 + i, g: `a/1/${i}` }, value: { owner: { node: 'a', inc: 1, id: 1 }, gnode: 'a', hb: HB }, seq: 1,
    leaseUntil: 0, addedRound: 0, lost: () => {},
  };
}

interface SyncRig { renewer: Renewer; sent: { to: string; msg: Message }[]; reply: (from: string, msg: Message) => void }

function syncRig(names: number): SyncRig {
  const clock = new ManualClock();
  const { rpc, sent, reply } = fakeRpc();
  const renewer = new Renewer({ clock, rpc, members: () => MEMBERS, heartbeat: () => HB, random: () => 0.5 });
  for (let i = 0; i < names; i++) renewer.add(holding(i), 0);
  return { renewer, sent, reply };
}

const syncsTo = (sent: { to: string; msg: Message }[], peer: string): SyncMsg[] =>
  sent.filter((s) => s.to === peer && s.msg.type === 'sync').map((s) => s.msg as SyncMsg);

/** A renewal round that member a acks and member b refuses (it counts no names), so b is synced. */
function roundWhereBDisagrees({ renewer, sent, reply }: SyncRig, names: number): void {
  renewer.renewNow();
  const renew = sent.find((s) => s.to === 'b' && s.msg.type === 'renew')?.msg as { rid: number };
  reply('a', { type: 'renewR', rid: renew.rid, ok: true, count: names, digest: 0 });
  reply('b', { type: 'renewR', rid: renew.rid, ok: false, count: 0, digest: 0 });
}

test('renewer sync: parts go out a few at a time; a duplicated reply neither completes the sync nor sends more', () => {
  const rig = syncRig(6000);
  const { renewer, sent, reply } = rig;
  roundWhereBDisagrees(rig, 6000);
  let parts = syncsTo(sent, 'b');
  assert.ok(parts.length >= 1 && parts.length < 6, `a window of parts first (${parts.length})`);
  assert.is(parts[0]?.parts, 6);
  assert.is(renewer.stats.roundsAcked, 0);
  const rid = parts[0]?.rid as number;
  const answer = (part: number): void => reply('b', { type: 'syncR', rid, part, refused: [] });
  answer(0);
  const afterOne = syncsTo(sent, 'b').length;
  answer(0);
  answer(0);
  assert.is(syncsTo(sent, 'b').length, afterOne, 'duplicates send nothing more');
  for (let p = 1; p < 5; p++) answer(p);
  parts = syncsTo(sent, 'b');
  assert.equal(parts.map((m) => m.part), [0, 1, 2, 3, 4, 5], 'every part once, in order');
  assert.equal(parts.flatMap((m) => m.entries.map((e) => e[0])), Array.from({ length: 6000 }, (_, i) => `n/${i}`));
  answer(4);
  assert.is(renewer.stats.roundsAcked, 0, 'not complete while a part is unanswered, duplicates or not');
  answer(5);
  assert.is(renewer.stats.roundsAcked, 1, 'the complete sync counts as b\'s renewal');
  renewer.stop();
});

test('renewer sync: a reply for a part never sent is ignored', () => {
  const rig = syncRig(10);
  const { renewer, sent, reply } = rig;
  roundWhereBDisagrees(rig, 10);
  const [part] = syncsTo(sent, 'b');
  assert.is(part?.parts, 1);
  reply('b', { type: 'syncR', rid: part?.rid as number, part: 7, refused: [] });
  assert.is(renewer.stats.roundsAcked, 0);
  reply('b', { type: 'syncR', rid: part?.rid as number, part: 0, refused: [] });
  assert.is(renewer.stats.roundsAcked, 1);
  renewer.stop();
});

/** The `mv` of each renewal sent since index `from`, by member. */
function vouchedIn(sent: readonly { to: string; msg: Message }[], from = 0): (number | undefined)[] {
  return sent.slice(from).flatMap((s) => (s.msg.type === 'renew' ? [s.msg.mv] : []));
}

test('renewer: renewals vouch for the member list a majority of which acked a round; an older grant lowers it until the next one', async () => {
  const clock = new ManualClock();
  const list = { members: ['a', 'b', 'c'], version: 3 };
  let answering = new Set(['a', 'b', 'c']);
  const { rpc, sent } = scripted((to, msg) => (msg.type === 'renew' && answering.has(to)
    ? { type: 'renewR', rid: msg.rid, ok: true, count: msg.count, digest: msg.digest } : undefined));
  const r = new Renewer({ clock, rpc, members: () => list.members, heartbeat: () => HB, random: () => 0.5, listVersion: () => list.version });
  const h = (name: string): Holding => ({ name, b: { t: 1, g: 'g' }, value, seq: 1, leaseUntil: 0, addedRound: 0, lost: () => {} });
  r.add(h('job'), 0, 3);
  r.renewNow();
  await clock.flush();
  assert.equal(vouchedIn(sent), [3, 3, 3], 'granted by a majority of list 3');

  // A fourth member joins: the list change sends a round at once; once a majority of the new list acks
  // it, one more round tells every member that list 4 holds everything.
  list.members = ['a', 'b', 'c', 'd'];
  list.version = 4;
  answering = new Set(['a', 'b', 'c', 'd']);
  let mark = sent.length;
  r.listChanged();
  await clock.flush();
  assert.equal(vouchedIn(sent, mark), [3, 3, 3, 3, 4, 4, 4, 4]);

  // A name granted by a guard that still asked list 3: renewals vouch for list 3 again, until a round
  // sent after the grant is acked by a majority of list 4.
  r.add(h('late'), clock.now(), 3);
  mark = sent.length;
  r.renewNow();
  await clock.flush();
  assert.equal(vouchedIn(sent, mark), [3, 3, 3, 3, 4, 4, 4, 4]);

  // List 5: fewer than a majority of it answer, so nothing vouches for it.
  list.members = ['a', 'b', 'c', 'd', 'e'];
  list.version = 5;
  answering = new Set(['a', 'b']);
  mark = sent.length;
  r.listChanged();
  await clock.flush();
  r.renewNow();
  await clock.flush();
  assert.equal(vouchedIn(sent, mark), [4, 4, 4, 4, 4, 4, 4, 4, 4, 4], 'still list 4');
  r.stop();
});

test('renewer: a round counts for the list it was sent to, not for one adopted while it was out', async () => {
  const clock = new ManualClock();
  const list = { members: ['a', 'b', 'c'], version: 3 };
  const { rpc, sent } = scripted((to, msg) => (msg.type === 'renew' ? { type: 'renewR', rid: msg.rid, ok: true, count: msg.count, digest: msg.digest } : undefined));
  const r = new Renewer({ clock, rpc, members: () => list.members, heartbeat: () => HB, random: () => 0.5, listVersion: () => list.version });
  r.add({ name: 'job', b: { t: 1, g: 'g' }, value, seq: 1, leaseUntil: 0, addedRound: 0, lost: () => {} }, 0, 2);
  r.renewNow();
  // List 4 is adopted before the round's acks arrive: they are a majority of list 3, and say so.
  list.members = ['a', 'b', 'c', 'd'];
  list.version = 4;
  await clock.flush();
  let mark = sent.length;
  r.renewNow();
  await clock.flush();
  assert.equal(vouchedIn(sent, mark).slice(0, 4), [3, 3, 3, 3], 'list 3, not list 4');
  assert.equal(vouchedIn(sent, mark).slice(4), [4, 4, 4, 4], 'until a round to list 4 is acked');
  mark = sent.length;
  r.renewNow();
  await clock.flush();
  assert.equal(vouchedIn(sent, mark), [4, 4, 4, 4], 'and no extra round once nothing new is vouched for');
  r.stop();
});

test.run();
