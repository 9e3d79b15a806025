import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/clock.js';
import { NoConsensusError } from '../../lib/errors.js';
import type { Message } from '../../lib/protocol/messages.js';
import { quorumRead } from '../../lib/read.js';
import type { Rpc } from '../../lib/rpc.js';

/** A request layer whose replies the test scripts: `answer(from, rid)` returns the replies to deliver. */
function scripted(answer: (to: string, rid: number) => readonly Message[]): Rpc {
  const handlers = new Map<number, (from: string, m: Message) => void>();
  let next = 1;
  return {
    open(h: (from: string, m: Message) => void) { handlers.set(next, h); return next++; },
    close(rid: number) { handlers.delete(rid); },
    send(to: string, m: Message) {
      const rid = (m as { rid: number }).rid;
      for (const r of answer(to, rid)) queueMicrotask(() => handlers.get(rid)?.(to, r));
    },
  } as unknown as Rpc;
}

const free = (rid: number): Message => ({ type: 'readR', rid, name: 'x', ok: true });

test('read: one member answering twice (a duplicated reply) -> one vote, no majority, NoConsensusError', async () => {
  const clock = new ManualClock();
  const rpc = scripted((to, rid) => (to === 'b' ? [free(rid), free(rid)] : []));
  const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'] }, 'x', 100).then(() => 'agreed', (e: unknown) => e);
  for (let i = 0; i < 20; i++) await clock.advance(100);
  assert.instance(await p, NoConsensusError);
});

test('read: two members agree -> their answer, without waiting for the third', async () => {
  const clock = new ManualClock();
  const rpc = scripted((to, rid) => (to === 'c' ? [] : [free(rid)]));
  const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'] }, 'x', 100);
  await clock.flush();
  assert.equal(await p, { kind: 'free' });
});

/** A scripted request layer that also records who was asked, in order. */
function recording(answer: (to: string, rid: number) => readonly Message[]): { rpc: Rpc; asked: string[] } {
  const asked: string[] = [];
  const rpc = scripted((to, rid) => { asked.push(to); return answer(to, rid); });
  return { rpc, asked };
}

const held = (rid: number, t: number): Message => ({
  type: 'readR', rid, name: 'x', ok: true,
  entry: { promise: { t, g: 'g' }, ballot: { t, g: 'g' }, value: { owner: { node: 'b', inc: 1, id: 1 }, gnode: 'b', hb: 1000 }, seq: 1, expired: false },
});

test('read: this node and the first peer agree -> the third member is never asked', async () => {
  const clock = new ManualClock();
  const { rpc, asked } = recording((_to, rid) => [held(rid, 7)]);
  const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'], self: 'a', turn: () => 0 }, 'x', 100);
  await clock.flush();
  const r = await p;
  assert.is(r.kind, 'held');
  assert.equal(asked, ['a', 'b']);
});

test('read: consecutive turns -> the peer asked first rotates', async () => {
  const clock = new ManualClock();
  const { rpc, asked } = recording((_to, rid) => [free(rid)]);
  let turn = 0;
  for (let i = 0; i < 4; i++) {
    const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'], self: 'a', turn: () => turn++ }, 'x', 100);
    await clock.flush();
    await p;
  }
  assert.equal(asked.filter((m) => m !== 'a'), ['b', 'c', 'b', 'c']);
});

test('read: the first peer disagrees with this node -> the third is asked at once and decides', async () => {
  const clock = new ManualClock();
  const { rpc, asked } = recording((to, rid) => (to === 'b' ? [free(rid)] : [held(rid, 7)]));
  const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'], self: 'a', turn: () => 0 }, 'x', 100);
  await clock.flush();
  assert.equal(asked, ['a', 'b', 'c']);
  assert.equal(clock.now(), 0, 'no timer waited out');
  assert.is((await p).kind, 'held');
});

test('read: the first peer does not answer -> the others are asked after a tenth of the phase timeout', async () => {
  const clock = new ManualClock();
  const { rpc, asked } = recording((to, rid) => (to === 'b' ? [] : [free(rid)]));
  const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'], self: 'a', turn: () => 0 }, 'x', 100);
  await clock.flush();
  assert.equal(asked, ['a', 'b']);
  await clock.advance(10);
  assert.equal(asked, ['a', 'b', 'c']);
  assert.equal(await p, { kind: 'free' });
});

test('read: an unreachable peer -> not asked first', async () => {
  const clock = new ManualClock();
  const { rpc, asked } = recording((_to, rid) => [free(rid)]);
  const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'], self: 'a', turn: () => 0, reachable: (n) => n !== 'b' }, 'x', 100);
  await clock.flush();
  await p;
  assert.equal(asked, ['a', 'c']);
});

test('read: this node does not vote (recovering) -> the others are asked at once', async () => {
  const clock = new ManualClock();
  const { rpc, asked } = recording((to, rid) => (to === 'a' ? [{ type: 'readR', rid, name: 'x', ok: false }] : [free(rid)]));
  const p = quorumRead({ clock, rpc, members: () => ['a', 'b', 'c'], self: 'a', turn: () => 0 }, 'x', 100);
  await clock.flush();
  assert.equal(await p, { kind: 'free' });
  assert.equal(asked, ['a', 'b', 'c']);
  assert.equal(clock.now(), 0);
});

test.run();
