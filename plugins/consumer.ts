/**
 * `pes/plugins/consumer`: a singleton consumer for any job source. Every node declares the same
 * consumer; exactly one node (the singleton's owner) takes jobs from the source and runs the handler.
 *
 * ```ts
 * import { consumer } from 'pes/plugins/consumer';
 * const c = consumer(node, 'billing-queue', ({ signal }) => queue.consume(signal), async (job, { token, signal }) => {
 *   await charge(job, { fencingToken: token, signal });
 *   await queue.ack(job);
 * }, { concurrency: 4, drainTimeout: 10_000, onReturn: (job) => queue.requeue(job) });
 * ```
 *
 * A source is either
 * - a factory of an async iterable, `(ctx) => AsyncIterable<Job>`, called afresh each time this node
 *   becomes the owner (its `ctx.signal` aborts when consumption stops: a source should then end its
 *   iteration), or
 * - a push source `{ start(push, ctx), stop() }`: `start` is called when this node becomes the owner,
 *   `stop` when it stops being it. `push(job)` resolves once the consumer has taken the job (a slot
 *   under the concurrency limit was free and the handler started) with `true`, or with `false` when
 *   the consumer is stopping; awaiting it gives the source backpressure.
 *
 * ## Policy when ownership ends (documented contract)
 *
 * Every job the consumer receives from the source ends in exactly one of three ways: **handled** (the
 * handler resolved), **failed** (the handler threw on its own; reported to `onError`, not retried: retry
 * and dead-lettering are the handler's or the source's business), or **returned** (handed to
 * `onReturn(job, info)`, so the source can requeue it). Without `onReturn`, returned jobs are dropped
 * (and counted in `stats.returned`).
 *
 * - Graceful end (a handoff by `node.transfer`/`node.drain`, the consumer or node being stopped): the
 *   consumer stops taking new jobs at once (the source's signal aborts, a push source's `stop()` is
 *   called), lets the handlers in flight finish for up to `drainTimeout` ms, then aborts the job signal
 *   of those still running and returns them (`reason: 'timeout'`). Only then does ownership move, so
 *   the next owner starts after this node's handlers have finished: no two handler calls overlap
 *   across owners, except for returned jobs whose handlers ignore their signal.
 * - Forced end (the lease could not be renewed, the node crashed or was cut off, the name was
 *   unregistered or handed away by someone else): another node may be granted the consumer very soon,
 *   so the job signals of every handler in flight abort at once. A handler that then rejects is
 *   returned (`reason: 'interrupted'`); one that still runs after `drainTimeout` is returned
 *   (`reason: 'timeout'`). Pass `token` to whatever the handler writes, so late writes are fenced.
 * - A job the source delivers after consumption stopped (a pending `next()` that resolves late, a push
 *   refused with `false`) is returned at once (`reason: 'not-started'`).
 *
 * A source that fails (its iterator or `start` throws) is reported to `onError` and opened again after
 * `retryDelay` ms while this node still owns the consumer. A source that ends (iterator done) leaves the
 * consumer idle, still owning the name, until ownership ends.
 */
import { InvalidArgumentError } from '../lib/errors.js';
import type { PesNode } from '../lib/node.js';
import type { PesPlugin } from '../lib/plugin.js';
import type { Registration } from '../lib/registration.js';
import type { Singleton, SingletonContext } from '../lib/singleton.js';
import type { OwnershipChange } from '../lib/watch.js';
import type { TimerHandle } from '../lib/clock.js';

/** What a job handler receives besides the job. */
export interface JobContext {
  /** The consumer's (singleton's) name. */
  readonly name: string;
  /** This node's id. */
  readonly node: string;
  /** Fencing token of this node's ownership: pass it to whatever the handler writes. */
  readonly token: number;
  /**
   * Aborted when this job must stop: at once when ownership is lost, or at `drainTimeout` after a
   * graceful stop (handoff, drain, close). Handlers should stop work when it aborts.
   */
  readonly signal: AbortSignal;
  /** The registration behind this ownership (`registration.assertValid()` before a critical write). */
  readonly registration: Registration;
}

/** Handles one job. Resolve when done; a rejection counts as a failure (see the module policy). */
export type JobHandler<J> = (job: J, ctx: JobContext) => unknown;

/** What a source is given each time this node starts consuming. */
export interface SourceContext {
  readonly name: string;
  readonly node: string;
  readonly token: number;
  /** Aborted when consumption stops: stop delivering jobs (end the iteration). */
  readonly signal: AbortSignal;
}

/** An async-iterable source: called afresh each time this node becomes the owner. */
export type IterableSource<J> = (ctx: SourceContext) => AsyncIterable<J>;

