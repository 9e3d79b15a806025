/**
 * CPU profiles of the bench scenarios: starts the 3-node cluster with `node --cpu-prof`, runs one
 * scenario, lets the nodes exit (so V8 writes the profiles), and prints where each node's time went
 * during the scenario only (samples are cut to the scenario's window by their timestamps).
 *
 *   node --conditions=source --import tsx bench/profile.ts <scenario> [seconds] [names]
 *
 * scenarios: reg1 | reg64 (callers on n2), reg64-n1 (callers on n1, the node started first),
 *            lookup1 | lookup64 (callers on n2, names held on n3),
 *            idle (register `names` (default 100000) split over the nodes, then idle for `seconds`),
 *            bulk (the window is the registration of `names` names, split over the nodes, 64 callers each),
 *            heap (register `names` split over the nodes, then summarise each node's heap by constructor),
 *            heap-one (the same with every name registered on n3: n1 and n2 then hold only acceptor entries),
 *            mem (register `names` split over the nodes, then `seconds` idle windows: RSS, heap and V8 spaces;
 *            no CPU profile), alloc (sampled allocations while registering `names`, those a major GC
 *            collected included: what reaches the old generation).
 * Profiles are kept in bench/.profiles/<scenario>-<time>/.
 */
import { mkdirSync, readdirSync, readFileSync as fsRead } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNodeScript } from './lib/build.js';
import { Cluster, type NodeProcess } from './lib/cluster.js';
import { summarise, type ProfileSummary } from './lib/cpuprofile.js';
import { residentParts } from './lib/smaps.js';
import { bulk, lookupRun, measureAll, registerRun, split, waitHeld, type HeldSet } from './lib/scenarios.js';
import { fmtInt, fmtMb, fmtMs, table } from './lib/stats.js';
import type { AllocEntry, HeapResult } from './lib/protocol.js';

