/**
 * The ZeroMQ mesh's batcher: what is queued for a peer in one turn leaves as one batch at the end of the
 * turn, and work handed to `after` runs once those batches are out (a notice handled after the replies).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, settle } from '../../lib/clock.js';
import type { Message } from '../../lib/protocol/messages.js';
import { Batcher } from '../../lib/transport/batcher.js';

const hello = (rid: number): Message => ({ type: 'hello', rid });

function rig(): { b: Batcher; log: string[]; clock: ManualClock } {
  const clock = new ManualClock();
  const log: string[] = [];
  const b = new Batcher(clock, 5, (peer, messages) => {
    log.push(`${peer}:${messages.map((m) => (m as { rid: number }).rid).join(',')}`);
  });
  return { b, log, clock };
}

test('batcher: after() runs once the turn\'s batches are out, in the order it was called', async () => {
  const { b, log } = rig();
  b.add('p1', hello(1), false);
  b.after(() => log.push('after-1'));
  b.add('p2', hello(2), false);
  b.add('p1', hello(3), false);
  b.after(() => log.push('after-2'));
  assert.equal(log, [], 'nothing leaves before the end of the turn');
  await settle();
  assert.equal(log, ['p1:1,3', 'p2:2', 'after-1', 'after-2']);
});

test('batcher: after() with nothing queued still runs at the end of the turn; work it queues leaves next turn', async () => {
  const { b, log } = rig();
  b.after(() => {
    log.push('after');
    b.add('p1', hello(7), false);
  });
  await settle();
  assert.equal(log, ['after']);
  await settle();
  assert.equal(log, ['after', 'p1:7']);
});

test('batcher: a throwing after() callback does not stop the flush or the callbacks behind it', async () => {
  const { b, log } = rig();
  const thrown: unknown[] = [];
  const listeners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', (e) => thrown.push(e));
  try {
    b.add('p1', hello(1), false);
    b.after(() => {
      throw new RangeError('boom');
    });
    b.after(() => log.push('second'));
    await settle();
    await settle();
  } finally {
    process.removeAllListeners('uncaughtException');
    for (const l of listeners) process.on('uncaughtException', l);
  }
  assert.equal(log, ['p1:1', 'second']);
  assert.is(thrown.length, 1);
  assert.instance(thrown[0], RangeError);
});

test('batcher: close() drops queued batches and after() callbacks; later calls do nothing', async () => {
  const { b, log } = rig();
  b.add('p1', hello(1), false);
  b.after(() => log.push('after'));
  b.close();
  b.add('p1', hello(2), false);
  b.after(() => log.push('late'));
  await settle();
  assert.equal(log, []);
});

test('batcher: lazy messages wait for the next eager batch to their peer and go first in it', async () => {
  const { b, log, clock } = rig();
  b.add('p1', hello(1), true);
  await settle();
  assert.equal(log, [], 'a lazy message alone waits');
  b.add('p1', hello(2), false);
  await settle();
  assert.equal(log, ['p1:1,2']);
  b.add('p2', hello(3), true);
  await clock.advance(5);
  assert.equal(log, ['p1:1,2', 'p2:3'], 'alone, it leaves after lazyMs');
});

test.run();
