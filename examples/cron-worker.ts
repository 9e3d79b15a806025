/**
 * A singleton cron job on three pes nodes in one process (in-process network, real time): every node
 * declares the same every-second job, exactly one node runs each fire. Then the owner's node is cut
 * off the network: its lease runs out, it stops firing, and another node takes the job over with a
 * higher fencing token. A few fires are missed during the failover; none runs twice.
 *
 *   node --conditions=source --import tsx examples/cron-worker.ts
 */
import { startLocalCluster } from 'pes/testing';
import { cron, type CronJobHandle } from 'pes/plugins/cron';

const { nodes, ids, net, stop } = await startLocalCluster(3, { settings: { heartbeat: 1000 } });
const started = performance.now();
const t = (): string => `${((performance.now() - started) / 1000).toFixed(2).padStart(6)}s`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Every node declares the job; the one that owns singleton 'cron/report' runs it.
const fires: { at: string; node: string; token: number }[] = [];
const jobs: CronJobHandle[] = nodes.map((node) => cron(node, 'report', '* * * * * *', ({ scheduledAt, token, node: runner }) => {
  fires.push({ at: scheduledAt.toISOString(), node: runner, token });
  console.log(`${t()}  ${runner}: fire ${scheduledAt.toISOString().slice(11, 19)} (token ${token})`);
}));

for (const node of nodes) {
  node.events.on('registered', (e) => { if (e.name === 'cron/report') console.log(`${t()}  ${node.id}: granted the job, token ${e.token}`); });
  node.events.on('lost', (e) => { if (e.name === 'cron/report') console.log(`${t()}  ${node.id}: lease ran out, stops firing`); });
}

const owner = async (limitMs: number, not?: string): Promise<string> => {
  const deadline = performance.now() + limitMs;
  for (;;) {
    const i = jobs.findIndex((j, k) => j.running && ids[k] !== not);
    if (i >= 0) return ids[i] as string;
    if (performance.now() > deadline) throw new Error('no owner in time');
    await sleep(50);
  }
};

const first = await owner(5000);
console.log(`${t()}  ${first} owns the job`);
await sleep(4000);

console.log(`${t()}  cutting ${first} off the network`);
net.isolate(first);
const second = await owner(10_000, first);
console.log(`${t()}  ${second} took the job over`);
await sleep(3500);

net.heal();
await Promise.all(jobs.map((j) => j.stop()));
await stop();

const times = fires.map((f) => f.at);
const duplicates = times.length - new Set(times).size;
const byNode = new Map<string, number>();
for (const f of fires) byNode.set(f.node, (byNode.get(f.node) ?? 0) + 1);
console.log(`${t()}  ${fires.length} fires (${[...byNode].map(([n, c]) => `${n}: ${c}`).join(', ')}), ${duplicates} run twice`);
const handedOver = fires.some((f) => f.node === second) && fires.some((f) => f.node === first);
const tokensRise = fires.every((f, i) => i === 0 || f.token >= (fires[i - 1] as { token: number }).token);
if (duplicates !== 0 || !handedOver || !tokensRise) {
  console.error('expected one run per fire, a failover, and rising tokens');
  process.exit(1);
}
console.log(`${t()}  done`);
