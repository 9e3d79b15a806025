/**
 * `pes/plugins/cron`: singleton cron jobs on croner. Every node declares the same job; the node that
 * owns singleton `cron/<name>` schedules it, and each fire runs on at most one node of the cluster.
 *
 * ```ts
 * import { cron } from 'pes/plugins/cron';
 * const job = cron(node, 'nightly-report', '0 0 3 * * *', async ({ token, scheduledAt, signal }) => {
 *   await writeReport(scheduledAt, { fencingToken: token, signal });
 * }, { timezone: 'Europe/Paris', catchUp: 'last' });
 * // later: await job.stop();
 * ```
 *
 * ## How it runs
 * croner only computes fire times (`new Cron(pattern, { timezone, paused: true }).nextRun(date)`); the
 * owner schedules them with the node's `Clock` and reads the date from `clock.wallNow()`. So the
 * job follows the node's clock (a ManualClock in tests) and never leaves a croner timer behind.
 *
 * ## Guarantees (per job)
 * - **A fire never runs on two nodes.** A fire `s` runs only on the owner, only once the owner's wall
 *   clock has reached `s`, and only if the owner's lease is valid at that instant
 *   (`ctx.registration.valid`, checked synchronously right before `fn` is called). pes ends a lease
 *   before any other node can be granted the name, so every fire the old owner ran, it ran before the
 *   new owner's grant. A new owner that got the job *without* a handoff (the old owner died, was cut
 *   off or lost its lease) therefore runs only fires strictly later than its takeover time plus
 *   {@link CronOptions.maxClockSkewMs}: a fire the old owner could have run would have to be at or
 *   before the old owner's wall clock at its last act, which is at most the new owner's takeover time
 *   plus the skew. This holds as long as wall clocks differ by at most `maxClockSkewMs` (default 1 s).
 *   After a handoff (`node.transfer`, `node.drain`) the old owner stops scheduling before it hands
 *   over, and passes the latest fire it ran or skipped (its watermark); the new owner never runs a
 *   fire at or before that watermark.
 * - **Fires can be missed** during a failover: between the old owner's last act and the new owner's
 *   first fire (at most one lease period and a contention round, plus `maxClockSkewMs`), and during a
 *   handoff's gap. {@link CronOptions.catchUp} decides what happens to them (below).
 * - **Overrun protection** (croner's `protect`, on by default): a fire that comes while the previous
 *   run of this job on this node is still running is skipped and counted (`stats().skippedOverrun`).
 *   Runs never overlap across nodes in a handoff either: the old owner's in-flight run is awaited
 *   (its `signal` aborted) before the new owner starts. A skipped fire counts as handled: no later
 *   owner runs it either. After an unclean failover the old owner's run
 *   may still be finishing (its `signal` is aborted before the takeover); use the fencing `token`
 *   for writes that must not interleave.
 * - **Catch-up** (`catchUp`): `'skip'` (default) drops missed fires. `'last'` runs the most recent
 *   missed fire once, at once, when a new owner starts after a handoff (the handoff carries the exact
 *   watermark, so "missed" is known). After an unclean takeover nothing is provably missed (any fire
 *   up to the takeover may have been run by the old owner just before it died), so `'last'` runs
 *   nothing then: missing a fire is preferred to running one twice.
 */
import { Cron, type CronOptions as CronerOptions } from 'croner';
import type { TimerHandle } from '../lib/clock.js';
import { InvalidArgumentError } from '../lib/errors.js';
import type { PesNode } from '../lib/node.js';
import type { PesPlugin } from '../lib/plugin.js';
import type { Singleton, SingletonContext } from '../lib/singleton.js';

