/**
 * `pes/plugins/node-cron`: a node-cron 4 `RunCoordinator` backed by pes, so a task scheduled with
 * `distributed: true` runs once per fire across the cluster:
 *
 * ```ts
 * import cron from 'node-cron';
 * import { pesRunCoordinator } from 'pes/plugins/node-cron';
 * cron.setRunCoordinator(pesRunCoordinator(node));
 * cron.schedule('0 3 * * *', backup, { name: 'nightly-backup', distributed: true });
 * ```
 *
 * ## What node-cron asks
 * On every fire of a distributed task, on every instance, node-cron 4 calls
 * `shouldRun(key, ttlMs)` with `key = "<task name>:<fire time as ISO 8601>"` (one key per task *and*
 * fire) and `ttlMs = distributedLease` (30 000 by default), runs the task only on `true`, then calls
 * `onComplete(key)`. It asks only once the instance's wall clock has reached the fire time and at
 * most `missedExecutionTolerance` (1 s by default) after it; a throw skips the fire ("fail closed").
 *
 * ## Modes
 * - `'fire'` (default): each fire is a pes name, `<prefix><key>`. Every instance registers it; the
 *   majority protocol grants it to exactly one, which answers `true` and holds the name for `ttlMs`;
 *   the others get AlreadyRegisteredError and answer `false`. No failover gap: any instance that can
 *   reach a majority can win any fire. Costs one registration round per instance per fire (and a
 *   short-lived name), so it suits tasks that fire every few seconds or less often.
 * - `'owner'`: each task is a pes singleton, `<prefix><task name>`; only its owner answers `true`,
 *   from local state (no round trip per fire). Fires are missed while the owner fails over, and fires
 *   at or before a new owner's takeover time plus `maxClockSkewMs` are refused (the old owner may have
 *   run them); after a handoff (`node.drain`, `node.transfer`) the new owner resumes right after the
 *   old one's last answered fire. Declare the task names up front (`tasks`), or the first fire of each
 *   task only starts the election and is answered `false` everywhere.
 *
 * ## Guarantee
 * For a given key, at most one instance's `shouldRun` returns `true`, provided wall clocks differ by
 * at most `maxClockSkewMs` (default 1 s). In `'fire'` mode an instance answers `true` only when its
 * grant completes before `fire time + min(ttlMs, lease) - maxClockSkewMs` by its own wall clock
 * (`lease` = what pes guarantees a grant survives its holder's death: 3 heartbeats less the drift
 * bound), and the winner's name stays held, even if the winner dies, past every other instance's
 * deadline; so a second grant within any deadline is impossible. (This is why a won fire name is
 * held for `ttlMs` after the run completes, and why `stop()`, which `node.stop()` calls first, keeps
 * each won name until that fire's deadlines have passed.) In `'owner'` mode it is the cron
 * plugin's argument: the lease is checked at answer time, and a new owner refuses fires it cannot
 * prove the previous owner did not answer. Exactly one instance answers `true` when a majority is
 * reachable, the winner's wall clock reaches the fire within that window and (in `'owner'` mode) no
 * failover is in progress. A run is not fenced once started: a run that outlives its owner's lease is
 * not interrupted (node-cron has no cancellation); use `ttlMs` longer than your runs, and pes tokens
 * (`node.lookup(name)`) where overlap matters.
 */
import type { RunCoordinator } from 'node-cron';
import type { TimerHandle } from '../lib/clock.js';
import { AlreadyRegisteredError, InvalidArgumentError, TimeoutError } from '../lib/errors.js';
import { effectiveHeartbeat, leaseDuration } from '../lib/guard/lease.js';
import type { PesNode } from '../lib/node.js';
import type { PesPlugin } from '../lib/plugin.js';
import type { Owner } from '../lib/owner.js';
import type { Registration } from '../lib/registration.js';
import type { Singleton, SingletonContext } from '../lib/singleton.js';

/** Options of {@link pesRunCoordinator}. */
export interface PesRunCoordinatorOptions {
  /** `'fire'` (a pes name per fire, default) or `'owner'` (a pes singleton per task). See the module notes. */
  readonly mode?: 'fire' | 'owner';
  /** Prefix of the pes names used (default `'node-cron/'`). */
  readonly prefix?: string;
  /** Upper bound on the difference between any two instances' wall clocks, in ms (default 1000). */
  readonly maxClockSkewMs?: number;
  /** `'owner'` mode: task names to declare (and so elect an owner for) at once. */
  readonly tasks?: readonly string[];
}

/** Counters of one coordinator. */
export interface PesRunCoordinatorStats {
  /** Fires this instance was told to run. */
  readonly elected: number;
  /** Fires another instance runs (or, in 'owner' mode, nobody may run). */
  readonly notElected: number;
  /** 'fire' mode: asks, or grants, after the answer deadline (answered false; a late grant is still held for ttlMs). */
  readonly late: number;
  /** Fires answered by a throw (node-cron skips them as 'coordinator-error'). */
  readonly errors: number;
  /** onComplete calls received. */
  readonly completed: number;
}

