/**
 * Time, the only place in the library that reads it.
 *
 * Everything that needs "now" or a timer takes a {@link Clock}. Production uses {@link SystemClock}
 * (monotonic time from `performance.now`); tests use {@link ManualClock}, which only moves when told to,
 * so protocol tests are deterministic and never sleep.
 */

/** A scheduled callback; pass it to {@link Clock.clearTimeout}. */
export interface TimerHandle {
  readonly id: number;
}

/** The time source and timer facility every component receives. */
export interface Clock {
  /** Monotonic milliseconds. Only differences are meaningful; never compare across nodes. */
  now(): number;
  /** Wall-clock milliseconds since the epoch. Used only to derive fencing-token floors. */
  wallNow(): number;
  /** Runs `fn` after `ms` milliseconds of this clock. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** The number of timers scheduled and not yet run or cleared (for leak checks). */
  pendingTimers(): number;
}

/** A timer of a {@link SystemClock}: the handle holds the Node timer itself. */
class SystemTimer implements TimerHandle {
  readonly id: number;
  readonly clock: SystemClock;
  timeout: ReturnType<typeof setTimeout> | undefined;
  constructor(id: number, clock: SystemClock) {
    this.id = id;
    this.clock = clock;
  }
}

/**
 * The real clock: `performance.now()` and Node timers. A running node's timers keep the process alive,
 * as an open server would; `stop()` clears them all, so a stopped node never holds the process.
 *
 * Handles hold their Node timer, so no table maps ids to timers: a long-lived table that every protocol
 * phase adds to and removes from kept, in its discarded copies, each timer (and the guard it points to)
 * alive past the next young-generation collection, and about 1 KB per registration reached the old
 * generation as garbage.
 */
export class SystemClock implements Clock {
  #next = 1;
  #pending = 0;

  now(): number {
    return performance.now();
  }

  wallNow(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = new SystemTimer(this.#next++, this);
    this.#pending++;
    t.timeout = setTimeout(() => {
      if (t.timeout === undefined) return;
      t.timeout = undefined;
      this.#pending--;
      fn();
    }, Math.max(0, ms));
    return t;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (!(handle instanceof SystemTimer) || handle.clock !== this || handle.timeout === undefined) return;
    clearTimeout(handle.timeout);
    handle.timeout = undefined;
    this.#pending--;
  }

  pendingTimers(): number {
    return this.#pending;
  }
}

interface ManualTimer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock for tests: time stands still until {@link ManualClock.advance} moves it. Timers due at the
 * same instant run in the order they were scheduled. Between timers, pending promise callbacks run, so
 * async protocol code interleaves exactly as it would, but reproducibly.
 */
export class ManualClock implements Clock {
  /**
   * Most timers {@link advance} runs at one instant before it throws {@link LivelockError}: work that
   * keeps scheduling more work without letting time pass (a retry loop over a zero-delay network) would
   * otherwise never return. Unlimited by default; simulations set it.
   */
  maxTimersPerInstant = Infinity;
  #now: number;
  #wall: number;
  #seq = 0;
  #nextId = 1;
  readonly #timers = new Map<number, ManualTimer>();

  /** @param start monotonic start time; @param wallStart wall-clock start (epoch ms). */
  constructor(start = 0, wallStart = Date.UTC(2026, 0, 1)) {
    this.#now = start;
    this.#wall = wallStart - start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#wall + this.#now;
  }

  /** Moves the wall clock alone (monotonic time is unaffected), as an NTP step would. */
  stepWall(ms: number): void {
    this.#wall += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), seq: this.#seq++, fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.#timers.delete(handle.id);
  }

  pendingTimers(): number {
    return this.#timers.size;
  }

  /** Due time of the earliest pending timer, or undefined when none is pending. */
  nextDue(): number | undefined {
    let at: number | undefined;
    for (const t of this.#timers.values()) if (at === undefined || t.at < at) at = t.at;
    return at;
  }

  /** Runs every timer due now (and the promise callbacks they cause) without moving time. */
  async flush(): Promise<void> {
    await this.advance(0);
  }

  /**
   * Moves time forward by `ms`, running each timer at its due time, in order, and letting the
   * promise callbacks it causes settle before the next one.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + Math.max(0, ms);
    await settle();
    let sameInstant = 0;
    for (;;) {
      const next = this.#earliest(target);
      if (next === undefined) break;
      this.#timers.delete(next.id);
      sameInstant = next.at === this.#now ? sameInstant + 1 : 0;
      if (sameInstant > this.maxTimersPerInstant) throw new LivelockError(this.#now, sameInstant);
      this.#now = next.at;
      next.fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  #earliest(limit: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.#timers.values()) {
      if (t.at > limit) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/** Thrown by {@link ManualClock.advance} when more timers than allowed ran without time passing. */
export class LivelockError extends Error {
  override readonly name = 'LivelockError';
  /** The instant at which time stood still, and how many timers ran at it. */
  constructor(readonly at: number, readonly timers: number) {
    super(`${timers} timers ran at t=${at} without time passing`);
  }
}

/** Lets every queued promise callback run (a macrotask boundary; no time passes on a ManualClock). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A view of a base clock that runs at its own rate and offset, to model a node whose oscillator drifts
 * or whose monotonic clock started elsewhere. Timers are scheduled on the base clock.
 */
export class SkewedClock implements Clock {
  readonly #base: Clock;
  readonly #origin: number;
  #rate: number;
  #offset: number;

  constructor(base: Clock, rate = 1, offset = 0) {
    this.#base = base;
    this.#origin = base.now();
    this.#rate = rate;
    this.#offset = offset;
  }

  /** Changes the rate from now on, keeping `now()` continuous. */
  setRate(rate: number): void {
    const current = this.now();
    this.#offset = current - (this.#base.now() - this.#origin) * rate;
    this.#rate = rate;
  }

  /** Jumps this clock forward (a paused process sees a jump when it resumes). */
  jump(ms: number): void {
    this.#offset += ms;
  }

  now(): number {
    return this.#offset + (this.#base.now() - this.#origin) * this.#rate;
  }

  wallNow(): number {
    return this.#base.wallNow();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.#base.setTimeout(fn, ms / this.#rate);
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.#base.clearTimeout(handle);
  }

  pendingTimers(): number {
    return this.#base.pendingTimers();
  }
}