/** What a job function receives for one fire. */
export interface CronContext {
  /** The job name (as passed to {@link cron}). */
  readonly name: string;
  /** Fencing token of the ownership this fire runs under; it strictly rises across owners. */
  readonly token: number;
  /** The fire time this run is for (whole seconds, from the pattern), not the time it started. */
  readonly scheduledAt: Date;
  /** Aborted when this node's ownership of the job ends (before anyone else can be granted it). */
  readonly signal: AbortSignal;
  /** The node running the fire. */
  readonly node: string;
  /** True when this run is the catch-up of a missed fire (`catchUp: 'last'`). */
  readonly catchUp: boolean;
}

/** A job function. Its result is ignored; a throw or rejection is counted and passed to `onError`. */
export type CronFn = (ctx: CronContext) => unknown;

/** Why a fire was not run on the owner. */
export type CronSkipReason = 'overrun' | 'lease';

/** Options of one job. */
export interface CronOptions {
  /** IANA timezone the pattern is read in (croner's `timezone`); the process's zone by default. */
  readonly timezone?: string;
  /** What a new owner does with fires missed while nobody ran the job (see the module notes). Default 'skip'. */
  readonly catchUp?: 'skip' | 'last';
  /** Skip a fire while this job's previous run is still running on this node (default true). */
  readonly protect?: boolean;
  /**
   * Upper bound on the difference between any two nodes' wall clocks, in ms (default 1000). After a
   * takeover without handoff, fires up to the takeover time plus this bound are not run.
   */
  readonly maxClockSkewMs?: number;
  /** Called when `fn` throws or rejects. */
  readonly onError?: (error: unknown, ctx: CronContext) => void;
  /** Called when the owner skips a fire (overrun, or lease no longer valid at fire time). */
  readonly onSkip?: (scheduledAt: Date, reason: CronSkipReason) => void;
  /** Further croner pattern options (`mode`, `domAndDow`, `startAt`, `stopAt`, `dayOffset`...). */
  readonly croner?: Omit<CronerOptions, 'timezone' | 'paused' | 'protect' | 'catch' | 'kill' | 'name' | 'unref' | 'maxRuns' | 'interval' | 'context'>;
}

/** Counters of one job on this node. */
export interface CronJobStats {
  /** Fires run here (catch-ups included). */
  readonly fired: number;
  /** Fires skipped here because the previous run was still running. */
  readonly skippedOverrun: number;
  /** Fires skipped here because the lease was no longer valid at fire time. */
  readonly skippedLease: number;
  /** Fires known to be missed by this node as owner (handoff gap, late timers), catch-ups excluded. */
  readonly missed: number;
  /** Missed fires run by `catchUp: 'last'`. */
  readonly caughtUp: number;
  /** Runs whose function threw or rejected. */
  readonly failed: number;
  /** The latest fire run here. */
  readonly lastFire: Date | undefined;
}

/** What {@link cron} returns: this node's handle on the job. */
export interface CronJobHandle {
  /** The job name. */
  readonly name: string;
  /** The singleton name the nodes contend for: `cron/<name>`. */
  readonly singleton: string;
  /** True while this node owns the job and schedules it. */
  readonly running: boolean;
  /** True while a run of the job is in progress on this node. */
  readonly busy: boolean;
  /** Fencing token of this node's current ownership, if it owns the job. */
  readonly token: number | undefined;
  /**
   * The next fire: on the owner, the next fire it has scheduled; elsewhere, the pattern's next fire
   * after this node's wall clock (where the cluster will run it, barring a failover). Null once
   * stopped or when the pattern has no further fire.
   */
  nextRun(): Date | null;
  /** This node's counters for the job. */
  stats(): CronJobStats;
  /**
   * Undeclares the job on this node: stops scheduling, waits for an in-flight run here (its signal is
   * aborted) and releases the job, which another node that declares it then takes over. To stop the
   * job everywhere, stop it on every node. Idempotent.
   */
  stop(): Promise<void>;
}

/** The state a handoff carries from the old owner to the new one. */
export interface CronHandoffState {
  /** Epoch ms: no fire at or before it may be run by the new owner. */
  readonly watermark: number;
}