/**
 * A node-cron RunCoordinator with a lifecycle. It is also a PesPlugin, attached to its node when
 * created, so `node.stop()` stops it first (and waits for won fire names to become safe to release).
 */
export interface PesRunCoordinator extends RunCoordinator, PesPlugin {
  /** node-cron asks it on every fire of a distributed task: true on at most one instance per key. */
  shouldRun(key: string, ttlMs: number): Promise<boolean>;
  /** node-cron reports the end of a run; counted only (a won fire name is held for ttlMs regardless). */
  onComplete(key: string): void;
  stats(): PesRunCoordinatorStats;
  /**
   * `'owner'` mode: whether this instance owns `task` now (its lease valid). `'fire'` mode: false.
   */
  owns(task: string): boolean;
  /**
   * Releases what it holds: task singletons at once, each won fire name once no other instance can
   * still answer true for that fire (at most min(ttlMs, lease) after the fire time). Later
   * `shouldRun` calls answer false. Idempotent.
   */
  stop(): Promise<void>;
}

/** The key node-cron builds: `<task name>:<Date#toISOString()>` (the name may contain ':'). */
const KEY = /^(.*):(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)$/;

/** Splits a node-cron key into task name and fire time (undefined when it is not node-cron's format). */
export function parseRunKey(key: string): { task: string; fireAt: number | undefined } {
  const m = KEY.exec(key);
  if (m === null) return { task: key, fireAt: undefined };
  const at = Date.parse(m[2] as string);
  return Number.isNaN(at) ? { task: key, fireAt: undefined } : { task: m[1] as string, fireAt: at };
}

/** The state an owner hands to the next one in 'owner' mode. */
interface OwnerState {
  /** Epoch ms: no fire at or before it may be answered true by the next owner. */
  readonly watermark: number;
}

interface Ownership {
  readonly ctx: SingletonContext<OwnerState>;
  watermark: number;
  active: boolean;
}

interface Held {
  readonly owner: Owner;
  readonly reg: Registration;
  /** Wall ms from which no other instance can still answer true for this fire: releasing is safe. */
  readonly safeAt: number;
  timer: TimerHandle | undefined;
  released: boolean;
  readonly done: Promise<void>;
  readonly resolve: () => void;
}

class Coordinator implements PesRunCoordinator {
  readonly name = 'node-cron';
  readonly #node: PesNode;
  readonly #mode: 'fire' | 'owner';
  readonly #prefix: string;
  readonly #skew: number;
  readonly #tasks = new Map<string, { singleton: Singleton<OwnerState>; own: Ownership | undefined }>();
  readonly #held = new Set<Held>();
  #stopped = false;
  readonly #stats = { elected: 0, notElected: 0, late: 0, errors: 0, completed: 0 };

  constructor(node: PesNode, opts: PesRunCoordinatorOptions) {
    const mode = opts.mode ?? 'fire';
    if (mode !== 'fire' && mode !== 'owner') throw new InvalidArgumentError('mode', "mode must be 'fire' or 'owner'");
    const skew = opts.maxClockSkewMs ?? 1000;
    if (!Number.isFinite(skew) || skew < 0) throw new InvalidArgumentError('maxClockSkewMs', 'maxClockSkewMs must be a finite number >= 0');
    this.#node = node;
    this.#mode = mode;
    this.#prefix = opts.prefix ?? 'node-cron/';
    this.#skew = skew;
    if (mode === 'owner') for (const t of opts.tasks ?? []) this.#declare(t);
    // Stopped with the node, before the node releases its names (see stop()).
    void node.use(this).catch(() => {});
  }

  /** PesPlugin: nothing to do, the coordinator is bound to its node when created. */
  setup(): void {}

