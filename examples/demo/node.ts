/**
 * One node of the demo (examples/demo.ts starts three): a pes node over ZeroMQ on loopback running the
 * singleton cron job 'report' (every second, on exactly one node of the cluster) and reporting as JSON
 * lines. Reads commands on stdin: "drain". Drains and exits on SIGTERM, or when stdin ends (the demo is
 * gone).
 */
import { createInterface } from 'node:readline';
import { Pes } from 'pes';
import { cron } from 'pes/plugins/cron';

const [id = 'node', seed] = process.argv.slice(2);
const out = (event: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify({ id, t: Date.now(), ...event })}\n`); };

const node = await Pes.start({
  id, endpoint: 'tcp://127.0.0.1:0', ...(seed === undefined ? {} : { seeds: [seed] }),
  settings: { heartbeat: 1000 }, drainOnSignal: { timeout: 5000 },
});
out({ event: 'up', endpoint: node.endpoint, members: node.nodes() });

// Every node declares the same job; only the node that owns 'cron/report' runs its fires.
cron(node, 'report', '* * * * * *', (ctx) => {
  out({ event: 'tick', token: ctx.token, scheduledAt: ctx.scheduledAt.toISOString() });
});
const watch = node.watch('cron/report');
watch.on('change', (c) => {
  if (c.kind === 'registered' || c.kind === 'handoff') out({ event: 'owner', owner: c.owner.node, token: c.token, kind: c.kind, snapshot: c.snapshot });
});

const rl = createInterface({ input: process.stdin });
// stdin ends when the demo that started this process is gone (even by kill -9): stop as on SIGTERM.
rl.on('close', () => process.kill(process.pid, 'SIGTERM'));
rl.on('line', (line) => {
  if (line.trim() === 'drain') {
    void node.drain({ timeout: 5000 }).then((r) => out({ event: 'drained', moved: r.moved, stopped: r.stopped }));
  }
});
