/**
 * The demo (`npm start`): a real 3-process pes cluster on loopback. Each process declares the same
 * cron job ('report', every second); exactly one runs each fire. The demo prints a live view of who
 * owns it and with which fencing token, kills the owner's process (kill -9) and shows the failover, then
 * drains the new owner (a deploy's handoff: the job moves with its last fire, no overlap, measured gap),
 * checks that no fire ran twice, and exits by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

interface Line { id: string; t: number; event: string; [k: string]: unknown }
interface Proc { id: string; child: ChildProcess; endpoint?: string; alive: boolean }

const here = import.meta.dirname;
const procs: Proc[] = [];
const lines: Line[] = [];
const started = Date.now();
const stamp = (t = Date.now()): string => `${((t - started) / 1000).toFixed(1).padStart(5)}s`;
let owner: { id: string; token: number; count: number } | undefined;
/** Every fire: scheduled time -> node that ran it. */
const fires = new Map<string, string[]>();

function startNode(id: string, seed?: string): Proc {
  const args = ['--conditions=source', '--import', 'tsx', path.join(here, 'demo', 'node.ts'), id, ...(seed === undefined ? [] : [seed])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const p: Proc = { id, child, alive: true };
  child.on('exit', () => { p.alive = false; });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let l: Line;
    try { l = JSON.parse(text) as Line; } catch { return; }
    lines.push(l);
    if (l.event === 'up') {
      p.endpoint = String(l['endpoint']);
      console.log(`${stamp(l.t)}  ${l.id} is up at ${p.endpoint}, members: ${(l['members'] as string[]).join(' ')}`);
    }
    if (l.event === 'owner' && l['snapshot'] !== true && l.id === l['owner']) console.log(`${stamp(l.t)}  ${l.id} owns cron/report now (${l['kind']}), token ${l['token']}`);
    if (l.event === 'tick') {
      const at = String(l['scheduledAt']);
      fires.set(at, [...(fires.get(at) ?? []), l.id]);
      owner = { id: l.id, token: Number(l['token']), count: owner?.id === l.id ? owner.count + 1 : 1 };
    }
    if (l.event === 'drained') {
      for (const m of l['moved'] as { name: string; to: string; gapMs: number }[]) {
        console.log(`${stamp(l.t)}  ${l.id} drained: ${m.name} -> ${m.to}, gap ${m.gapMs.toFixed(1)} ms`);
      }
    }
  });
  procs.push(p);
  return p;
}

async function until<T>(what: string, fn: () => T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const view = setInterval(() => {
  const row = procs.map((p) => `${p.id}:${p.alive ? 'up' : 'down'}`).join('  ');
  console.log(`${stamp()}  [${row}]  cron 'report' runs on: ${owner === undefined ? '-' : `${owner.id} (token ${owner.token}, ${owner.count} fires)`}`);
}, 1000);

try {
  const a = startNode('node-a');
  const seed = await until('node-a', () => a.endpoint, 20_000);
  const joiners = [startNode('node-b', seed), startNode('node-c', seed)];
  // Kill the owner only once all three are members: with two, the survivor alone is no majority.
  await until('node-b and node-c to join', () => (joiners.every((p) => p.endpoint !== undefined) ? true : undefined), 60_000);
  const first = await until('a first owner', () => (owner !== undefined && owner.count >= 3 ? owner : undefined), 30_000);
  const victim = procs.find((p) => p.id === first.id)!;
  const killedAt = Date.now();
  console.log(`${stamp()}  kill -9 ${victim.id} (the owner)`);
  victim.child.kill('SIGKILL');
  const second = await until('failover', () => (owner !== undefined && owner.id !== first.id ? owner : undefined), 20_000);
  console.log(`${stamp()}  failover: ${second.id} took over with token ${second.token} after ${((Date.now() - killedAt) / 1000).toFixed(2)} s`);
  await until('a few ticks', () => (owner !== undefined && owner.count >= second.count + 2 ? owner : undefined), 10_000);
  const draining = procs.find((p) => p.id === second.id)!;
  console.log(`${stamp()}  drain ${draining.id} (a deploy moves its singletons away)`);
  draining.child.stdin!.write('drain\n');
  const third = await until('handoff', () => (owner !== undefined && owner.id !== second.id ? owner : undefined), 20_000);
  await until('a tick after handoff', () => (owner !== undefined && owner.count > third.count ? owner : undefined), 10_000);
  console.log(`${stamp()}  ${third.id} runs the job with token ${third.token}; stopping the cluster`);
  const twice = [...fires].filter(([, nodes]) => nodes.length > 1);
  console.log(`${stamp()}  ${fires.size} fires, ${twice.length} ran more than once`);
  if (twice.length > 0) throw new Error(`fires ran twice: ${JSON.stringify(twice)}`);
} finally {
  clearInterval(view);
  for (const p of procs) if (p.alive && p.child.pid !== undefined) process.kill(p.child.pid, 'SIGTERM');
  const deadline = Date.now() + 8000;
  while (procs.some((p) => p.alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const p of procs) if (p.alive && p.child.pid !== undefined) process.kill(p.child.pid, 'SIGKILL');
}
console.log(`${stamp()}  done`);
