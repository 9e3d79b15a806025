/**
 * The measured scenarios, shared by `npm run bench` (bench/run.ts) and the profiler (bench/profile.ts):
 * registration and lookup loads, bulk registration, and idle resource windows.
 */
import type { Cluster, NodeProcess } from './cluster.js';
import type { BulkResult, LoadResult, MeasureResult, StatusResult, WhereisResult } from './protocol.js';
import { concat, mergeCounts, percentile } from './stats.js';

/** One run of a load on one or more nodes, merged. */
export interface RunResult {
  readonly rate: number;
  readonly ok: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: Record<string, number>;
  readonly wrong: number;
  /** Per node: successful operations per second. */
  readonly perNode: Record<string, number>;
  /**
   * CPU time (user + system, all threads, so libzmq's I/O thread too) of all three node processes
   * during the load window, per successful operation, µs; NaN when not measured.
   */
  readonly cpuUsPerOp: number;
  /** Per node: CPU over the load window, % of one core. */
  readonly cpuPct: Record<string, number>;
  /** Longest event-loop delay of any node during the load window, ms. */
  readonly loopMaxMs: number;
}

let runCounter = 0;

/** Splits `total` callers over `n` nodes as evenly as possible (the first nodes get the remainder). */
export function split(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

function merge(parts: readonly { node: string; r: LoadResult }[], cpu: readonly { node: string; m: MeasureResult }[]): RunResult {
  const active = parts.filter((p) => p.r.elapsedMs > 0);
  const ok = active.reduce((n, p) => n + p.r.ok, 0);
  // Loads on several nodes start together; the run lasts as long as the slowest node's.
  const elapsed = Math.max(...active.map((p) => p.r.elapsedMs));
  const lat = concat(active.map((p) => p.r.latencies));
  const perNode: Record<string, number> = {};
  for (const p of active) perNode[p.node] = (p.r.ok * 1000) / p.r.elapsedMs;
  return {
    rate: (ok * 1000) / elapsed,
    ok,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    errors: mergeCounts(active.map((p) => p.r.errors)),
    wrong: active.reduce((n, p) => n + p.r.wrong, 0),
    perNode,
    // The CPU window is the nominal load window; ops are counted over the actual (slightly longer) one.
    cpuUsPerOp: cpu.length === 0 ? Number.NaN
      : cpu.reduce((n, c) => n + c.m.cpuUs / c.m.windowMs, 0) / (ok / elapsed),
    cpuPct: Object.fromEntries(cpu.map((c) => [c.node, (c.m.cpuUs / 1000 / c.m.windowMs) * 100])),
    loopMaxMs: cpu.length === 0 ? Number.NaN : Math.max(...cpu.map((c) => c.m.loopMaxMs)),
  };
}

/** Measures every node's CPU over [startAt, startAt + windowMs] (when `cluster` is given). */
function cpuWindow(cluster: readonly NodeProcess[] | undefined, startAt: number, windowMs: number): Promise<{ node: string; m: MeasureResult }[]> {
  if (cluster === undefined) return Promise.resolve([]);
  return Promise.all(cluster.map(async (n) => ({
    node: n.id, m: await n.request<MeasureResult>({ cmd: 'measure', windowMs, startAt, gc: false }, windowMs + 30_000),
  })));
}

/**
 * `concurrency` callers registering fresh names for `durationMs`, split over `nodes`; afterwards every
 * caller's owner exits, so its names are unregistered and the next run starts from the same state.
 */
export async function registerRun(
  nodes: readonly NodeProcess[], concurrency: number, durationMs: number, release = true, cpuOf?: readonly NodeProcess[],
): Promise<RunResult> {
  const run = ++runCounter;
  const shares = split(concurrency, nodes.length);
  const startAt = Date.now() + 100;
  const cpu = cpuWindow(cpuOf, startAt, durationMs);
  const parts = await Promise.all(nodes.map(async (n, i) => {
    const c = shares[i] as number;
    if (c === 0) return { node: n.id, r: { ok: 0, errors: {}, elapsedMs: 0, latencies: new Float64Array(0), wrong: 0 } };
    const r = await n.request<LoadResult>(
      { cmd: 'regLoad', prefix: `r${run}-${n.id}`, concurrency: c, durationMs, release, startAt }, durationMs + 40_000);
    return { node: n.id, r };
  }));
  return merge(parts, await cpu);
}

/** Names `${prefix}/${i}` held by an owner on `holder`, looked up by callers on other nodes. */
export interface HeldSet {
  readonly prefix: string;
  readonly count: number;
  readonly holder: NodeProcess;
}

/** `concurrency` callers split over `callers`, each looking up names of `sets[i]`, for `durationMs`. */
export async function lookupRun(
  callers: readonly NodeProcess[], sets: readonly HeldSet[], concurrency: number, durationMs: number, cpuOf?: readonly NodeProcess[],
): Promise<RunResult> {
  const shares = split(concurrency, callers.length);
  const startAt = Date.now() + 100;
  const cpu = cpuWindow(cpuOf, startAt, durationMs);
  const parts = await Promise.all(callers.map(async (n, i) => {
    const c = shares[i] as number;
    const set = sets[i] as HeldSet;
    if (c === 0) return { node: n.id, r: { ok: 0, errors: {}, elapsedMs: 0, latencies: new Float64Array(0), wrong: 0 } };
    const r = await n.request<LoadResult>(
      { cmd: 'lookupLoad', prefix: set.prefix, count: set.count, expectNode: set.holder.id, concurrency: c, durationMs, startAt }, durationMs + 40_000);
    return { node: n.id, r };
  }));
  return merge(parts, await cpu);
}

/**
 * Brings a fresh cluster's JIT to steady state before anything is measured: `cycles` rounds of one
 * caller registering on each node in turn, 64 callers spread over the nodes, each run ending with its
 * owners' exit, and one caller on every other node looking up `set` (held on its holder) when given. Every release burst shows V8 message
 * shapes the registration path has not seen and deoptimizes shared code; only after a few such cycles
 * does one caller's latency settle (see bench/README.md, "Warm-up").
 */
export async function warmUp(nodes: readonly NodeProcess[], cycles: number, runMs: number, set?: HeldSet): Promise<void> {
  for (let c = 0; c < cycles; c++) {
    for (const n of nodes) await registerRun([n], 1, runMs);
    await registerRun(nodes, 64, runMs);
    if (set !== undefined) {
      const callers = nodes.filter((n) => n !== set.holder);
      await lookupRun(callers, callers.map(() => set), callers.length, runMs); // one caller on each
    }
  }
}

/** Registers `count` names `${prefix}/${i}` on `node`. */
export function bulk(node: NodeProcess, prefix: string, from: number, count: number, deadlineMs: number, concurrency = 256): Promise<BulkResult> {
  return node.request<BulkResult>({ cmd: 'regBulk', prefix, from, count, concurrency, deadlineMs }, deadlineMs + 30_000);
}

/** One idle window measured on every node at once. */
export async function measureAll(cluster: Cluster, windowMs: number): Promise<MeasureResult[]> {
  return Promise.all(cluster.nodes.map((n) => n.request<MeasureResult>({ cmd: 'measure', windowMs }, windowMs + 30_000)));
}

/** whereis of `names` from `from`, expecting owners on `expect`. */
export function whereisSample(from: NodeProcess, expect: NodeProcess, names: readonly string[]): Promise<WhereisResult> {
  return from.request<WhereisResult>({ cmd: 'whereis', names, expectNode: expect.id }, 60_000);
}

/** Waits (bounded) until each node's guards hold exactly `expected[i]` names and none is acquiring. */
export async function waitHeld(cluster: Cluster, expected: readonly number[], timeoutMs: number): Promise<StatusResult[]> {
  const deadline = Date.now() + timeoutMs;
  let s: StatusResult[] = [];
  do {
    s = await cluster.status();
    if (s.every((x, i) => x.heldNames === expected[i] && x.activeGuards === x.heldNames)) return s;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < deadline);
  return s;
}
