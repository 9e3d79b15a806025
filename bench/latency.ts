/**
 * One-caller latency only, optionally as an A/B comparison. Starts one 3-node cluster per variant, then
 * runs `rounds` rounds; each round gives every variant, in turn, a 2 s run of one caller registering
 * on its second node and a 2 s run of one caller there looking up names held on its third node.
 * Prints every run, the medians per variant, and B ÷ A ratios. Quicker than the full bench when working
 * on the one-caller path. `--callers N` runs N callers instead of one (an A/B of throughput).
 *
 *   npm run bench:latency -- [rounds] [--base <git ref>] [--callers N] [B_ENV=value ...]
 *
 * With `--base <ref>`, variant A is the code at that git ref (compiled into bench/.base/) and B the
 * working tree: a change measured against its parent in one run, on the same machine state. With
 * `B_ENV=value` arguments, B's node processes also get those environment variables. Without either,
 * there is one variant.
 */
import { buildBaseline, buildNodeScript, type NodeScript } from './lib/build.js';
import { Cluster, type NodeProcess } from './lib/cluster.js';
import { bulk, lookupRun, registerRun, warmUp, type HeldSet, type RunResult } from './lib/scenarios.js';
import { fmtInt, fmtMs, median, table } from './lib/stats.js';

const args = process.argv.slice(2);
const baseAt = args.indexOf('--base');
const baseRef = baseAt >= 0 ? args[baseAt + 1] : undefined;
if (baseAt >= 0) args.splice(baseAt, 2);
const callersAt = args.indexOf('--callers');
const callers = callersAt >= 0 ? Number(args[callersAt + 1]) : 1;
if (callersAt >= 0) args.splice(callersAt, 2);
if (!Number.isInteger(callers) || callers < 1) throw new Error('--callers must be a positive integer');
const [roundsArg = '8', ...envArgs] = args;
const rounds = Number(roundsArg);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a positive integer, got ${roundsArg}`);
const bEnv = Object.fromEntries(envArgs.map((a) => {
  const i = a.indexOf('=');
  if (i <= 0) throw new Error(`expected NAME=value, got ${a}`);
  return [a.slice(0, i), a.slice(i + 1)];
}));
const log = (m: string): void => {
  process.stderr.write(`[latency] ${m}\n`);
};
const work = buildNodeScript(log);
const base = baseRef === undefined ? undefined : buildBaseline(baseRef, log);
const variants: { label: string; env: Record<string, string>; script: NodeScript }[] = [
  { label: base === undefined ? 'A' : `A (${base.commit})`, env: {}, script: base ?? work },
];
if (base !== undefined || envArgs.length > 0) {
  variants.push({ label: `B (${[base === undefined ? '' : 'working tree', ...envArgs].filter((x) => x !== '').join(', ')})`, env: bEnv, script: work });
}
const clusters: Cluster[] = [];
const watchdog = setTimeout(() => {
  for (const c of clusters) c.kill();
  process.exit(2);
}, 180_000 + rounds * variants.length * 12_000);

interface Sample { reg: RunResult; look: RunResult }
try {
  const sets: HeldSet[] = [];
  for (const [i, v] of variants.entries()) {
    const c = await Cluster.start({ size: 3, name: `l${i}`, script: v.script, env: v.env });
    clusters.push(c);
    const [, , n3] = c.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const set: HeldSet = { prefix: 'held', count: 1000, holder: n3 };
    sets.push(set);
    await bulk(n3, set.prefix, 0, set.count, 30_000);
    await warmUp(c.nodes, 3, 1000, set);
  }
  const samples: Sample[][] = variants.map(() => []);
  // Each column: what it shows of a sample, and how it is printed.
  const columns: { readonly head: string; readonly of: (s: Sample) => number; readonly fmt: (x: number) => string }[] = [
    { head: 'reg/s', of: (s) => s.reg.rate, fmt: fmtInt },
    { head: 'reg p50 ms', of: (s) => s.reg.p50, fmt: fmtMs },
    { head: 'reg p99 ms', of: (s) => s.reg.p99, fmt: fmtMs },
    { head: 'reg CPU µs/op', of: (s) => s.reg.cpuUsPerOp, fmt: fmtInt },
    { head: 'lookups/s', of: (s) => s.look.rate, fmt: fmtInt },
    { head: 'lookup p50 ms', of: (s) => s.look.p50, fmt: fmtMs },
    { head: 'lookup p99 ms', of: (s) => s.look.p99, fmt: fmtMs },
    { head: 'lookup CPU µs/op', of: (s) => s.look.cpuUsPerOp, fmt: fmtInt },
  ];
  const rows: string[][] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [i, v] of variants.entries()) {
      const c = clusters[i] as Cluster;
      const n2 = c.nodes[1] as NodeProcess;
      const reg = await registerRun([n2], callers, 2000, true, c.nodes);
      const look = await lookupRun([n2], [sets[i] as HeldSet], callers, 2000, c.nodes);
      const sample: Sample = { reg, look };
      samples[i]?.push(sample);
      rows.push([String(r + 1), v.label, ...columns.map((col) => col.fmt(col.of(sample)))]);
      log(`round ${r + 1} ${v.label}: register p50 ${fmtMs(reg.p50)} ms, lookup p50 ${fmtMs(look.p50)} ms`);
    }
  }
  const med = (i: number, f: (s: Sample) => number): number => median((samples[i] ?? []).map(f));
  for (const [i, v] of variants.entries()) rows.push(['median', v.label, ...columns.map((col) => col.fmt(med(i, col.of)))]);
  if (variants.length === 2) rows.push(['B ÷ A', '', ...columns.map((col) => (med(1, col.of) / med(0, col.of)).toFixed(2))]);
  console.log(table(['round', 'variant', ...columns.map((col) => col.head)], rows));
} finally {
  clearTimeout(watchdog);
  await Promise.all(clusters.map((c) => c.stop()));
}
