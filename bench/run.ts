/**
 * `npm run bench`: a 3-node pes cluster (three child processes on tcp loopback, the ZeroMQ mesh) under
 * load, printed as markdown tables:
 *
 * 1. registrations/s with 1, 16 and 64 concurrent callers, on one node and spread over all three;
 *    p50/p99 latency of register. Each caller registers fresh names in a loop for a fixed window;
 *    after each run the callers' owners exit, so every run starts with nothing held.
 * 2. lookups/s (quorum reads of names held on another node) with 1, 16 and 64 callers; p50/p99.
 * 3. CPU (% of one core, process.cpuUsage over an idle window) and memory (RSS, heap) of each node
 *    while 10k and 100k names are held and renewed with the default heartbeat (8048 ms), plus a
 *    whereis sample confirming the names stay held.
 * 4. the Erlang original's figures and the targets of issue 3, with ratios.
 *
 * Each row is the median of 3 runs (p50 and p99 too: the median of each run's percentile), after an
 * unmeasured warm-up at the row's concurrency.
 * `BENCH_QUICK=1 npm run bench`: 1 run per row, 1 s windows, 10k names only (a smoke test, < 60 s).
 * `BENCH_RESOURCES_ONLY=1 npm run bench`: only the held-names section (3).
 * Every child is killed by pid at the end and on any failure; a watchdog bounds the whole bench.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { buildNodeScript, type NodeScript } from './lib/build.js';
import { Cluster, type NodeProcess } from './lib/cluster.js';
import type { MeasureResult, StatusResult, WhereisResult } from './lib/protocol.js';
import {
  bulk, lookupRun, measureAll, registerRun, split, waitHeld, warmUp, whereisSample, type HeldSet, type RunResult,
} from './lib/scenarios.js';
import { fmtCounts, fmtInt, fmtMb, fmtMs, fmtPct, median, mergeCounts, table } from './lib/stats.js';

const QUICK = process.env['BENCH_QUICK'] === '1';
const RUNS = QUICK ? 1 : 3;
const LOAD_MS = QUICK ? 1000 : 2000;
/** Unmeasured warm-up before each load row, at the row's concurrency. */
const WARM_MS = QUICK ? 300 : 6000;
/** Registration rows split their warm-up into this many runs, each ending with its owners' exit. */
const WARM_CYCLES = QUICK ? 1 : 3;
const WINDOW_MS = QUICK ? 1000 : 20_000;
const SIZES = QUICK ? [10_000] : [10_000, 100_000];
/** `BENCH_RESOURCES_ONLY=1`: only the held-names windows (CPU and memory), about 2 minutes. */
const RESOURCES_ONLY = process.env['BENCH_RESOURCES_ONLY'] === '1';
const CALLERS = [1, 16, 64] as const;
const HEARTBEAT = 8048;
/** Names held per holder for the lookup runs. */
const LOOKUP_NAMES = 1000;
const WATCHDOG_MS = QUICK ? 90_000 : 420_000;

