/**
 * `npm run bench:cpu`: the JavaScript cost of the protocol alone, without sockets. Three nodes share one
 * process on the in-memory mesh (frames still go through the codec) with a manual clock, and 64 callers
 * on one node register fresh names, then look them up from another node. The figure is process CPU time
 * per operation for all three nodes together, so it depends little on what else the machine is doing,
 * unlike the socket bench (`npm run bench`). Printed as a markdown table: median of 5 runs, and the
 * range.
 */
import { createTestCluster } from '../lib/testing.js';

const CALLERS = 64;
const OPS = Number(process.env['BENCH_CPU_OPS'] ?? 12_800);
const RUNS = 5;
const HEARTBEAT = 8048;

interface Run { readonly register: number; readonly lookup: number }

const cpuMicros = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function once(): Promise<Run> {
  const c = await createTestCluster({ nodes: 3, settings: { heartbeat: HEARTBEAT } });
  try {
    const [a, b] = c.nodes;
    if (a === undefined || b === undefined) throw new Error('cluster did not start');
    const owners = Array.from({ length: CALLERS }, () => a.spawn());
    let next = 0;
    const registerBatch = async (n: number): Promise<void> => {
      await c.run(Promise.all(Array.from({ length: n }, (_, i) => a.register(`n-${next++}`, owners[i % CALLERS] ?? a.spawn()))));
    };
    await registerBatch(2000); // warm-up: not measured
    const names = next;
    let t = cpuMicros();
    for (let done = 0; done < OPS; done += CALLERS) await registerBatch(CALLERS);
    const register = (cpuMicros() - t) / OPS;
    t = cpuMicros();
    for (let done = 0; done < OPS; done += CALLERS) {
      await c.run(Promise.all(Array.from({ length: CALLERS }, (_, i) => b.lookup(`n-${(done + i) % names}`))));
    }
    const lookup = (cpuMicros() - t) / OPS;
    return { register, lookup };
  } finally {
    await c.stop();
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const runs: Run[] = [];
for (let i = 0; i < RUNS; i++) runs.push(await once());
const row = (label: string, xs: number[]): string =>
  `| ${label} | ${median(xs).toFixed(1)} | ${Math.min(...xs).toFixed(1)} – ${Math.max(...xs).toFixed(1)} |`;
process.stdout.write([
  `# pes protocol CPU (in-memory mesh, 3 nodes in one process, ${CALLERS} callers, ${OPS} operations per run, median of ${RUNS})`,
  '',
  '| operation | CPU µs per operation (all 3 nodes) | range |',
  '|---|---|---|',
  row('register (fresh name)', runs.map((r) => r.register)),
  row('lookup (held on another node)', runs.map((r) => r.lookup)),
  '',
].join('\n'));
