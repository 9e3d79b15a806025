/**
 * One period of ownership of a consumer on this node: jobs come in through the {@link Intake} until the
 * singleton's signal aborts; each runs its handler and ends exactly once (handled, failed or returned);
 * then the run stops taking jobs and drains (see the policy in `pes/plugins/consumer`).
 * @internal
 */
import type { TimerHandle } from '../../lib/clock.js';
import type { PesNode } from '../../lib/node.js';
import type { SingletonContext } from '../../lib/singleton.js';
import { Intake } from './intake.js';
import { Slots } from './slots.js';
import type { ConsumerErrorInfo, ConsumerStats, JobContext, JobHandler, JobSource, ResolvedOptions, ReturnInfo, ReturnReason } from './types.js';

interface InFlight<J> {
  readonly job: J;
  readonly abort: AbortController;
  /** This consumer aborted the job's signal (forced end or timeout). */
  interrupted: boolean;
  /** Already returned (timeout): its later settlement changes nothing. */
  returned: boolean;
  readonly done: Promise<void>;
}

/** One period of ownership on this node: take jobs until the singleton's signal aborts, then drain. */
export class Run<J> {
  readonly token: number;
  stopping = false;
  readonly #node: PesNode;
  readonly #ctx: SingletonContext<never>;
  readonly #handler: JobHandler<J>;
  readonly #opts: ResolvedOptions<J>;
  readonly #stats: ConsumerStats;
  /** Aborted when consumption stops; the source's signal. */
  readonly #intakeStop = new AbortController();
  readonly #inFlight = new Set<InFlight<J>>();
  readonly #returns: Promise<void>[] = [];
  readonly #slots: Slots;
  readonly #intake: Intake<J>;

  constructor(node: PesNode, ctx: SingletonContext<never>, source: JobSource<J>, handler: JobHandler<J>, opts: ResolvedOptions<J>, stats: ConsumerStats) {
    this.#node = node;
    this.#ctx = ctx;
    this.token = ctx.token;
    this.#handler = handler;
    this.#opts = opts;
    this.#stats = stats;
    this.#slots = new Slots(opts.concurrency);
    this.#intake = new Intake<J>({
      clock: node.clock,
      sink: {
        stopping: () => this.stopping,
        acquire: () => this.#acquire(),
        release: () => this.#slots.release(),
        received: () => { this.#stats.received++; },
        launch: (job) => this.#launch(job),
        refuse: (job) => this.#return(job, 'not-started'),
        sourceFailed: (e) => this.#error(e, 'source'),
      },
    }, {
      source,
      ctx: { name: ctx.name, node: ctx.node, token: this.token, signal: this.#intakeStop.signal },
      retryDelay: opts.retryDelay,
    });
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async run(): Promise<void> {
    const ended = new Promise<void>((resolve) => {
      if (this.#ctx.signal.aborted) resolve();
      else this.#ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    if (!this.#ctx.signal.aborted) this.#intake.open();
    await ended;
    this.#stop();
    await this.#drain();
  }

  /** Ownership ended: stop taking jobs at once; on a forced end, tell every handler to stop now. */
  #stop(): void {
    this.stopping = true;
    // Registration still valid: a transfer, drain or close. Ended: the name may be granted elsewhere soon.
    const forced = this.#ctx.registration.ended !== undefined;
    this.#intakeStop.abort(this.#ctx.signal.reason);
    this.#slots.refuseWaiters();
    this.#intake.stop();
    if (forced) for (const f of this.#inFlight) this.#interrupt(f);
  }

  /** Waits for in-flight handlers (and the source's shutdown) up to drainTimeout; returns the rest. */
  async #drain(): Promise<void> {
    const clock = this.#node.clock;
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => { timer = clock.setTimeout(resolve, this.#opts.drainTimeout); });
    const settled = Promise.all([...this.#intake.pending(), ...[...this.#inFlight].map((f) => f.done)]).then(() => undefined);
    await Promise.race([settled, deadline]);
    clock.clearTimeout(timer);
    for (const f of this.#inFlight) {
      if (f.returned) continue;
      this.#interrupt(f);
      f.returned = true;
      this.#return(f.job, 'timeout');
    }
    // Requeues finish before the next owner may start (bounded, so a hung onReturn cannot block a handoff).
    if (this.#returns.length > 0) {
      let t2: TimerHandle | undefined;
      const bound = new Promise<void>((resolve) => { t2 = clock.setTimeout(resolve, Math.max(this.#opts.drainTimeout, 1000)); });
      await Promise.race([Promise.allSettled(this.#returns.splice(0)), bound]);
      clock.clearTimeout(t2);
    }
  }

  /** A slot under the concurrency limit; false when consumption stops first. */
  #acquire(): Promise<boolean> {
    if (this.stopping) return Promise.resolve(false);
    return this.#slots.acquire();
  }

  // ---- jobs ---------------------------------------------------------------------------------------

  #launch(job: J): void {
    const abort = new AbortController();
    const jobCtx: JobContext = {
      name: this.#ctx.name, node: this.#ctx.node, token: this.token, signal: abort.signal, registration: this.#ctx.registration,
    };
    const f: InFlight<J> = {
      job, abort, interrupted: false, returned: false,
      done: Promise.resolve()
        .then(() => this.#handler(job, jobCtx))
        .then(
          () => {
            if (!f.returned) this.#stats.handled++;
          },
          (e: unknown) => {
            if (f.returned) return;
            if (f.interrupted) {
              f.returned = true;
              this.#return(job, 'interrupted');
            } else {
              this.#stats.failed++;
              this.#error(e, 'handler', job);
            }
          },
        )
        .finally(() => {
          this.#inFlight.delete(f);
          this.#slots.release();
        }),
    };
    this.#inFlight.add(f);
  }

  #interrupt(f: InFlight<J>): void {
    if (f.interrupted) return;
    f.interrupted = true;
    f.abort.abort(this.#ctx.signal.reason);
  }

  #return(job: J, reason: ReturnReason): void {
    this.#stats.returned++;
    const onReturn = this.#opts.onReturn;
    if (onReturn === undefined) return;
    const info: ReturnInfo = { reason, token: this.token, node: this.#ctx.node };
    this.#returns.push(Promise.resolve().then(() => onReturn(job, info)).catch((e: unknown) => this.#error(e, 'return', job)));
  }

  #error(error: unknown, phase: ConsumerErrorInfo<J>['phase'], job?: J): void {
    const onError = this.#opts.onError;
    if (onError === undefined) return;
    try {
      onError(error, job === undefined ? { phase, token: this.token, node: this.#ctx.node } : { phase, job, token: this.token, node: this.#ctx.node });
    } catch {
      // A failing error hook must not stop the consumer.
    }
  }
}
