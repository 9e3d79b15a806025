/**
 * Clocks: ManualClock (due order, ties in scheduling order, clear, counts, nextDue, advance semantics)
 * and SkewedClock (rate, offset, jump, timers scaled to its rate). No real time is used.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LivelockError, ManualClock, SkewedClock } from '../../lib/clock.js';

test('ManualClock: starts at the given time and stands still until advanced', async () => {
  const c = new ManualClock(100);
  assert.is(c.now(), 100);
  assert.is(c.now(), 100);
  await c.advance(50);
  assert.is(c.now(), 150);
  await c.advance(-10);
  assert.is(c.now(), 150, 'never moves backwards');
  assert.is(new ManualClock().now(), 0);
});

test('ManualClock: timers run in due order, each seeing its own due time', async () => {
  const c = new ManualClock();
  const log: [string, number][] = [];
  c.setTimeout(() => log.push(['c', c.now()]), 30);
  c.setTimeout(() => log.push(['a', c.now()]), 10);
  c.setTimeout(() => log.push(['b', c.now()]), 20);
  await c.advance(100);
  assert.equal(log, [['a', 10], ['b', 20], ['c', 30]]);
  assert.is(c.now(), 100);
});

test('ManualClock: timers due at the same instant -> run in scheduling order', async () => {
  const c = new ManualClock();
  const log: number[] = [];
  for (let i = 0; i < 6; i++) c.setTimeout(() => log.push(i), 5);
  // Scheduled later with a shorter delay but the same due time.
  await c.advance(2);
  c.setTimeout(() => log.push(99), 3);
  await c.advance(10);
  assert.equal(log, [0, 1, 2, 3, 4, 5, 99]);
});

test('ManualClock: only timers due by the target run; the rest wait', async () => {
  const c = new ManualClock();
  const log: number[] = [];
  c.setTimeout(() => log.push(1), 10);
  c.setTimeout(() => log.push(2), 11);
  await c.advance(10);
  assert.equal(log, [1]);
  assert.is(c.pendingTimers(), 1);
  await c.advance(1);
  assert.equal(log, [1, 2]);
});

test('ManualClock: a timer scheduled by a timer -> runs in the same advance when due within it', async () => {
  const c = new ManualClock();
  const log: [string, number][] = [];
  c.setTimeout(() => {
    log.push(['outer', c.now()]);
    c.setTimeout(() => log.push(['inner', c.now()]), 5);
    c.setTimeout(() => log.push(['late', c.now()]), 500);
  }, 10);
  await c.advance(20);
  assert.equal(log, [['outer', 10], ['inner', 15]]);
  assert.is(c.pendingTimers(), 1);
});

test('ManualClock: promise callbacks caused by a timer settle before the next timer runs', async () => {
  const c = new ManualClock();
  const log: string[] = [];
  c.setTimeout(() => { void Promise.resolve().then(() => log.push('after-1')); log.push('t1'); }, 1);
  c.setTimeout(() => log.push('t2'), 2);
  await c.advance(5);
  assert.equal(log, ['t1', 'after-1', 't2']);
});

test('ManualClock: clearTimeout -> the timer never runs; clearing twice or undefined is harmless', async () => {
  const c = new ManualClock();
  const log: number[] = [];
  const h = c.setTimeout(() => log.push(1), 10);
  c.setTimeout(() => log.push(2), 10);
  c.clearTimeout(h);
  c.clearTimeout(h);
  c.clearTimeout(undefined);
  assert.is(c.pendingTimers(), 1);
  await c.advance(20);
  assert.equal(log, [2]);
});

test('ManualClock: a timer cleared by an earlier timer in the same advance -> does not run', async () => {
  const c = new ManualClock();
  const log: number[] = [];
  const late = c.setTimeout(() => log.push(2), 20);
  c.setTimeout(() => { log.push(1); c.clearTimeout(late); }, 10);
  await c.advance(30);
  assert.equal(log, [1]);
  assert.is(c.pendingTimers(), 0);
});

test('ManualClock: pendingTimers counts scheduled, not yet run or cleared', async () => {
  const c = new ManualClock();
  assert.is(c.pendingTimers(), 0);
  const a = c.setTimeout(() => {}, 5);
  c.setTimeout(() => {}, 10);
  c.setTimeout(() => {}, 15);
  assert.is(c.pendingTimers(), 3);
  c.clearTimeout(a);
  assert.is(c.pendingTimers(), 2);
  await c.advance(10);
  assert.is(c.pendingTimers(), 1);
  await c.advance(10);
  assert.is(c.pendingTimers(), 0);
});

test('ManualClock: nextDue -> earliest pending due time, undefined when none', async () => {
  const c = new ManualClock(1000);
  assert.is(c.nextDue(), undefined);
  const h = c.setTimeout(() => {}, 50);
  c.setTimeout(() => {}, 80);
  c.setTimeout(() => {}, 200);
  assert.is(c.nextDue(), 1050);
  c.clearTimeout(h);
  assert.is(c.nextDue(), 1080);
  await c.advance(100);
  assert.is(c.nextDue(), 1200);
  await c.advance(100);
  assert.is(c.nextDue(), undefined);
});

test('ManualClock: negative or zero delay -> due now, run by flush without moving time', async () => {
  const c = new ManualClock(7);
  const log: number[] = [];
  c.setTimeout(() => log.push(c.now()), -5);
  c.setTimeout(() => log.push(c.now()), 0);
  assert.is(c.nextDue(), 7);
  await c.flush();
  assert.equal(log, [7, 7]);
  assert.is(c.now(), 7);
});

test('ManualClock: timer handles are distinct', () => {
  const c = new ManualClock();
  const ids = new Set(Array.from({ length: 50 }, () => c.setTimeout(() => {}, 1).id));
  assert.is(ids.size, 50);
});

test('ManualClock: wallNow moves with monotonic time; stepWall moves only the wall clock', async () => {
  const c = new ManualClock(0, 1_000_000);
  assert.is(c.wallNow(), 1_000_000);
  await c.advance(250);
  assert.is(c.wallNow(), 1_000_250);
  c.stepWall(-5000);
  assert.is(c.wallNow(), 995_250);
  assert.is(c.now(), 250);
});

test('SkewedClock: rate 1 offset 0 -> starts at 0 and follows the base', async () => {
  const base = new ManualClock(500);
  const s = new SkewedClock(base);
  assert.is(s.now(), 0);
  await base.advance(100);
  assert.is(s.now(), 100);
});

test('SkewedClock: rate and offset -> offset + elapsed x rate', async () => {
  const base = new ManualClock(500);
  const fast = new SkewedClock(base, 1.5, 10_000);
  const slow = new SkewedClock(base, 0.5);
  assert.is(fast.now(), 10_000);
  await base.advance(200);
  assert.is(fast.now(), 10_300);
  assert.is(slow.now(), 100);
});

test('SkewedClock: setRate -> continuous at the change, new rate afterwards', async () => {
  const base = new ManualClock();
  const s = new SkewedClock(base, 2);
  await base.advance(100);
  assert.is(s.now(), 200);
  s.setRate(0.5);
  assert.is(s.now(), 200);
  await base.advance(100);
  assert.is(s.now(), 250);
});

test('SkewedClock: jump -> moves forward at once and keeps the rate', async () => {
  const base = new ManualClock();
  const s = new SkewedClock(base, 2);
  await base.advance(10);
  s.jump(1000);
  assert.is(s.now(), 1020);
  await base.advance(10);
  assert.is(s.now(), 1040);
  assert.is(base.now(), 20, 'the base clock does not jump');
});

test('SkewedClock: setTimeout(ms) -> fires when ms of the skewed clock have passed', async () => {
  const base = new ManualClock();
  const fast = new SkewedClock(base, 2);
  const slow = new SkewedClock(base, 0.5);
  const log: [string, number, number][] = [];
  fast.setTimeout(() => log.push(['fast', base.now(), fast.now()]), 100);
  slow.setTimeout(() => log.push(['slow', base.now(), slow.now()]), 100);
  assert.is(base.pendingTimers(), 2);
  assert.is(fast.pendingTimers(), 2);
  await base.advance(300);
  assert.equal(log, [['fast', 50, 100], ['slow', 200, 100]]);
});

test('SkewedClock: clearTimeout -> cancels on the base clock; wallNow is the base wall clock', async () => {
  const base = new ManualClock(0, 42_000);
  const s = new SkewedClock(base, 3, 7);
  const log: number[] = [];
  const h = s.setTimeout(() => log.push(1), 30);
  s.clearTimeout(h);
  assert.is(base.pendingTimers(), 0);
  await base.advance(100);
  assert.equal(log, []);
  assert.is(s.wallNow(), base.wallNow());
});

test('ManualClock: timers that keep rescheduling at the same instant -> LivelockError past the limit; time still moves otherwise', async () => {
  const c = new ManualClock(100);
  c.maxTimersPerInstant = 50;
  let spins = 0;
  const spin = (): void => {
    spins++;
    c.setTimeout(spin, 0);
  };
  c.setTimeout(spin, 5);
  const err = await c.advance(10).then(() => undefined, (e: unknown) => e);
  assert.instance(err, LivelockError);
  assert.is((err as LivelockError).at, 105);
  assert.ok(spins > 50 && spins < 60);

  // The same number of timers spread over distinct instants is fine.
  const d = new ManualClock();
  d.maxTimersPerInstant = 50;
  let ticks = 0;
  const tick = (): void => {
    ticks++;
    if (ticks < 200) d.setTimeout(tick, 1);
  };
  d.setTimeout(tick, 1);
  await d.advance(500);
  assert.is(ticks, 200);
});

test.run();