const [scenario = 'reg64', secondsArg = '5', namesArg = '100000'] = process.argv.slice(2);
const seconds = Number(secondsArg);
const names = Number(namesArg);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(HERE, '.profiles', `${scenario}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(dir, { recursive: true });

const log = (m: string): void => {
  process.stderr.write(`[profile] ${m}\n`);
};

const cluster = await Cluster.start({
  size: 3,
  name: 'p',
  script: buildNodeScript(log),
  // Memory is measured as deployed: no profiler in the process.
  execArgv: scenario === 'mem' || scenario === 'alloc' ? (process.env['BENCH_NODE_FLAGS']?.split(' ') ?? []) : ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=250'],
});
const watchdog = setTimeout(() => {
  log('watchdog: killing the nodes');
  cluster.kill();
  process.exit(2);
}, 300_000 + seconds * 1000);

const [n1, n2, n3] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];
const windows = new Map<number, { from: number; to: number }>();
const clocks = (): Promise<number[]> => Promise.all(cluster.nodes.map((n) => n.request<number>({ cmd: 'clock' }, 5000)));

try {
  let what = '';
  const ms = seconds * 1000;
  let before: number[] = [];
  switch (scenario) {
    case 'reg1':
    case 'reg64':
    case 'reg64-n1': {
      const c = scenario === 'reg1' ? 1 : 64;
      const on = scenario === 'reg64-n1' ? n1 : n2;
      for (let w = 0; w < 3; w++) await registerRun([on], c, 3000); // warm-up, releases included
      before = await clocks();
      // Names stay held: the release (owner exit, tombstones) would fall into the profiled window.
      const r = await registerRun([on], c, ms, false);
      what = `${c} caller(s) registering on ${on.id}: ${fmtInt(r.rate)}/s, p50 ${fmtMs(r.p50)} ms, p99 ${fmtMs(r.p99)} ms`;
      break;
    }
    case 'lookup1':
    case 'lookup64': {
      const c = scenario === 'lookup1' ? 1 : 64;
      const set: HeldSet = { prefix: 'held', count: 1000, holder: n3 };
      await bulk(n3, set.prefix, 0, set.count, 30_000);
      await lookupRun([n2], [set], c, 1000); // warm-up
      before = await clocks();
      const r = await lookupRun([n2], [set], c, ms);
      what = `${c} caller(s) looking up on ${n2.id}: ${fmtInt(r.rate)}/s, p50 ${fmtMs(r.p50)} ms, p99 ${fmtMs(r.p99)} ms`;
      break;
    }
    case 'bulk': {
      const shares = split(names, 3);
      before = await clocks();
      const t = performance.now();
      const r = await Promise.all(cluster.nodes.map((n, i) => bulk(n, `held-${n.id}`, 0, shares[i] as number, 180_000, 64)));
      what = `bulk registration of ${fmtInt(names)} names (64 callers per node): ${((performance.now() - t) / 1000).toFixed(1)} s, ${r.map((x) => x.failed).join('/')} failed`;
      break;
    }
    case 'idle': {
      const shares = split(names, 3);
      const t = performance.now();
      await Promise.all(cluster.nodes.map((n, i) => bulk(n, `held-${n.id}`, 0, shares[i] as number, 180_000)));
      log(`registered ${fmtInt(names)} names in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      await waitHeld(cluster, shares, 10_000);
      await new Promise((r) => setTimeout(r, 3000));
      before = await clocks();
      await new Promise((r) => setTimeout(r, ms));
      what = `idle with ${fmtInt(names)} names held (split over the nodes), default heartbeat`;
      break;
    }
    case 'alloc': {
      // Allocations that reached the old generation (live, or collected by a major GC) while registering.
      const shares = split(names, 3);
      const all = process.env['BENCH_ALLOC_ALL'] === '1';
      await Promise.all(cluster.nodes.map((n) => n.request({ cmd: 'alloc', action: 'start', all }, 10_000)));
      await Promise.all(cluster.nodes.map((n, i) => bulk(n, `held-${n.id}`, 0, shares[i] as number, 180_000, 64)));
      await waitHeld(cluster, shares, 10_000);
      for (const n of cluster.nodes) {
        const top = await n.request<AllocEntry[]>({ cmd: 'alloc', action: 'stop', top: 60 }, 60_000);
        console.log(`## ${n.id}: sampled allocations (incl. those a major GC collected) while registering ${fmtInt(names)} names\n`);
        console.log(table(['MB', 'allocated in'], top.map((e) => [fmtMb(e.bytes), e.where])));
        console.log();
      }
      cluster.kill();
      clearTimeout(watchdog);
      process.exit(0);
    }
    case 'mem': {
      const shares = split(names, 3);
      const t = performance.now();
      await Promise.all(cluster.nodes.map((n, i) => bulk(n, `held-${n.id}`, 0, shares[i] as number, 180_000, 64)));
      log(`registered ${fmtInt(names)} names in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const held = await waitHeld(cluster, shares, 10_000);
      log(`renewer after registering: ${held.map((h) => `${h.id} ${JSON.stringify(h.renewer)}`).join('; ')}`);
      const rows: string[][] = [];
      for (let w = 1; w <= 3; w++) {
        const ms = await measureAll(cluster, seconds * 1000);
        for (const [i, m] of ms.entries()) {
          const sp = (k: string): string => fmtMb(m.spaces[k] ?? 0);
          rows.push([String(w), cluster.nodes[i]?.id ?? '?', `${((m.cpuUs / 1000 / m.windowMs) * 100).toFixed(2)}`, fmtMb(m.rss), fmtMb(m.rssPeak),
            fmtMb(m.heapTotal), fmtMb(m.heapUsed), fmtMb(m.heapLive), sp('new_space'), sp('old_space'), sp('code_space'), sp('large_object_space'), fmtMb(m.external)]);
        }
      }
      const parts = cluster.nodes.map((n) => ({ id: n.id, parts: residentParts(n.pid) }));
      console.log(`# memory with ${fmtInt(names)} names held (split over the nodes), windows of ${seconds} s (MB)\n`);
      console.log(table(['window', 'node', 'CPU %', 'RSS', 'RSS peak', 'heapTotal', 'heapUsed', 'heap after GC', 'new space', 'old space', 'code space', 'large objects', 'external'], rows));
      const kinds = [...new Set(parts.flatMap((p) => Object.keys(p.parts)))].sort();
      console.log(`\nResident memory by mapping after the last window (MB):\n`);
      console.log(table(['node', ...kinds], parts.map((p) => [p.id, ...kinds.map((k) => fmtMb(p.parts[k] ?? 0))])));
      cluster.kill();
      clearTimeout(watchdog);
      process.exit(0);
    }
    case 'heap-mid': {
      // Heaps while registering: what is alive mid-load (and so reaches the old generation) besides what stays.
      const shares = split(names, 3);
      const done = Promise.all(cluster.nodes.map((n, i) => bulk(n, `held-${n.id}`, 0, shares[i] as number, 180_000, 64)));
      await new Promise((r) => setTimeout(r, seconds * 1000));
      for (const n of cluster.nodes) {
        const h = await n.request<HeapResult>({ cmd: 'heap', top: 30 }, 120_000);
        console.log(`## ${n.id}: heap ${fmtMb(h.total)} MB ${seconds} s into registering ${fmtInt(names)} names\n`);
        console.log(table(['self MB', 'count', 'what'], h.entries.map((e) => [fmtMb(e.bytes), fmtInt(e.count), e.what])));
        console.log();
      }
      await done;
      cluster.kill();
      clearTimeout(watchdog);
      process.exit(0);
    }
    case 'heap':
    case 'heap-one': {
      const shares = scenario === 'heap' ? split(names, 3) : [0, 0, names];
      await Promise.all(cluster.nodes.map((n, i) => bulk(n, `held-${n.id}`, 0, shares[i] as number, 180_000, 64)));
      await waitHeld(cluster, shares, 10_000);
      // One renewal round (and the syncs it triggers), so every acceptor holds every name.
      await new Promise((r) => setTimeout(r, 10_000));
      for (const [i, n] of cluster.nodes.entries()) {
        const h = await n.request<HeapResult>({ cmd: 'heap', top: 30 }, 120_000);
        console.log(`## ${n.id}: heap ${fmtMb(h.total)} MB with ${fmtInt(names)} names in the cluster, ${fmtInt(shares[i] as number)} guarded here\n`);
        console.log(table(['self MB', 'count', 'bytes per name held in the cluster', 'what'], h.entries.map((e) => [
          fmtMb(e.bytes), fmtInt(e.count), (e.bytes / names).toFixed(0), e.what,
        ])));
        console.log();
      }
      cluster.kill();
      clearTimeout(watchdog);
      process.exit(0);
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  const after = await clocks();
  cluster.nodes.forEach((n, i) => windows.set(n.pid, { from: before[i] as number, to: after[i] as number }));
  await cluster.stop();
  log(what);
  console.log(`# CPU profile: ${scenario}\n\n${what}\n`);
  for (const n of cluster.nodes) {
    const file = readdirSync(dir).find((f) => f.includes(`.${n.pid}.0.`) && f.endsWith('.cpuprofile'));
    const w = windows.get(n.pid);
    if (file === undefined || w === undefined) {
      console.log(`(no profile for ${n.id})`);
      continue;
    }
    print(n.id, summariseWindow(path.join(dir, file), w));
  }
  console.log(`profiles: ${dir}`);
} finally {
  cluster.kill();
  clearTimeout(watchdog);
}

/** Cuts the profile to the scenario's window (profile times are µs of the same monotonic clock). */
function summariseWindow(file: string, w: { from: number; to: number }): ProfileSummary {
  const start = (JSON.parse(readFileSync(file)) as { startTime: number }).startTime;
  return summarise(file, { fromMs: (w.from - start) / 1000, toMs: (w.to - start) / 1000 });
}

function readFileSync(file: string): string {
  return fsRead(file, 'utf8');
}

function print(id: string, s: ProfileSummary): void {
  const pct = (x: number): string => `${((x / s.spanMs) * 100).toFixed(1)}%`;
  console.log(`## ${id}: busy ${fmtMs(s.busyMs)} ms of ${fmtMs(s.spanMs)} ms (${pct(s.busyMs)} of one core)\n`);
  const top = [...s.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, 25);
  console.log(table(['self ms', 'self %', 'total ms', 'function'], top.map((f) => [fmtMs(f.selfMs), pct(f.selfMs), fmtMs(f.totalMs), f.key])));
  console.log();
  const lib = [...s.functions].filter((f) => f.key.includes(' lib/')).sort((a, b) => b.totalMs - a.totalMs).slice(0, 25);
  console.log(table(['total ms', 'total %', 'self ms', 'lib function (inclusive)'], lib.map((f) => [fmtMs(f.totalMs), pct(f.totalMs), fmtMs(f.selfMs), f.key])));
  console.log();
  console.log(table(['self ms', 'self %', 'file / category'], s.byFile.slice(0, 20).map((f) => [fmtMs(f.selfMs), pct(f.selfMs), f.key])));
  console.log();
}