  async shouldRun(key: string, ttlMs: number): Promise<boolean> {
    if (this.#stopped) return this.#answer(false);
    try {
      const { task, fireAt } = parseRunKey(key);
      const now = this.#node.clock.wallNow();
      const at = fireAt ?? now;
      // Answer only once this wall clock has reached the fire: both proofs rely on it.
      if (now < at) return this.#answer(false);
      return this.#answer(this.#mode === 'owner' ? this.#ownerAnswer(task, at) : await this.#fireAnswer(key, at, ttlMs));
    } catch (e) {
      this.#stats.errors++;
      throw e;
    }
  }

  onComplete(): void {
    // A fire name is held for ttlMs whatever the run does: releasing it on completion would let an
    // instance that asks late win the same fire again.
    this.#stats.completed++;
  }

  stats(): PesRunCoordinatorStats {
    return { ...this.#stats };
  }

  owns(task: string): boolean {
    const own = this.#tasks.get(task)?.own;
    return own !== undefined && own.active && own.ctx.registration.valid;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // A fire name released before its safe time would let a slower instance win that fire again.
    await Promise.all([
      ...[...this.#held].map((h) => this.#releaseWhenSafe(h)),
      ...[...this.#tasks.values()].map((t) => t.singleton.close()),
    ]);
    this.#tasks.clear();
  }

  #answer(yes: boolean): boolean {
    if (yes) this.#stats.elected++;
    else this.#stats.notElected++;
    return yes;
  }

  // ---- 'fire' mode ---------------------------------------------------------------------------------

  async #fireAnswer(key: string, at: number, ttlMs: number): Promise<boolean> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new InvalidArgumentError('ttlMs', 'ttlMs must be a positive number');
    // A winner's name outlives, even if the winner dies at once, every instance's answer deadline.
    const survives = Math.min(ttlMs, leaseDuration(effectiveHeartbeat(this.#node.config.get('heartbeat'))));
    const deadline = at + survives - this.#skew;
    if (deadline <= at) {
      throw new InvalidArgumentError('ttlMs', `distributedLease (${ttlMs} ms) must exceed maxClockSkewMs (${this.#skew} ms)`);
    }
    const wait = deadline - this.#node.clock.wallNow();
    if (wait <= 0) {
      this.#stats.late++;
      return false;
    }
    const owner = this.#node.spawn();
    let reg: Registration;
    try {
      reg = await this.#node.register(this.#prefix + key, owner, { timeout: wait });
    } catch (e) {
      owner.exit('not elected');
      if (e instanceof AlreadyRegisteredError) return false;
      // Not granted before the deadline (e.g. the holder's node is unreachable and its value has not
      // expired yet): someone else may have won, so this is a plain no.
      if (e instanceof TimeoutError) {
        this.#stats.late++;
        return false;
      }
      throw e;
    }
    let resolve!: () => void;
    const done = new Promise<void>((r) => { resolve = r; });
    const held: Held = { owner, reg, safeAt: at + survives, timer: undefined, released: false, done, resolve };
    this.#held.add(held);
    held.timer = this.#node.clock.setTimeout(() => { void this.#release(held); }, ttlMs);
    reg.signal.addEventListener('abort', () => { void this.#release(held); }, { once: true });
    if (this.#stopped) {
      this.#releaseWhenSafe(held);
      return false;
    }
    if (this.#node.clock.wallNow() >= deadline || !reg.valid) {
      // Too late to be sure nobody else won before us; keep it held (others must still lose) but do not run.
      this.#stats.late++;
      return false;
    }
    return true;
  }

  async #release(h: Held): Promise<void> {
    if (h.released) return;
    h.released = true;
    this.#held.delete(h);
    this.#node.clock.clearTimeout(h.timer);
    h.timer = undefined;
    try {
      await h.reg.unregister();
    } catch {
      // Unreachable majority: the name expires on its own.
    }
    h.owner.exit('released');
    h.resolve();
  }

  /** Releases a won fire name once no other instance can still answer true for that fire. */
  #releaseWhenSafe(h: Held): Promise<void> {
    if (h.released) return h.done;
    this.#node.clock.clearTimeout(h.timer);
    h.timer = this.#node.clock.setTimeout(() => { void this.#release(h); }, Math.max(0, h.safeAt - this.#node.clock.wallNow()));
    return h.done;
  }

  // ---- 'owner' mode --------------------------------------------------------------------------------

  #ownerAnswer(task: string, at: number): boolean {
    const t = this.#tasks.get(task) ?? this.#declare(task);
    const own = t.own;
    if (own === undefined || !own.active || own.ctx.signal.aborted || !own.ctx.registration.valid) return false;
    if (at <= own.watermark) return false;
    own.watermark = at;
    return true;
  }

  #declare(task: string): { singleton: Singleton<OwnerState>; own: Ownership | undefined } {
    const entry: { singleton: Singleton<OwnerState>; own: Ownership | undefined } = { singleton: undefined as never, own: undefined };
    entry.singleton = this.#node.singleton<OwnerState>(this.#prefix + task, {
      start: (ctx) => {
        // Without a handoff, any fire up to now (plus the skew) may have been answered by the old owner.
        const watermark = ctx.state?.watermark ?? this.#node.clock.wallNow() + this.#skew;
        const own: Ownership = { ctx, watermark, active: true };
        entry.own = own;
        ctx.signal.addEventListener('abort', () => { own.active = false; }, { once: true });
      },
      stop: () => {
        if (entry.own !== undefined) entry.own.active = false;
      },
      handoff: () => {
        const own = entry.own;
        if (own === undefined) return { watermark: this.#node.clock.wallNow() + this.#skew };
        own.active = false; // stop answering before the name moves
        return { watermark: own.watermark };
      },
    });
    this.#tasks.set(task, entry);
    return entry;
  }
}

/**
 * A node-cron 4 RunCoordinator backed by pes node `node`: install it on every instance with
 * `cron.setRunCoordinator(pesRunCoordinator(node))` (or per task, `runCoordinator` in the task
 * options) and schedule tasks with `{ name, distributed: true }`. See the module notes for the modes
 * and the exact guarantee.
 *
 * @throws InvalidArgumentError for an unknown mode or a bad `maxClockSkewMs`.
 */
export function pesRunCoordinator(node: PesNode, opts: PesRunCoordinatorOptions = {}): PesRunCoordinator {
  return new Coordinator(node, opts);
}
