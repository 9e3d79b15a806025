/**
 * An election among three pes nodes in one process (in-process network, real time): every node tries
 * to become 'leader' at once, exactly one wins; the winner steps down and a new leader with a higher
 * fencing token takes over; then the leader's node is cut off, its lease runs out and it stands down
 * before the others elect a successor.
 *
 *   npm start
 */
import type { PesNode } from 'pes';
import { startLocalCluster } from 'pes/testing';

const { nodes, net, stop } = await startLocalCluster(3, { settings: { heartbeat: 1000 } });
const started = performance.now();
const t = (): string => `${((performance.now() - started) / 1000).toFixed(2).padStart(6)}s`;

for (const node of nodes) {
  node.events.on('registered', (e) => console.log(`${t()}  ${node.id}: elected leader, token ${e.token}`));
  node.events.on('released', (e) => console.log(`${t()}  ${node.id}: no longer leader (${e.reason})`));
}

async function elect(candidates: readonly PesNode[]): Promise<PesNode> {
  const results = await Promise.all(candidates.map((node) => node.registerName('leader', node.spawn())));
  const winners = candidates.filter((_, i) => results[i] === 'yes');
  console.log(`${t()}  election among ${candidates.map((n) => n.id).join(', ')}: ${winners.length} winner(s)`);
  if (winners.length !== 1) throw new Error('expected exactly one winner');
  return winners[0] as PesNode;
}

async function untilElected(candidates: readonly PesNode[], limitMs: number): Promise<PesNode> {
  const deadline = performance.now() + limitMs;
  for (;;) {
    const owners = await Promise.all(candidates.map((node) => node.whereis('leader').catch(() => undefined)));
    if (owners[0] === undefined) {
      const results = await Promise.all(candidates.map((node) => node.registerName('leader', node.spawn())));
      const i = results.indexOf('yes');
      if (i >= 0) return candidates[i] as PesNode;
    }
    if (performance.now() > deadline) throw new Error('no leader elected in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const first = await elect(nodes);
const ref = await nodes[0]!.whereis('leader');
console.log(`${t()}  every node agrees: leader is ${ref?.node}/${ref?.id}`);

console.log(`${t()}  ${first.id} steps down (its owner exits)`);
first.registration('leader')?.unregister();
const second = await untilElected(nodes, 5000);

console.log(`${t()}  cutting ${second.id} off the network`);
net.isolate(second.id);
const rest = nodes.filter((n) => n !== second);
const third = await untilElected(rest, 10_000);
console.log(`${t()}  ${third.id} leads with token ${(await third.lookup('leader'))?.token}`);

net.heal();
await stop();
console.log(`${t()}  done`);
