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
import type { Singleton, SingletonContext } from '../lib/singleton.js';
import { Run } from './consumer/run.js';
import type { ConsumerOptions, ConsumerStats, JobHandler, JobSource, PushSource, ResolvedOptions } from './consumer/types.js';

export type {
  JobContext, JobHandler, SourceContext, IterableSource, PushSource, JobSource, ReturnReason, ReturnInfo, ConsumerErrorInfo,
  ConsumerOptions, ConsumerStats,
} from './consumer/types.js';

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
  readonly #opts: ResolvedOptions<J>;
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
