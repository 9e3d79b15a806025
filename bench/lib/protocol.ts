/**
 * The bench's own coordination protocol: the parent (bench/run.ts) sends one command at a time to
 * each node process (bench/fixtures/node.ts) over the child_process IPC channel (serialization
 * 'advanced', so latency samples travel as Float64Array), and the child answers with the same `seq`.
 * Nothing here is part of pes; it only drives pes nodes and carries measurements back.
 */

/** Start a Pes node on the ZeroMQ mesh. */
export interface StartCmd {
  readonly cmd: 'start';
  readonly id: string;
  /** Where to bind, e.g. `tcp://127.0.0.1:0` (an ephemeral port; the reply carries the bound endpoint). */
  readonly endpoint: string;
  readonly seeds: readonly string[];
  readonly heartbeat?: number;
}

/**
 * `concurrency` callers, each registering fresh unique names (`${prefix}/${caller}/${i}`) in a loop
 * until `durationMs` has passed. Every caller has its own owner. With `release`, the owners exit
 * afterwards (their names are unregistered) and the command waits, bounded, until no guard is left.
 */
export interface RegLoadCmd {
  readonly cmd: 'regLoad';
  readonly prefix: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly release: boolean;
  /** Delay before the loop starts, so that loads on several nodes start together. */
  readonly startAt?: number;
}

/** Registers `${prefix}/${i}` for i in [from, from+count), `concurrency` at a time; retries failures until the deadline. */
export interface RegBulkCmd {
  readonly cmd: 'regBulk';
  readonly prefix: string;
  readonly from: number;
  readonly count: number;
  readonly concurrency: number;
  readonly deadlineMs: number;
}

/**
 * `concurrency` callers, each calling `lookup` on names `${prefix}/${i}` (i < count, round robin from a
 * per-caller offset) until `durationMs` has passed; a result whose owner is not on `expectNode` counts
 * as a wrong answer.
 */
export interface LookupLoadCmd {
  readonly cmd: 'lookupLoad';
  readonly prefix: string;
  readonly count: number;
  readonly expectNode: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly startAt?: number;
}

/** whereis on each of `names`; counts found (owner on `expectNode`), missing and errors. */
export interface WhereisCmd {
  readonly cmd: 'whereis';
  readonly names: readonly string[];
  readonly expectNode: string;
}

/** Idles for `windowMs` and reports the process's CPU time and memory over that window. */
export interface MeasureCmd {
  readonly cmd: 'measure';
  readonly windowMs: number;
  /** Wall-clock ms (Date.now) to start at, to line the window up with a load on other nodes. */
  readonly startAt?: number;
  /** Force a full GC after the window to report the live heap (default true; off while a load may still run). */
  readonly gc?: boolean;
}

export interface StatusCmd { readonly cmd: 'status' }
/** The process's monotonic clock (process.hrtime), µs: the clock V8 stamps --cpu-prof samples with. */
export interface ClockCmd { readonly cmd: 'clock' }
/** A V8 heap snapshot of the node process, summarised: self size and count per constructor (after a GC). */
export interface HeapCmd { readonly cmd: 'heap'; readonly top: number }

export interface HeapEntry { readonly what: string; readonly count: number; readonly bytes: number }
export interface HeapResult { readonly total: number; readonly entries: readonly HeapEntry[] }

/**
 * Sampling of allocations (V8's sampling heap profiler), including objects a major GC collected: what
 * was allocated and reached the old generation, by allocating function. `start` begins, `stop` reports.
 */
export interface AllocCmd {
  readonly cmd: 'alloc'; readonly action: 'start' | 'stop'; readonly top?: number;
  /** Also keep what young-generation collections freed: every allocation, to compare against. */
  readonly all?: boolean;
}
export interface AllocEntry { readonly where: string; readonly bytes: number }

/** Exits the process at once (no node.stop(): that would unregister every name); flushes a --cpu-prof profile. */
export interface ExitCmd { readonly cmd: 'exit' }

export type Command = StartCmd | RegLoadCmd | RegBulkCmd | LookupLoadCmd | WhereisCmd | MeasureCmd | StatusCmd | ClockCmd | HeapCmd | AllocCmd | ExitCmd;

/** Errors by class name (`TimeoutError`, `NoConsensusError`, ...). */
export type ErrorCounts = Record<string, number>;

export interface StartResult { readonly id: string; readonly endpoint: string }

export interface LoadResult {
  /** Successful operations. */
  readonly ok: number;
  readonly errors: ErrorCounts;
  /** From the first call to the end of the last one, ms. */
  readonly elapsedMs: number;
  /** Latency of every successful operation, ms. */
  readonly latencies: Float64Array;
  /** Wrong answers (lookups only). */
  readonly wrong: number;
  /** Guards left after releasing (registration loads with `release`). */
  readonly guardsLeft?: number;
}

export interface BulkResult {
  readonly ok: number;
  readonly failed: number;
  readonly elapsedMs: number;
  readonly errors: ErrorCounts;
}

export interface WhereisResult {
  readonly found: number;
  readonly missing: number;
  readonly wrong: number;
  readonly errors: ErrorCounts;
}

export interface MeasureResult {
  readonly windowMs: number;
  /** CPU time (user + system) over the window, µs. */
  readonly cpuUs: number;
  readonly rss: number;
  readonly rssPeak: number;
  readonly heapUsed: number;
  /** heapUsed after a full GC at the end of the window (0 when gc is not exposed). */
  readonly heapLive: number;
  /** V8 heap committed (heapTotal), memory outside the JS heap (external, incl. arrayBuffers), at the end of the window. */
  readonly heapTotal: number;
  readonly external: number;
  /** Committed size (space_size) of each V8 heap space at the end of the window, before the forced GC. */
  readonly spaces: Record<string, number>;
  /** Longest event-loop delay seen during the window (perf_hooks.monitorEventLoopDelay), ms. */
  readonly loopMaxMs: number;
  /** Renewer and acceptor counters that changed during the window. */
  readonly delta: Record<string, number>;
}

export interface StatusResult {
  readonly id: string;
  readonly members: readonly string[];
  readonly liveMembers: readonly string[];
  readonly voting: boolean;
  readonly heldNames: number;
  readonly activeGuards: number;
  readonly entries: number;
  readonly renewer: Record<string, number>;
  readonly acceptor: Record<string, number>;
  readonly transport: Record<string, number>;
}

/** What a child sends: the reply to a command, or (once) that it is ready for commands. */
export type ChildMessage =
  | { readonly seq: number; readonly ok: true; readonly result: unknown }
  | { readonly seq: number; readonly ok: false; readonly error: string }
  | { readonly ready: true; readonly pid: number };