const t0 = performance.now();
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
const log = (msg: string): void => {
  process.stderr.write(`[bench ${elapsed()}] ${msg}\n`);
};
const out = (text = ''): void => {
  process.stdout.write(`${text}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The machine's 1-minute load average: on 2 cores the bench itself adds about 1.5; more means other work competes. */
const load = (): string => os.loadavg()[0]?.toFixed(1) ?? '?';

// ---- results ---------------------------------------------------------------------------------------

interface Row {
  readonly label: string;
  readonly callers: number;
  readonly runs: RunResult[];
}

const median3 = (runs: readonly RunResult[], f: (r: RunResult) => number): number => median(runs.map(f));

function loadRows(rows: readonly Row[], unit: string): string {
  return table(
    ['where', 'callers', `${unit}/s`, 'p50 ms', 'p99 ms', 'per node /s', 'CPU µs/op (3 nodes)', 'CPU % per node', 'loop stall ms', 'errors', 'runs (/s)'],
    rows.map((r) => {
      const nodes = Object.keys(r.runs[0]?.perNode ?? {});
      const perNode = nodes.length > 1 ? nodes.map((n) => `${n} ${fmtInt(median3(r.runs, (x) => x.perNode[n] ?? 0))}`).join(', ') : '';
      const cpuNodes = Object.keys(r.runs[0]?.cpuPct ?? {});
      const cpu = cpuNodes.map((n) => `${n} ${median3(r.runs, (x) => x.cpuPct[n] ?? Number.NaN).toFixed(0)}`).join(', ');
      const wrong = r.runs.reduce((n, x) => n + x.wrong, 0);
      const errors = fmtCounts(mergeCounts([...r.runs.map((x) => x.errors), wrong > 0 ? { wrong } : {}]));
      return [
        r.label, String(r.callers), fmtInt(median3(r.runs, (x) => x.rate)), fmtMs(median3(r.runs, (x) => x.p50)),
        fmtMs(median3(r.runs, (x) => x.p99)), perNode, fmtInt(median3(r.runs, (x) => x.cpuUsPerOp)), cpu,
        fmtMs(median3(r.runs, (x) => x.loopMaxMs)), errors,
        r.runs.map((x) => fmtInt(x.rate)).join(' / '),
      ];
    }),
  );
}

interface ResourceRow {
  readonly names: number;
  readonly node: string;
  readonly guarded: number;
  readonly entries: number;
  readonly windows: MeasureResult[];
}

interface Verify {
  readonly names: number;
  readonly held: StatusResult[];
  readonly after: StatusResult[];
  readonly samples: { from: string; holder: string; r: WhereisResult }[];
  readonly bulkMs: number;
  readonly bulkFailed: number;
}

const cpuPct = (m: MeasureResult): number => (m.cpuUs / 1000 / m.windowMs) * 100;

// ---- the bench -----------------------------------------------------------------------------------

let throughput: Cluster | undefined;
let resources: Cluster | undefined;

async function main(): Promise<void> {
  const commit = gitDescribe();
  log('compiling lib and the node process (bench/tsconfig.build.json)');
  const script: NodeScript = buildNodeScript(log);
  out(`# pes bench${QUICK ? ' (BENCH_QUICK: 1 run per row, 1 s windows, 10k names)' : ''}`);
  out();
  out(`${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, ${fmtMb(os.totalmem())} MB RAM, Node ${process.version}, ${os.platform()} ${os.release()}; pes ${commit}.`);
  out(`3 node processes (${script.compiled ? 'compiled JavaScript, as deployed' : 'TypeScript through tsx'}) on tcp loopback (ZeroMQ mesh), heartbeat ${HEARTBEAT} ms (default); load windows ${LOAD_MS / 1000} s, ` +
    `resource windows ${WINDOW_MS / 1000} s; each load row the median of ${RUNS} run${RUNS > 1 ? 's' : ''} after a ${WARM_MS / 1000} s warm-up at its concurrency${WARM_CYCLES > 1 ? ` (registrations: ${WARM_CYCLES} runs, each ending with its release)` : ''}.`);
  out(`Machine load average (1 min) at start: ${load()}${(os.loadavg()[0] ?? 0) > 1 ? ' — other processes are using the CPU, so the figures below understate what pes does on a quiet machine' : ''}.`);
  out();

  // 1 + 2: throughput cluster (skipped with BENCH_RESOURCES_ONLY=1) --------------------------------
  const { regRows, lookupRows, one, spreadLabel } = RESOURCES_ONLY
    ? { regRows: [], lookupRows: [], one: '', spreadLabel: '' }
    : await throughputSections(script);

  // 3: resources -----------------------------------------------------------------------------------
  log('starting 3 node processes (resources)');
  resources = await Cluster.start({ size: 3, heartbeat: HEARTBEAT, name: 'm', script });
  const res = resources;
  const baseline = await measureAll(res, Math.min(WINDOW_MS, 3000));
  const resourceRows: ResourceRow[] = res.nodes.map((n, i) => ({ names: 0, node: n.id, guarded: 0, entries: 0, windows: [baseline[i] as MeasureResult] }));
  const verifies: Verify[] = [];
  let registered = [0, 0, 0];
  for (const size of SIZES) {
    const target = split(size, res.nodes.length);
    log(`registering up to ${fmtInt(size)} names (${target.join(' + ')})`);
    const bulkStart = performance.now();
    const results = await Promise.all(res.nodes.map((n, i) =>
      bulk(n, `held-${n.id}`, registered[i] as number, (target[i] as number) - (registered[i] as number), QUICK ? 40_000 : 120_000, 64)));
    const bulkMs = performance.now() - bulkStart;
    const bulkFailed = results.reduce((n, r) => n + r.failed, 0);
    log(`registered in ${(bulkMs / 1000).toFixed(1)} s (${results.map((r) => `${fmtInt(r.ok)} ok, ${r.failed} failed, errors ${fmtCounts(r.errors)}`).join('; ')})`);
    registered = target.map((t, i) => t - (results[i]?.failed ?? 0));
    const held = await waitHeld(res, registered, 10_000);
    // Let the renewal rounds that raced the registrations settle (a mismatch is repaired by a sync).
    await sleep(QUICK ? 500 : 2000);
    const windows: MeasureResult[][] = [];
    for (let i = 0; i < RUNS; i++) {
      windows.push(await measureAll(res, WINDOW_MS));
      log(`window ${i + 1}/${RUNS} at ${fmtInt(size)} names: CPU ${windows[i]?.map((m) => fmtPct(cpuPct(m))).join(' / ')}, RSS ${windows[i]?.map((m) => fmtMb(m.rss)).join(' / ')} MB`);
    }
    const after = await res.status();
    const samples: Verify['samples'] = [];
    for (const [i, holder] of res.nodes.entries()) {
      const from = res.nodes[(i + 1) % res.nodes.length] as NodeProcess;
      const n = registered[i] as number;
      const names = Array.from({ length: Math.min(100, n) }, (_, k) => `held-${holder.id}/${Math.floor((k * n) / Math.min(100, n))}`);
      samples.push({ from: from.id, holder: holder.id, r: await whereisSample(from, holder, names) });
    }
    verifies.push({ names: size, held, after, samples, bulkMs, bulkFailed });
    for (const [i, n] of res.nodes.entries()) {
      resourceRows.push({
        names: size, node: n.id, guarded: after[i]?.heldNames ?? 0, entries: after[i]?.entries ?? 0,
        windows: windows.map((w) => w[i] as MeasureResult),
      });
    }
  }
  out('## Held names: CPU and memory per node');
  out();
  out(`Names registered in batches, split over the three nodes; then each node idles while its guards renew them (heartbeat ${HEARTBEAT} ms), and`);
  out(`process.cpuUsage() is taken over a ${WINDOW_MS / 1000} s window${RUNS > 1 ? ` (median of ${RUNS} consecutive windows)` : ''}. "heap after GC" is heapUsed after a forced full GC at the end of the window.`);
  out(`Row 0 is an idle cluster with no names (a shorter window). Load average after: ${load()}.`);
  out();
  out(table(
    ['names in cluster', 'node', 'guarded here', 'acceptor entries', 'CPU % of a core', 'RSS MB', 'RSS peak MB', 'heapUsed MB', 'heap after GC MB', 'V8 heap committed MB', 'external MB', 'loop stall ms (max)', 'renew rounds / syncs / lost in window', 'windows (CPU %)', 'windows (RSS MB)'],
    resourceRows.map((r) => {
      const w = r.windows;
      const d = (k: string): number => median(w.map((m) => m.delta[k] ?? 0));
      return [
        fmtInt(r.names), r.node, fmtInt(r.guarded), fmtInt(r.entries), fmtPct(median(w.map(cpuPct))), fmtMb(median(w.map((m) => m.rss))),
        fmtMb(Math.max(...w.map((m) => m.rssPeak))), fmtMb(median(w.map((m) => m.heapUsed))), fmtMb(median(w.map((m) => m.heapLive))),
        fmtMb(median(w.map((m) => m.heapTotal))), fmtMb(median(w.map((m) => m.external))),
        fmtMs(Math.max(...w.map((m) => m.loopMaxMs))),
        `${d('renewer.rounds')} / ${d('renewer.syncs')} / ${d('renewer.lost')}`, w.map((m) => cpuPct(m).toFixed(2)).join(' / '),
        w.map((m) => fmtMb(m.rss)).join(' / '),
      ];
    }),
  ));
  out();
  out('Names stay held (whereis of a sample of each node\'s names, asked from another node, after the windows):');
  out();
  out(table(
    ['names in cluster', 'registered in', 'held before / after windows', 'whereis sample: found / asked', 'missing, wrong, errors'],
    verifies.map((v) => [
      fmtInt(v.names), `${(v.bulkMs / 1000).toFixed(1)} s${v.bulkFailed > 0 ? ` (${v.bulkFailed} failed)` : ''}`,
      `${fmtInt(v.held.reduce((n, s) => n + s.heldNames, 0))} / ${fmtInt(v.after.reduce((n, s) => n + s.heldNames, 0))}`,
      `${v.samples.reduce((n, s) => n + s.r.found, 0)} / ${v.samples.reduce((n, s) => n + s.r.found + s.r.missing + s.r.wrong + Object.values(s.r.errors).reduce((a, b) => a + b, 0), 0)}`,
      `${v.samples.reduce((n, s) => n + s.r.missing, 0)}, ${v.samples.reduce((n, s) => n + s.r.wrong, 0)}, ${fmtCounts(mergeCounts(v.samples.map((s) => s.r.errors)))}`,
    ]),
  ));
  out();
  await resources.stop();
  resources = undefined;

  // 4: comparison ----------------------------------------------------------------------------------
  const reg = (label: string, c: number): Row | undefined => regRows.find((r) => r.label === label && r.callers === c);
  const look = (c: number): Row | undefined => lookupRows.find((r) => r.callers === c && r === lookupRows.find((x) => x.callers === c));
  const big = resourceRows.filter((r) => r.names === 100_000);
  const worst = (f: (m: MeasureResult) => number): number => (big.length === 0 ? Number.NaN : Math.max(...big.map((r) => median(r.windows.map(f)))));
  const m = (row: Row | undefined, f: (r: RunResult) => number): number => (row === undefined ? Number.NaN : median3(row.runs, f));
  interface Cmp { what: string; pes: number; erlang: number; target: number | undefined; higherBetter: boolean; fmt: (x: number) => string }
  const cmp: Cmp[] = [
    { what: 'registrations/s, 64 callers, one node', pes: m(reg(one, 64), (r) => r.rate), erlang: 4545, target: 15_000, higherBetter: true, fmt: fmtInt },
    { what: 'registrations/s, 64 callers, spread', pes: m(reg(spreadLabel, 64), (r) => r.rate), erlang: 4545, target: 15_000, higherBetter: true, fmt: fmtInt },
    { what: 'registrations/s, 1 caller', pes: m(reg(one, 1), (r) => r.rate), erlang: 1239, target: undefined, higherBetter: true, fmt: fmtInt },
    { what: 'register p50 ms, 1 caller', pes: m(reg(one, 1), (r) => r.p50), erlang: 0.59, target: 0.5, higherBetter: false, fmt: fmtMs },
    { what: 'lookups/s, 64 callers', pes: m(look(64), (r) => r.rate), erlang: 11_683, target: 30_000, higherBetter: true, fmt: fmtInt },
    { what: 'lookup p50 ms, 1 caller', pes: m(look(1), (r) => r.p50), erlang: 0.30, target: 0.3, higherBetter: false, fmt: fmtMs },
    { what: 'memory per node, 100k names (RSS MB, worst node)', pes: worst((x) => x.rss) / 2 ** 20, erlang: 1.16 * 1024, target: 100, higherBetter: false, fmt: (x) => x.toFixed(1) },
    { what: '  of which live JS heap after a full GC (MB, worst node)', pes: worst((x) => x.heapLive) / 2 ** 20, erlang: Number.NaN, target: 100, higherBetter: false, fmt: (x) => x.toFixed(1) },
    { what: 'CPU per node, 100k names (% of a core, worst node)', pes: worst(cpuPct), erlang: 66, target: 5, higherBetter: false, fmt: (x) => `${x.toFixed(2)}%` },
  ];
  out('## Against the Erlang original and the targets of issue 3');
  out();
  out('Erlang figures as measured in issue 3 (3 nodes, same kind of machine). "× Erlang" is pes ÷ Erlang for rates and Erlang ÷ pes for costs, so above 1 is better.');
  out();
  out(table(
    ['metric', 'pes', 'Erlang pes', '× Erlang', 'target', 'met'],
    cmp.map((c) => {
      const ratio = c.higherBetter ? c.pes / c.erlang : c.erlang / c.pes;
      const met = c.target === undefined || !Number.isFinite(c.pes) ? '' : (c.higherBetter ? c.pes >= c.target : c.pes <= c.target) ? 'yes' : '**no**';
      const target = c.target === undefined ? '' : `${c.higherBetter ? '≥' : '≤'} ${c.fmt(c.target)}`;
      return [c.what, Number.isFinite(c.pes) ? c.fmt(c.pes) : 'n/a', Number.isFinite(c.erlang) ? c.fmt(c.erlang) : '', Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '', target, met];
    }),
  ));
  out();
  out(`Total bench time ${elapsed()}.`);
}

/** Registrations and lookups on a fresh cluster; prints their tables, returns their rows for the comparison. */
async function throughputSections(script: NodeScript): Promise<{ regRows: Row[]; lookupRows: Row[]; one: string; spreadLabel: string }> {
  log('starting 3 node processes (throughput)');
  throughput = await Cluster.start({ size: 3, heartbeat: HEARTBEAT, name: 't', script });
  const [n1, n2, n3] = throughput.nodes as [NodeProcess, NodeProcess, NodeProcess];
  log(`cluster formed: ${throughput.nodes.map((n) => `${n.id} pid ${n.pid}`).join(', ')}`);

  // Warm up the JIT of every node (not measured): registrations at 1 and 64 callers on every node,
  // each run ending with its release, until one caller's latency no longer drifts.
  await warmUp(throughput.nodes, QUICK ? 1 : 3, QUICK ? 300 : 1000);

  const regRows: Row[] = [];
  const placements: { label: string; nodes: NodeProcess[]; callers: readonly number[] }[] = [
    { label: `one node (${n2.id})`, nodes: [n2], callers: CALLERS },
    // Spread: the callers split over the nodes (1 caller cannot be spread: one per node instead).
    { label: `spread (${n1.id}, ${n2.id}, ${n3.id})`, nodes: [n1, n2, n3], callers: [3, 16, 64] },
  ];
  for (const p of placements) {
    for (const c of p.callers) {
      const runs: RunResult[] = [];
      // Each row warms up at its own concurrency first (not measured), and the rows report steady state.
      // Every release burst (the owners' exit after a run) sends shapes the optimized code has not seen,
      // so V8 deoptimizes functions shared by registration and release and re-optimizes them at this
      // row's pace; the first cycles after a cluster starts run at about half speed at one caller
      // (measured with --trace-deopt on the caller's node). So the warm-up is WARM_CYCLES short runs,
      // each ending with its release, rather than one long run with a single release at its end.
      for (let w = 0; w < WARM_CYCLES; w++) await registerRun(p.nodes, c, WARM_MS / WARM_CYCLES);
      for (let i = 0; i < RUNS; i++) runs.push(await registerRun(p.nodes, c, LOAD_MS, true, throughput.nodes));
      regRows.push({ label: p.label, callers: c, runs });
      log(`register ${p.label} ×${c}: ${runs.map((r) => fmtInt(r.rate)).join(' / ')} /s`);
    }
  }
  out('## Registrations');
  out();
  out('Each caller registers fresh unique names in a loop (one owner per caller); after each run the owners exit and their names are unregistered.');
  out('Spread: the callers are split over the three nodes, which start together; "per node" is each node\'s own rate.');
  out(`One node: ${n2.id}, which joined second. ${n1.id} was started first: its term floor (wall clock at start × 1000) is below the others\', so its prepares are refused by both and retried after a backoff — compare its per-node rate in the spread rows.`);
  out();
  out(loadRows(regRows, 'reg'));
  out();
  const afterReg = await throughput.status();
  out(`CPU µs/op: CPU time of the three node processes (all threads) over the load window, per successful operation; 2 cores ÷ that is the ceiling of this machine. Loop stall: the longest event-loop delay of any node in the window. Load average after: ${load()}.`);
  out(`Acceptor entries after these runs (tombstones of the released names, deleted only after deleteTimeThreshold, 200 s): ${afterReg.map((x) => `${x.id} ${fmtInt(x.entries)}`).join(', ')}.`);
  out();

  // Names for lookups: held on n3 (looked up from n2) and on n2 (looked up from n1 and n3).
  log('registering names for lookups');
  const setN3: HeldSet = { prefix: 'held-on-n3', count: LOOKUP_NAMES, holder: n3 };
  const setN2: HeldSet = { prefix: 'held-on-n2', count: LOOKUP_NAMES, holder: n2 };
  const [b3, b2] = await Promise.all([bulk(n3, setN3.prefix, 0, LOOKUP_NAMES, 30_000), bulk(n2, setN2.prefix, 0, LOOKUP_NAMES, 30_000)]);
  if (b3.failed + b2.failed > 0) throw new Error(`could not register the lookup names: ${JSON.stringify({ b3, b2 })}`);
  await lookupRun([n2], [setN3], 16, QUICK ? 300 : 1000); // warm-up, not measured

  const lookupRows: Row[] = [];
  const lookupPlacements: { label: string; callers: NodeProcess[]; sets: HeldSet[]; counts: readonly number[] }[] = [
    { label: `on ${n2.id}, names held on ${n3.id}`, callers: [n2], sets: [setN3], counts: CALLERS },
    { label: `spread (${n1.id}→${n2.id}, ${n2.id}→${n3.id}, ${n3.id}→${n2.id})`, callers: [n1, n2, n3], sets: [setN2, setN3, setN2], counts: [64] },
  ];
  for (const p of lookupPlacements) {
    for (const c of p.counts) {
      const runs: RunResult[] = [];
      await lookupRun(p.callers, p.sets, c, WARM_MS); // warm-up at this row's concurrency, not measured
      for (let i = 0; i < RUNS; i++) runs.push(await lookupRun(p.callers, p.sets, c, LOAD_MS, throughput.nodes));
      lookupRows.push({ label: p.label, callers: c, runs });
      log(`lookup ${p.label} ×${c}: ${runs.map((r) => fmtInt(r.rate)).join(' / ')} /s`);
    }
  }
  out('## Lookups');
  out();
  out(`\`node.lookup(name)\` of names held by an owner on another node (${LOOKUP_NAMES} names per holder, round robin), so each is a quorum read; a wrong or missing answer counts as an error.`);
  out();
  out(loadRows(lookupRows, 'lookup'));
  out();
  out(`Load average after: ${load()}.`);
  out();
  await throughput.stop();
  throughput = undefined;

  return { regRows, lookupRows, one: placements[0]?.label ?? '', spreadLabel: placements[1]?.label ?? '' };
}

function gitDescribe(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return `${sha}${dirty ? ' + uncommitted lib changes' : ''}`;
  } catch {
    return 'unknown commit';
  }
}

const watchdog = setTimeout(() => {
  log(`watchdog: the bench exceeded ${WATCHDOG_MS / 1000} s; killing the node processes`);
  throughput?.kill();
  resources?.kill();
  process.exit(2);
}, WATCHDOG_MS);

try {
  await main();
} catch (e) {
  log(`failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  throughput?.kill();
  resources?.kill();
  clearTimeout(watchdog);
}