/** Longest timer the scheduler sets: it re-reads the wall clock at least this often (clock steps). */
const MAX_TIMER_MS = 60_000;
/** Most fires walked one by one when counting missed fires; a longer gap is counted approximately. */
const MAX_WALK = 10_000;

interface Ownership {
  readonly ctx: SingletonContext<CronHandoffState>;
  /** Fires at or before it are never run by this ownership or its successors. */
  watermark: number;
  /** The next fire this ownership will consider, epoch ms. */
  next: number | undefined;
  timer: TimerHandle | undefined;
  active: boolean;
  busy: number;
  readonly finished: Promise<void>;
  readonly resolve: () => void;
}

class CronJob implements CronJobHandle {
  readonly name: string;
  readonly singleton: string;
  readonly #node: PesNode;
  readonly #fn: CronFn;
  readonly #calc: Cron;
  readonly #catchUp: 'skip' | 'last';
  readonly #protect: boolean;
  readonly #skew: number;
  readonly #onError: CronOptions['onError'];
  readonly #onSkip: CronOptions['onSkip'];
  readonly #declared: Singleton<CronHandoffState>;
  #own: Ownership | undefined;
  #busy = 0;
  #stopped = false;
  #stats = { fired: 0, skippedOverrun: 0, skippedLease: 0, missed: 0, caughtUp: 0, failed: 0, lastFire: undefined as Date | undefined };

