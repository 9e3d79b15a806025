/**
 * A deploy's handoff on three pes nodes in one process (in-process network, real time): a singleton
 * with state (a ledger that counts the entries it wrote) runs on one node; for a deploy, that node calls
 * `node.drain()`, which stops the singleton there, captures its state with `handoff()`, moves the name
 * to another node and starts it there with that state: no overlap, and the gap is measured. Then the
 * drained node stops, as the old process of a rolling restart would.
 *
 *   node --conditions=source --import tsx examples/deploy-handoff.ts
 */
import type { PesNode } from 'pes';
import { startLocalCluster } from 'pes/testing';

interface LedgerState { readonly entries: number; readonly from: string }

const { nodes, stop } = await startLocalCluster(3, { settings: { heartbeat: 1000 } });
const started = performance.now();
const t = (): string => `${((performance.now() - started) / 1000).toFixed(2).padStart(6)}s`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every start and stop, for the overlap check. */
const runs: { node: string; token: number; start: number; end?: number; state?: LedgerState }[] = [];
let owner: string | undefined;

for (const node of nodes) {
  let entries = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  node.singleton<LedgerState>('billing/ledger', {
    start: (ctx) => {
      entries = ctx.state?.entries ?? 0;
      owner = node.id;
      runs.push({ node: node.id, token: ctx.token, start: performance.now(), ...(ctx.state === undefined ? {} : { state: ctx.state }) });
      const from = ctx.state === undefined ? 'a fresh state' : `state from ${ctx.state.from}: ${ctx.state.entries} entries`;
      console.log(`${t()}  ${node.id}: ledger started (token ${ctx.token}) with ${from}`);
      // The work: one ledger entry every 50 ms, written with the fencing token, until ownership ends.
      timer = setInterval(() => { entries++; }, 50);
      ctx.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
    },
    stop: (reason) => {
      if (timer === undefined) return; // once per run
      clearInterval(timer);
      timer = undefined;
      const run = runs.findLast((r) => r.node === node.id);
      if (run !== undefined) run.end = performance.now();
      console.log(`${t()}  ${node.id}: ledger stopped (${reason}) after ${entries} entries`);
    },
    handoff: () => ({ entries, from: node.id }),
  });
}

while (owner === undefined) await sleep(20);
await sleep(1500);
const old = nodes.find((n) => n.id === owner) as PesNode;
console.log(`${t()}  -- deploying ${old.id}: drain`);
const report = await old.drain({ timeout: 10_000 });
for (const m of report.moved) console.log(`${t()}  drain moved ${m.name} to ${m.to}; gap reported by pes: ${m.gapMs.toFixed(1)} ms`);
if (report.moved.length !== 1 || report.failed.length > 0) throw new Error(`unexpected drain report: ${JSON.stringify(report)}`);

while (runs.length < 2) await sleep(5);
const [first, second] = runs as [typeof runs[number], typeof runs[number]];
if (first.end === undefined || first.end > second.start) throw new Error('the two owners overlapped');
console.log(`${t()}  measured gap between the old owner's stop and the new owner's start: ${(second.start - first.end).toFixed(1)} ms`);
console.log(`${t()}  state carried over: ${second.state?.entries} entries; token ${first.token} -> ${second.token}`);
if (second.state?.from !== old.id || !(second.token > first.token)) throw new Error('state or token did not move as expected');

console.log(`${t()}  -- ${old.id} stops (the old process exits)`);
await old.stop();
await sleep(1000);
if (runs.length !== 2 || runs[1]?.end !== undefined) throw new Error('the ledger should still run on the new owner only');
console.log(`${t()}  ledger still runs on ${second.node} only`);

await stop();
console.log(`${t()}  done`);
