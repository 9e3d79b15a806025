/**
 * An ownership-change subscriber on three pes nodes in one process (in-process network, real time):
 * one node follows `node.watch('jobs/*')` and prints every change (first a snapshot of current
 * owners), while jobs register, hand off, unregister, and fail over when their node is cut off.
 *
 *   node --conditions=source --import tsx examples/ownership-subscriber.ts
 */
import type { OwnershipChange, PesNode } from 'pes';
import { startLocalCluster } from 'pes/testing';

const { nodes, net, stop } = await startLocalCluster(3, { settings: { heartbeat: 1000 } });
const [a, b, c] = nodes as [PesNode, PesNode, PesNode];
const started = performance.now();
const t = (): string => `${((performance.now() - started) / 1000).toFixed(2).padStart(6)}s`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// A name registered before the subscriber starts: it arrives in the snapshot.
await a.register('jobs/import', a.spawn());

// The subscriber, on node-c (any node sees the same changes, each once, in token order per name).
const seen: OwnershipChange[] = [];
const watch = c.watch('jobs/*');
const subscriber = (async () => {
  for await (const change of watch) {
    seen.push(change);
    const tag = change.snapshot ? ' (snapshot)' : '';
    console.log(`${t()}  [watch@${c.id}] ${change.name.padEnd(12)} ${change.kind.padEnd(12)} owner ${change.owner.node}/${change.owner.id} token ${change.token}${tag}`);
  }
})();

/** Waits until the subscriber has seen `kind` for `name`. */
async function seenChange(name: string, kind: OwnershipChange['kind'], limitMs = 10_000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!seen.some((x) => x.name === name && x.kind === kind && !x.snapshot)) {
    if (performance.now() > deadline) throw new Error(`no ${kind} of ${name} seen`);
    await sleep(25);
  }
}

// A singleton declared on every node: one of them runs it; a standby takes over if its node fails.
for (const node of nodes) node.singleton('jobs/report', { start: () => {} });
await seenChange('jobs/report', 'registered');

console.log(`${t()}  -- node-b registers jobs/export`);
await b.register('jobs/export', b.spawn());
await seenChange('jobs/export', 'registered');

console.log(`${t()}  -- jobs/import is handed off from node-a to an owner on node-b`);
await a.update('jobs/import', b.spawn());
await seenChange('jobs/import', 'handoff');

console.log(`${t()}  -- node-b unregisters jobs/export`);
await b.unregister('jobs/export');
await seenChange('jobs/export', 'unregistered');

// Move the singleton off the subscriber's node, then cut its node off: owner-down, expired, failover.
const owner = (await c.lookup('jobs/report'))?.node;
if (owner === c.id) {
  console.log(`${t()}  -- jobs/report is transferred from node-c to node-a`);
  await c.transfer('jobs/report', a.id);
  await seenChange('jobs/report', 'handoff');
}
const victim = (await c.lookup('jobs/report'))?.node as string;
console.log(`${t()}  -- ${victim}, which runs jobs/report, is cut off the network`);
const grants = (): number => seen.filter((x) => x.name === 'jobs/report' && x.kind === 'registered').length;
const grantsBefore = grants();
net.isolate(victim);
await seenChange('jobs/report', 'owner-down');
await seenChange('jobs/report', 'expired');
const deadline = performance.now() + 10_000;
while (grants() === grantsBefore) {
  if (performance.now() > deadline) throw new Error('no failover seen');
  await sleep(25);
}
const last = seen.at(-1) as OwnershipChange;
console.log(`${t()}  -- failover: ${last.name} now runs on ${last.owner.node} with token ${last.token}`);

watch.close();
await subscriber;
net.heal();
await stop();
console.log(`${t()}  ${seen.length} changes seen; done`);