  constructor(node: PesNode, name: string, pattern: string, fn: CronFn, opts: CronOptions) {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('name', 'a cron job needs a non-empty name');
    if (typeof fn !== 'function') throw new InvalidArgumentError('fn', 'fn must be a function');
    const catchUp = opts.catchUp ?? 'skip';
    if (catchUp !== 'skip' && catchUp !== 'last') throw new InvalidArgumentError('catchUp', "catchUp must be 'skip' or 'last'");
    const skew = opts.maxClockSkewMs ?? 1000;
    if (!Number.isFinite(skew) || skew < 0) throw new InvalidArgumentError('maxClockSkewMs', 'maxClockSkewMs must be a finite number >= 0');
    try {
      // No callback: croner sets no timer; it is used as a calculator only.
      this.#calc = new Cron(pattern, { ...opts.croner, ...(opts.timezone === undefined ? {} : { timezone: opts.timezone }), paused: true });
      // croner checks the timezone only when it computes a date: do it now, not at the first fire.
      this.#calc.nextRun(new Date(node.clock.wallNow()));
    } catch (e) {
      throw new InvalidArgumentError('pattern', `invalid cron pattern or timezone: ${(e as Error).message}`);
    }
    this.name = name;
    this.singleton = `cron/${name}`;
    this.#node = node;
    this.#fn = fn;
    this.#catchUp = catchUp;
    this.#protect = opts.protect ?? true;
    this.#skew = skew;
    this.#onError = opts.onError;
    this.#onSkip = opts.onSkip;
    this.#declared = node.singleton<CronHandoffState>(this.singleton, {
      start: (ctx) => this.#start(ctx),
      stop: () => this.#halt(this.#own),
      handoff: () => this.#handoff(),
    });
  }

  get running(): boolean {
    return this.#own?.active === true && this.#declared.running;
  }

  get busy(): boolean {
    return this.#busy > 0;
  }

  get token(): number | undefined {
    return this.running ? this.#own?.ctx.token : undefined;
  }

  nextRun(): Date | null {
    if (this.#stopped) return null;
    const own = this.#own;
    if (own?.active === true) return own.next === undefined ? null : new Date(own.next);
    return this.#calc.nextRun(new Date(this.#node.clock.wallNow()));
  }

  stats(): CronJobStats {
    return { ...this.#stats };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#declared.close();
  }

  // ---- ownership -----------------------------------------------------------------------------------

  /** Runs while this node owns the job; resolves once scheduling ended and the in-flight run finished. */
  #start(ctx: SingletonContext<CronHandoffState>): Promise<void> {
    let resolve!: () => void;
    const finished = new Promise<void>((r) => { resolve = r; });
    const wall = this.#node.clock.wallNow();
    // With a handoff the old owner's watermark is exact; without one, any fire up to the takeover (plus
    // the clock skew) may have been run by the old owner just before its lease ended.
    const watermark = ctx.state?.watermark ?? wall + this.#skew;
    const own: Ownership = { ctx, watermark, next: undefined, timer: undefined, active: true, busy: 0, finished, resolve };
    this.#own = own;
    ctx.signal.addEventListener('abort', () => this.#halt(own), { once: true });
    if (ctx.signal.aborted || this.#stopped) {
      this.#halt(own);
      return finished;
    }
    // Fires in (watermark, now] were missed (only after a handoff is that interval ever non-empty).
    const missed = this.#firesIn(watermark, wall);
    if (missed.count > 0) {
      if (this.#catchUp === 'last' && missed.last !== undefined) {
        this.#stats.missed += missed.count - 1;
        this.#fire(own, missed.last, true);
      } else {
        this.#stats.missed += missed.count;
      }
    }
    own.next = this.#after(Math.max(own.watermark, wall));
    this.#arm(own);
    return finished;
  }

  /** Before a transfer: stop scheduling first, then hand over the watermark (nothing runs after it). */
  #handoff(): CronHandoffState {
    const own = this.#own;
    if (own === undefined) return { watermark: this.#node.clock.wallNow() + this.#skew };
    own.active = false;
    this.#node.clock.clearTimeout(own.timer);
    own.timer = undefined;
    return { watermark: own.watermark };
  }

  #halt(own: Ownership | undefined): void {
    if (own === undefined) return;
    own.active = false;
    this.#node.clock.clearTimeout(own.timer);
    own.timer = undefined;
    if (own.busy === 0) own.resolve();
  }

  // ---- scheduling ----------------------------------------------------------------------------------

  #arm(own: Ownership): void {
    this.#node.clock.clearTimeout(own.timer);
    own.timer = undefined;
    if (!own.active || own.next === undefined) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, own.next - this.#node.clock.wallNow()));
    own.timer = this.#node.clock.setTimeout(() => this.#tick(own), wait);
  }

  #tick(own: Ownership): void {
    own.timer = undefined;
    if (!own.active || own.next === undefined) return;
    const now = this.#node.clock.wallNow();
    // A fire runs only once the wall clock has reached it (the no-duplicate argument relies on it).
    if (now < own.next) return this.#arm(own);
    // Late (a paused process, a blocked loop): run the most recent due fire, count the older ones.
    const due = this.#firesIn(own.next - 1, now);
    this.#stats.missed += Math.max(0, due.count - 1);
    this.#fire(own, due.last ?? own.next, false);
    own.next = this.#after(Math.max(own.watermark, now));
    this.#arm(own);
  }

  /** Decides one fire on the owner: skip it (overrun, lease) or run it. */
  #fire(own: Ownership, at: number, catchUp: boolean): void {
    if (at <= own.watermark) return;
    const scheduledAt = new Date(at);
    if (this.#protect && this.#busy > 0) {
      own.watermark = Math.max(own.watermark, at);
      this.#stats.skippedOverrun++;
      this.#skip(scheduledAt, 'overrun');
      return;
    }
    // Checked synchronously right before fn: valid now means no other node can hold the job now.
    if (own.ctx.signal.aborted || !own.ctx.registration.valid) {
      this.#stats.skippedLease++;
      this.#skip(scheduledAt, 'lease');
      this.#halt(own);
      return;
    }
    own.watermark = Math.max(own.watermark, at);
    this.#stats.fired++;
    if (catchUp) this.#stats.caughtUp++;
    this.#stats.lastFire = scheduledAt;
    const ctx: CronContext = { name: this.name, token: own.ctx.token, scheduledAt, signal: own.ctx.signal, node: this.#node.id, catchUp };
    own.busy++;
    this.#busy++;
    void this.#run(ctx).finally(() => {
      own.busy--;
      this.#busy--;
      if (!own.active && own.busy === 0) own.resolve();
    });
  }

  async #run(ctx: CronContext): Promise<void> {
    try {
      await this.#fn(ctx);
    } catch (e) {
      this.#stats.failed++;
      try {
        this.#onError?.(e, ctx);
      } catch {
        // A failing error hook must not stop the schedule.
      }
    }
  }

  #skip(at: Date, reason: CronSkipReason): void {
    try {
      this.#onSkip?.(at, reason);
    } catch {
      // As for onError.
    }
  }

  /** The first fire strictly after `ms`, or undefined when the pattern has none. */
  #after(ms: number): number | undefined {
    return this.#calc.nextRun(new Date(ms))?.getTime();
  }

  /** Fires in (from, to]: how many, and the latest. */
  #firesIn(from: number, to: number): { count: number; last: number | undefined } {
    let count = 0;
    let last: number | undefined;
    for (let at = this.#after(from); at !== undefined && at <= to; at = this.#after(at)) {
      count++;
      last = at;
      if (count >= MAX_WALK) {
        // A very long gap: take the latest fire directly and stop counting one by one.
        const prev = this.#calc.previousRuns(1, new Date(to + 1))[0]?.getTime();
        if (prev !== undefined && prev > at) { last = prev; count++; }
        break;
      }
    }
    return { count, last };
  }
}

