/**
 * Renewer: lease bookkeeping driven directly with a scripted request layer and a ManualClock (a
 * SkewedClock over it stands in for a process that wakes from a pause with its timers overdue).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, SkewedClock } from '../../lib/clock.js';
import { Renewer } from '../../lib/guard/renewer.js';
import { leaseDuration } from '../../lib/guard/lease.js';
import type { Message, Value } from '../../lib/protocol/messages.js';
import type { Rpc } from '../../lib/rpc.js';
import { LIMITS } from '../../lib/protocol/codec.js';

const HB = 1000;
const MEMBERS = ['a', 'b', 'c'];
const value: Value = { owner: { node: 'a', inc: 1, id: 1 }, gnode: 'a', hb: HB };

/** Records what is sent; `reply(to, msg)` returns the replies each member gives. */
function scripted(reply: (to: string, msg: Message) => Message | undefined): { rpc: Rpc; sent: { to: string; msg: Message }[] } {
  const handlers = new Map<number, (from: string, m: Message) => void>();
  const sent: { to: string; msg: Message }[] = [];
  let next = 1;
  const rpc = {
    open(h: (from: string, m: Message) => void) { handlers.set(next, h); return next++; },
    close(rid: number) { handlers.delete(rid); },
    send(to: string, msg: Message) {
      sent.push({ to, msg });
      const r = reply(to, msg);
      if (r !== undefined) queueMicrotask(() => handlers.get((msg as { rid: number }).rid)?.(to, r));
    },
  } as unknown as Rpc;
  return { rpc, sent };
}

function renewer(clock: ManualClock | SkewedClock, rpc: Rpc): Renewer {
  return new Renewer({ clock, rpc, members: () => MEMBERS, heartbeat: () => HB, random: () => 0.5 });
}

test('renewer: lease timer overdue after a pause -> checkOverdue revokes at once, before anything else runs', async () => {
  const base = new ManualClock();
  const clock = new SkewedClock(base);
  const { rpc } = scripted(() => undefined);
  const r = renewer(clock, rpc);
  let lost = 0;
  r.add('job', { t: 1, g: 'g' }, value, 1, 0, () => lost++);
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
  r.add('job', { t: 1, g: 'g' }, value, 1, 0, () => {});
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
  const size = LIMITS.syncEntries;
  for (let i = 0; i <= size; i++) r.add(`n${i}`, { t: 1, g: 'g' }, value, 1, 0, () => {});
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

test.run();
