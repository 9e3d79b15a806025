/**
 * The intake of one ownership: takes jobs from the source (pulling from an async iterable, or
 * accepting pushes) under the concurrency limit and hands each to the run, reopening a failed source
 * after `retryDelay` while consumption goes on. It decides nothing about a job once handed over.
 * @internal
 */
import type { Clock, TimerHandle } from '../../lib/clock.js';
import type { IterableSource, JobSource, PushSource, SourceContext } from './types.js';

/** What the intake hands jobs to: the run of one ownership. */
export interface IntakeSink<J> {
  /** True once consumption stopped: take nothing more. */
  stopping(): boolean;
  /** A slot under the concurrency limit; false when consumption stops first. */
  acquire(): Promise<boolean>;
  /** Gives back a slot taken by `acquire` that no job used. */
  release(): void;
  /** Counts a job received from the source (before it is launched or refused). */
  received(): void;
  /** Starts the handler on `job` (it holds a slot). */
  launch(job: J): void;
  /** A job that came after consumption stopped: returned at once. */
  refuse(job: J): void;
  /** The source failed (it is reopened after `retryDelay` while consumption goes on). */
  sourceFailed(error: unknown): void;
}

/** The intake of one ownership (see the module documentation); {@link Intake.open} once, {@link Intake.stop} when consumption stops. */
export class Intake<J> {
  readonly #clock: Clock;
  readonly #sink: IntakeSink<J>;
  readonly #source: JobSource<J>;
  /** The source's context; its signal aborts when consumption stops. */
  readonly #ctx: SourceContext;
  readonly #retryDelay: number;
  #loop: Promise<void> = Promise.resolve();
  #iterator: AsyncIterator<J> | undefined;
  #pushStopped: Promise<void> | undefined;
  #retryTimer: TimerHandle | undefined;
  #wakeRetry: (() => void) | undefined;

  constructor(components: { clock: Clock; sink: IntakeSink<J> }, options: { source: JobSource<J>; ctx: SourceContext; retryDelay: number }) {
    this.#clock = components.clock;
    this.#sink = components.sink;
    this.#source = options.source;
    this.#ctx = options.ctx;
    this.#retryDelay = options.retryDelay;
  }

  /** Starts taking jobs (once). */
  open(): void {
    this.#loop = typeof this.#source === 'function' ? this.#pullLoop(this.#source) : this.#pushLoop(this.#source);
  }

  /** Consumption stopped (the sink is stopping, the signal aborted): cut a retry pause short, end the iterator. */
  stop(): void {
    this.#wakeRetry?.();
    const it = this.#iterator;
    if (it?.return !== undefined) {
      // Not awaited: an async generator's return() waits behind a pending next().
      void Promise.resolve().then(() => it.return?.()).catch(() => undefined);
    }
  }

  /** What a drain waits for: the intake loop, and the push source's `stop()` once called. */
  pending(): (Promise<void> | undefined)[] {
    return [this.#loop, this.#pushStopped];
  }

  async #pullLoop(factory: IterableSource<J>): Promise<void> {
    const sink = this.#sink;
    while (!sink.stopping()) {
      try {
        const it = factory(this.#ctx)[Symbol.asyncIterator]();
        this.#iterator = it;
        for (;;) {
          if (!(await sink.acquire())) return;
          let r: IteratorResult<J>;
          try {
            r = await it.next();
          } catch (e) {
            sink.release();
            throw e;
          }
          if (r.done === true) {
            sink.release();
            return; // the source ended: idle until ownership ends
          }
          sink.received();
          if (sink.stopping()) {
            sink.release();
            sink.refuse(r.value);
            continue; // drain what the source still hands over, returning each
          }
          sink.launch(r.value);
        }
      } catch (e) {
        this.#iterator = undefined;
        sink.sourceFailed(e);
        await this.#retryPause();
      }
    }
  }

  async #pushLoop(source: PushSource<J>): Promise<void> {
    const push = (job: J): Promise<boolean> => this.#offer(job);
    const signal = this.#ctx.signal;
    while (!this.#sink.stopping()) {
      let failure: unknown;
      const failed = new Promise<boolean>((resolve) => {
        Promise.resolve()
          .then(() => source.start(push, this.#ctx))
          .catch((e: unknown) => { failure = e; resolve(true); });
      });
      const stopped = new Promise<boolean>((resolve) => {
        if (signal.aborted) resolve(false);
        else signal.addEventListener('abort', () => resolve(false), { once: true });
      });
      const didFail = await Promise.race([failed, stopped]);
      this.#pushStopped = Promise.resolve().then(() => source.stop()).catch((e: unknown) => this.#sink.sourceFailed(e));
      if (!didFail) return;
      this.#sink.sourceFailed(failure);
      await this.#pushStopped;
      await this.#retryPause();
    }
  }

  async #offer(job: J): Promise<boolean> {
    const sink = this.#sink;
    sink.received();
    if (!sink.stopping() && (await sink.acquire())) {
      if (!sink.stopping()) {
        sink.launch(job);
        return true;
      }
      sink.release();
    }
    sink.refuse(job);
    return false;
  }

  #retryPause(): Promise<void> {
    if (this.#sink.stopping()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#clock.clearTimeout(this.#retryTimer);
        this.#retryTimer = undefined;
        this.#wakeRetry = undefined;
        resolve();
      };
      this.#wakeRetry = done;
      this.#retryTimer = this.#clock.setTimeout(done, this.#retryDelay);
    });
  }
}