/** A push source: the consumer starts it when this node becomes the owner and stops it when it stops being it. */
export interface PushSource<J> {
  /**
   * Begin delivering jobs with `push`. `push(job)` resolves `true` once the handler started, or `false`
   * when consumption is stopping (the job then goes to `onReturn`): await it for backpressure.
   */
  start(push: (job: J) => Promise<boolean>, ctx: SourceContext): void | Promise<void>;
  /** Stop delivering jobs. Called once per start, when consumption stops (or the source is reopened). */
  stop(): void | Promise<void>;
}

/** Any job source the consumer accepts. */
export type JobSource<J> = IterableSource<J> | PushSource<J>;

/** Why a job was returned to the source. */
export type ReturnReason = 'timeout' | 'interrupted' | 'not-started';

/** Passed to `onReturn` with each returned job. */
export interface ReturnInfo {
  readonly reason: ReturnReason;
  /** Fencing token of the ownership that took the job. */
  readonly token: number;
  readonly node: string;
}

/** Passed to `onError`. */
export interface ConsumerErrorInfo<J> {
  /** `handler`: the handler rejected on its own; `source`: the source failed; `return`: `onReturn` threw. */
  readonly phase: 'handler' | 'source' | 'return';
  /** The job concerned, for `handler` and `return`. */
  readonly job?: J;
  readonly token: number;
  readonly node: string;
}

/** Options of {@link consumer}. */
export interface ConsumerOptions<J> {
  /** Most handler calls in flight at once on the owner (default 1). */
  readonly concurrency?: number;
  /** How long, ms, in-flight handlers may run on after ownership ends before their jobs are returned (default 30000). */
  readonly drainTimeout?: number;
  /** Receives jobs that were taken but not handled (see the module policy): requeue them here. */
  readonly onReturn?: (job: J, info: ReturnInfo) => void | Promise<void>;
  /** Receives handler failures, source failures and `onReturn` failures. Never throws into the consumer. */
  readonly onError?: (error: unknown, info: ConsumerErrorInfo<J>) => void;
  /** Delay, ms, before a failed source is opened again (default 1000). */
  readonly retryDelay?: number;
  /** The owner's node stopped answering (singleton hook). */
  readonly onOwnerDown?: (change: OwnershipChange) => void;
  /** The consumer moved to another owner by handoff (singleton hook). */
  readonly onHandoff?: (change: OwnershipChange) => void;
  /** This node lost the consumer because its lease could not be renewed (singleton hook). */
  readonly onLost?: (change: OwnershipChange) => void;
}

/** Counters of one consumer on one node. */
export interface ConsumerStats {
  /** Times this node became the owner. */
  runs: number;
  /** Jobs received from the source. */
  received: number;
  handled: number;
  failed: number;
  returned: number;
}

/**
 * A singleton consumer, also a {@link PesPlugin}: `node.use(consumerPlugin(...))` declares it on that
 * node, and the node stops it (gracefully) before the node stops.
 */
export class Consumer<J> implements PesPlugin {
  /** The plugin's name: `consumer:<singleton name>`. */
  readonly name: string;
  /** The singleton's name (the same on every node). */
  readonly singletonName: string;
  readonly stats: ConsumerStats = { runs: 0, received: 0, handled: 0, failed: 0, returned: 0 };
  readonly #source: JobSource<J>;
  readonly #handler: JobHandler<J>;
  readonly #opts: Required<Pick<ConsumerOptions<J>, 'concurrency' | 'drainTimeout' | 'retryDelay'>> & ConsumerOptions<J>;
  #node: PesNode | undefined;
  #singleton: Singleton | undefined;
  #run: Run<J> | undefined;
  #closed = false;

  /**
   * A consumer not yet declared on any node: {@link Consumer.setup} (or `node.use`) declares it. Use
   * {@link consumer} to create and declare at once. Throws InvalidArgumentError on a bad argument.
   */
  constructor(name: string, source: JobSource<J>, handler: JobHandler<J>, opts: ConsumerOptions<J> = {}) {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('name', 'name must be a non-empty string');
    const isFactory = typeof source === 'function';
    const isPush = !isFactory && typeof source === 'object' && source !== null
      && typeof (source as PushSource<J>).start === 'function' && typeof (source as PushSource<J>).stop === 'function';
    if (!isFactory && !isPush) throw new InvalidArgumentError('source', 'source must be a function returning an AsyncIterable, or { start, stop }');
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler', 'handler must be a function');
    const concurrency = opts.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidArgumentError('concurrency', 'concurrency must be an integer >= 1');
    const drainTimeout = opts.drainTimeout ?? 30_000;
    if (!Number.isFinite(drainTimeout) || drainTimeout < 0) throw new InvalidArgumentError('drainTimeout', 'drainTimeout must be a number >= 0');
    const retryDelay = opts.retryDelay ?? 1000;
    if (!Number.isFinite(retryDelay) || retryDelay < 0) throw new InvalidArgumentError('retryDelay', 'retryDelay must be a number >= 0');
    this.name = `consumer:${name}`;
    this.singletonName = name;
    this.#source = source;
    this.#handler = handler;
    this.#opts = { ...opts, concurrency, drainTimeout, retryDelay };
  }

