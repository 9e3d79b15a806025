/**
 * Request ids: each open id routes its replies to its own handler only; closing an id that is not open
 * (a default 0, a closed one, garbage) changes nothing; a reply to a closed id is dropped even after its
 * slot was reused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/clock.js';
import type { Message } from '../../lib/protocol/messages.js';
import { request, Rpc } from '../../lib/rpc.js';
import { MemoryNetwork, MemoryTransport } from '../../lib/transport/memory.js';

function rig(): { clock: ManualClock; rpc: Rpc; got: string[]; open: (tag: string) => number; reply: (rid: number) => void } {
  const clock = new ManualClock();
  const rpc = new Rpc({ transport: new MemoryTransport(new MemoryNetwork(clock), 'a', 1) });
  const got: string[] = [];
  return {
    clock,
    rpc,
    got,
    open: (tag) => rpc.open((_from, m) => got.push(`${tag}:${(m as { rid: number }).rid}`)),
    reply: (rid) => rpc.dispatch('b', { type: 'pong', rid } as Message),
  };
}

test('rpc: closing an id that is not open frees nothing, so two later requests never share a slot', () => {
  const r = rig();
  const first = r.open('first');
  r.rpc.close(first);
  // A component that never opened an id closes its default 0; others close twice or pass garbage.
  for (const bogus of [0, first, Number.NaN, -1, 5, undefined as unknown as number]) r.rpc.close(bogus);
  assert.is(r.rpc.open_, 0);
  const x = r.open('x');
  const y = r.open('y');
  assert.is.not(x, y);
  assert.is(r.rpc.open_, 2);
  r.reply(x);
  r.reply(y);
  assert.equal(r.got, [`x:${x}`, `y:${y}`]);
});

test('rpc: a reply to a closed id is dropped, also once its slot holds a newer request', () => {
  const r = rig();
  const old = r.open('old');
  r.rpc.close(old);
  const reused = r.open('new');
  r.reply(old);
  r.reply(0);
  r.reply(reused);
  assert.equal(r.got, [`new:${reused}`]);
  r.rpc.close(reused);
  r.reply(reused);
  assert.equal(r.got, [`new:${reused}`]);
  assert.is(r.rpc.open_, 0);
});

test('rpc: many ids open at once are distinct and each reaches its own handler', () => {
  const r = rig();
  const ids = Array.from({ length: 50 }, (_, i) => r.open(`h${i}`));
  for (let i = 0; i < 50; i += 2) r.rpc.close(ids[i] as number);
  const more = Array.from({ length: 25 }, (_, i) => r.open(`m${i}`));
  const open = [...ids.filter((_, i) => i % 2 === 1), ...more];
  assert.is(new Set(open).size, 50);
  for (const id of open) r.reply(id);
  assert.is(r.got.length, 50);
  for (const [i, id] of open.entries()) assert.ok((r.got[i] as string).endsWith(`:${id}`));
});

test('request: called off by its signal -> resolves undefined at once, its id closed and its timer gone; a late reply is dropped', async () => {
  const r = rig();
  const calledOff = new AbortController();
  let rid = 0;
  const p = request(r.rpc, r.clock, 'b', (id) => { rid = id; return { type: 'ping', rid: id } as Message; }, 5000, undefined, calledOff.signal);
  assert.is(r.rpc.open_, 1);
  assert.ok(r.clock.nextDue() !== undefined, 'its timeout is set');
  calledOff.abort();
  assert.is(await p, undefined);
  assert.is(r.rpc.open_, 0);
  assert.is(r.clock.nextDue(), undefined, 'no timer left');
  r.reply(rid);
  const already = new AbortController();
  already.abort();
  assert.is(await request(r.rpc, r.clock, 'b', (id) => ({ type: 'ping', rid: id } as Message), 5000, undefined, already.signal), undefined);
  assert.is(r.rpc.open_, 0);
  assert.is(r.clock.nextDue(), undefined);
});

test.run();
