/**
 * One node of the demo (examples/demo.ts starts three): a pes node over ZeroMQ on loopback that declares
 * the singleton 'report-job' (it counts, once a second, on exactly one node) and reports as JSON lines.
 * Reads commands on stdin: "drain". Drains and exits on SIGTERM.
 */
import { createInterface } from 'node:readline';
import { Pes } from 'pes';

const [id = 'node', seed] = process.argv.slice(2);
const out = (event: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify({ id, t: Date.now(), ...event })}\n`); };

const node = await Pes.start({
  id, endpoint: 'tcp://127.0.0.1:0', ...(seed === undefined ? {} : { seeds: [seed] }),
  settings: { heartbeat: 1000 }, drainOnSignal: { timeout: 5000 },
});
out({ event: 'up', endpoint: node.endpoint });

let count = 0;
node.singleton<{ count: number }>('report-job', {
  start(ctx) {
    count = ctx.state?.count ?? count;
    out({ event: 'start', token: ctx.token, count, handedOver: ctx.state !== undefined });
    const timer = setInterval(() => {
      if (!ctx.registration.valid) return; // the lease is checked before every piece of work
      count++;
      out({ event: 'tick', token: ctx.token, count });
    }, 1000);
    ctx.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  },
  handoff: () => ({ count }),
  stop(reason) {
    out({ event: 'stop', reason });
  },
});

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'drain') {
    void node.drain({ timeout: 5000 }).then((r) => out({ event: 'drained', moved: r.moved, stopped: r.stopped }));
  }
});