/**
 * Declares the singleton cron job `name` on `node`. Call it with the same arguments on every node of
 * the cluster; the node that owns `cron/<name>` schedules `pattern` (croner syntax, seconds optional)
 * and runs `fn` for each fire. See the module notes for the exact guarantees.
 *
 * @throws InvalidArgumentError for an invalid name, pattern, timezone or option;
 *   AlreadyRegisteredError when this node already declares a job with that name.
 */
export function cron(node: PesNode, name: string, pattern: string, fn: CronFn, opts: CronOptions = {}): CronJobHandle {
  return new CronJob(node, name, pattern, fn, opts);
}

/** One job for {@link cronPlugin}. */
export interface CronJobDefinition {
  /** Job name; the singleton is `cron/<name>`. */
  readonly name: string;
  /** croner pattern (5, 6 or 7 fields, or a nickname such as `@hourly`). */
  readonly pattern: string;
  /** Runs for each fire, on the owner only. */
  readonly fn: CronFn;
  readonly options?: CronOptions;
}

/** The plugin {@link cronPlugin} returns; its handles are available once `node.use` resolved. */
export interface CronPlugin extends PesPlugin {
  /** This node's handle of each job, by job name (empty before setup and after stop). */
  readonly jobs: ReadonlyMap<string, CronJobHandle>;
}

/**
 * The jobs as a plugin: `await node.use(cronPlugin([{ name, pattern, fn, options }]))` declares each
 * one with {@link cron}; stopping the node stops them first. One plugin instance serves one node.
 */
export function cronPlugin(jobs: readonly CronJobDefinition[]): CronPlugin {
  const handles = new Map<string, CronJobHandle>();
  let attached = false;
  return {
    name: 'cron',
    jobs: handles,
    setup(node: PesNode): void {
      if (attached) throw new InvalidArgumentError('plugin', 'a cronPlugin instance serves one node; create one per node');
      attached = true;
      try {
        for (const j of jobs) handles.set(j.name, cron(node, j.name, j.pattern, j.fn, j.options));
      } catch (e) {
        for (const h of handles.values()) void h.stop();
        handles.clear();
        attached = false;
        throw e;
      }
    },
    async stop(): Promise<void> {
      await Promise.all([...handles.values()].map((h) => h.stop()));
      handles.clear();
      attached = false;
    },
  };
}
