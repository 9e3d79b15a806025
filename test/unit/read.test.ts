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

test.run();