  /** The declared singleton (once attached to a node). */
  get singleton(): Singleton | undefined {
    return this.#singleton;
  }

  /** Whether this node is the owner and takes jobs now. */
  get running(): boolean {
    return this.#run !== undefined && !this.#run.stopping;
  }

  /** Handler calls in flight on this node now (also while draining after ownership ended). */
  get inFlight(): number {
    return this.#run?.inFlight ?? 0;
  }

  /** Fencing token of this node's current ownership, if it is the owner. */
  get token(): number | undefined {
    return this.running ? this.#run?.token : undefined;
  }

  /** PesPlugin: declares the consumer on `node` (a no-op when already declared there). */
  setup(node: PesNode): void {
    if (this.#node === node) return;
    if (this.#node !== undefined) throw new InvalidArgumentError('node', `consumer ${this.singletonName} is already declared on node ${this.#node.id}`);
    if (this.#closed) throw new InvalidArgumentError('node', `consumer ${this.singletonName} was stopped`);
    this.#node = node;
    const o = this.#opts;
    this.#singleton = node.singleton<never>(this.singletonName, {
      start: (ctx) => this.#start(ctx),
      ...(o.onOwnerDown === undefined ? {} : { onOwnerDown: o.onOwnerDown }),
      ...(o.onHandoff === undefined ? {} : { onHandoff: o.onHandoff }),
      ...(o.onLost === undefined ? {} : { onLost: o.onLost }),
    });
  }

  /** PesPlugin: stops consuming here (graceful, see the policy) and stops contending. Idempotent. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#singleton?.close();
  }

  /** Same as {@link Consumer.stop}. */
  close(): Promise<void> {
    return this.stop();
  }

  async #start(ctx: SingletonContext<never>): Promise<void> {
    const node = this.#node;
    if (node === undefined) return;
    this.stats.runs++;
    const run = new Run<J>(node, ctx, this.#source, this.#handler, this.#opts, this.stats);
    this.#run = run;
    try {
      await run.run();
    } finally {
      if (this.#run === run) this.#run = undefined;
    }
  }
}

/**
 * Declares a singleton consumer named `name` on `node`: declare it on every node with the same name,
 * source and handler; only the owner consumes. See the module documentation for the policy on
 * handoff, drain and loss. The result is also a PesPlugin (`node.use(c)` then stops it with the node).
 */
export function consumer<J>(node: PesNode, name: string, source: JobSource<J>, handler: JobHandler<J>, opts?: ConsumerOptions<J>): Consumer<J> {
  const c = new Consumer<J>(name, source, handler, opts);
  c.setup(node);
  return c;
}

/** A consumer as a plugin, declared when attached: `await node.use(consumerPlugin('q', source, handler))`. */
export function consumerPlugin<J>(name: string, source: JobSource<J>, handler: JobHandler<J>, opts?: ConsumerOptions<J>): Consumer<J> {
  return new Consumer<J>(name, source, handler, opts);
}

// ---- one ownership --------------------------------------------------------------------------------

interface InFlight<J> {
  readonly job: J;
  readonly abort: AbortController;
  /** This consumer aborted the job's signal (forced end or timeout). */
  interrupted: boolean;
  /** Already returned (timeout): its later settlement changes nothing. */
  returned: boolean;
  readonly done: Promise<void>;
}

type Opts<J> = Required<Pick<ConsumerOptions<J>, 'concurrency' | 'drainTimeout' | 'retryDelay'>> & ConsumerOptions<J>;

/** One period of ownership on this node: take jobs until the singleton's signal aborts, then drain. */
class Run<J> {
  readonly token: number;
  stopping = false;
  readonly #node: PesNode;
  readonly #ctx: SingletonContext<never>;
  readonly #source: JobSource<J>;
  readonly #handler: JobHandler<J>;
  readonly #opts: Opts<J>;
  readonly #stats: ConsumerStats;
  /** Aborted when consumption stops; the source's signal. */
  readonly #intakeStop = new AbortController();
  readonly #inFlight = new Set<InFlight<J>>();
  readonly #returns: Promise<void>[] = [];
  /** Slots taken (reserved or running); waiters get a slot handed over directly, in order. */
  #slots = 0;
  readonly #slotWaiters: ((ok: boolean) => void)[] = [];
  #intake: Promise<void> = Promise.resolve();
  #iterator: AsyncIterator<J> | undefined;
  #pushStopped: Promise<void> | undefined;
  #retryTimer: TimerHandle | undefined;
  #wakeRetry: (() => void) | undefined;

  constructor(node: PesNode, ctx: SingletonContext<never>, source: JobSource<J>, handler: JobHandler<J>, opts: Opts<J>, stats: ConsumerStats) {
    this.#node = node;
    this.#ctx = ctx;
    this.token = ctx.token;
    this.#source = source;
    this.#handler = handler;
    this.#opts = opts;
    this.#stats = stats;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get #sourceCtx(): SourceContext {
    return { name: this.#ctx.name, node: this.#ctx.node, token: this.token, signal: this.#intakeStop.signal };
  }

  async run(): Promise<void> {
    const ended = new Promise<void>((resolve) => {
      if (this.#ctx.signal.aborted) resolve();
      else this.#ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    if (!this.#ctx.signal.aborted) {
      this.#intake = typeof this.#source === 'function' ? this.#pullLoop(this.#source) : this.#pushLoop(this.#source);
    }
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
    for (const w of this.#slotWaiters.splice(0)) w(false);
    this.#wakeRetry?.();
    const it = this.#iterator;
    if (it?.return !== undefined) {
      // Not awaited: an async generator's return() waits behind a pending next().
      void Promise.resolve().then(() => it.return?.()).catch(() => undefined);
    }
    if (forced) for (const f of this.#inFlight) this.#interrupt(f);
  }

  /** Waits for in-flight handlers (and the source's shutdown) up to drainTimeout; returns the rest. */
  async #drain(): Promise<void> {
    const clock = this.#node.clock;
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => { timer = clock.setTimeout(resolve, this.#opts.drainTimeout); });
    const settled = Promise.all([this.#intake, this.#pushStopped, ...[...this.#inFlight].map((f) => f.done)]).then(() => undefined);
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

  // ---- intake -------------------------------------------------------------------------------------

  async #pullLoop(factory: IterableSource<J>): Promise<void> {
    while (!this.stopping) {
      try {
        const it = factory(this.#sourceCtx)[Symbol.asyncIterator]();
        this.#iterator = it;
        for (;;) {
          if (!(await this.#acquire())) return;
          let r: IteratorResult<J>;
          try {
            r = await it.next();
          } catch (e) {
            this.#release();
            throw e;
          }
          if (r.done === true) {
            this.#release();
            return; // the source ended: idle until ownership ends
          }
          this.#stats.received++;
          if (this.stopping) {
            this.#release();
            this.#return(r.value, 'not-started');
            continue; // drain what the source still hands over, returning each
          }
          this.#launch(r.value);
        }
      } catch (e) {
        this.#iterator = undefined;
        this.#error(e, 'source');
        await this.#retryPause();
      }
    }
  }

  async #pushLoop(source: PushSource<J>): Promise<void> {
    const push = (job: J): Promise<boolean> => this.#offer(job);
    while (!this.stopping) {
      let failure: unknown;
      const failed = new Promise<boolean>((resolve) => {
        Promise.resolve()
          .then(() => source.start(push, this.#sourceCtx))
          .catch((e: unknown) => { failure = e; resolve(true); });
      });
      const stopped = new Promise<boolean>((resolve) => {
        if (this.#intakeStop.signal.aborted) resolve(false);
        else this.#intakeStop.signal.addEventListener('abort', () => resolve(false), { once: true });
      });
      const didFail = await Promise.race([failed, stopped]);
      this.#pushStopped = Promise.resolve().then(() => source.stop()).catch((e: unknown) => this.#error(e, 'source'));
      if (!didFail) return;
      this.#error(failure, 'source');
      await this.#pushStopped;
      await this.#retryPause();
    }
  }

  async #offer(job: J): Promise<boolean> {
    this.#stats.received++;
    if (!this.stopping && (await this.#acquire())) {
      if (!this.stopping) {
        this.#launch(job);
        return true;
      }
      this.#release();
    }
    this.#return(job, 'not-started');
    return false;
  }

  #retryPause(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#node.clock.clearTimeout(this.#retryTimer);
        this.#retryTimer = undefined;
        this.#wakeRetry = undefined;
        resolve();
      };
      this.#wakeRetry = done;
      this.#retryTimer = this.#node.clock.setTimeout(done, this.#opts.retryDelay);
    });
  }

  // ---- concurrency --------------------------------------------------------------------------------

  /** A slot under the concurrency limit; false when consumption stops first. */
  #acquire(): Promise<boolean> {
    if (this.stopping) return Promise.resolve(false);
    if (this.#slots < this.#opts.concurrency && this.#slotWaiters.length === 0) {
      this.#slots++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => this.#slotWaiters.push(resolve));
  }

  /** Frees a slot, or hands it straight to the next waiter (so nobody can slip in between). */
  #release(): void {
    const next = this.#slotWaiters.shift();
    if (next !== undefined) next(true);
    else this.#slots--;
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
          this.#release();
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
