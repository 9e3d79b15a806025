/**
 * Peer liveness of the ZeroMQ mesh on a manual clock: pings every interval, up on the first frame,
 * down after `timeout` ms of silence (reported once), and stopping from inside a report ends the timer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/clock.js';
import { PeerLiveness } from '../../lib/transport/zmq-liveness.js';

const TIMING = { interval: 100, timeout: 300 };

function rig(): { clock: ManualClock; live: PeerLiveness; pings: [string, number][]; reports: [string, boolean, number][] } {
  const clock = new ManualClock();
  const pings: [string, number][] = [];
  const reports: [string, boolean, number][] = [];
  const live = new PeerLiveness(clock, TIMING, {
    ping: (peer, rid) => pings.push([peer, rid]),
    report: (peer, up) => reports.push([peer, up, clock.now()]),
  });
  return { clock, live, pings, reports };
}

test('liveness: pings every peer each interval with rising ids; unknown peers are not up', async () => {
  const r = rig();
  r.live.add('b');
  r.live.add('c');
  r.live.add('b');
  r.live.start();
  await r.clock.advance(250);
  assert.equal(r.pings, [['b', 1], ['c', 2], ['b', 3], ['c', 4]]);
  assert.not.ok(r.live.isUp('b'));
  assert.not.ok(r.live.isUp('x'));
  assert.is(r.live.heard('x'), false);
});

test('liveness: first frame -> up once; silence for the timeout -> down once, at the first tick past it', async () => {
  const r = rig();
  r.live.add('b');
  r.live.start();
  await r.clock.advance(50);
  assert.is(r.live.heard('b'), true);
  r.live.heard('b');
  assert.ok(r.live.isUp('b'));
  assert.equal(r.reports, [['b', true, 50]]);
  await r.clock.advance(1000);
  // Heard at 50: silent for 300 ms at 350, seen by the tick at 400; reported once.
  assert.equal(r.reports, [['b', true, 50], ['b', false, 400]]);
  assert.not.ok(r.live.isUp('b'));
  r.live.heard('b');
  assert.equal(r.reports.at(-1), ['b', true, 1050]);
});

test('liveness: a peer never heard from -> reported down once, after the timeout', async () => {
  const r = rig();
  r.live.add('b');
  r.live.start();
  await r.clock.advance(1000);
  assert.equal(r.reports, [['b', false, 300]]);
});

test('liveness: stop from inside a report -> no more ticks or pings; removed peers are forgotten', async () => {
  const clock = new ManualClock();
  const pings: string[] = [];
  const live: PeerLiveness = new PeerLiveness(clock, TIMING, {
    ping: (peer) => pings.push(peer),
    report: () => live.stop(),
  });
  live.add('b');
  live.add('c');
  live.remove('c');
  live.start();
  await clock.advance(1000);
  assert.equal(pings, ['b', 'b', 'b']);
  assert.is(clock.pendingTimers(), 0);
  assert.is(live.heard('c'), false);
});

test.run();
