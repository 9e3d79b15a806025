/**
 * A singleton queue consumer on three pes nodes in one process (in-process network, real time): every
 * node declares the same consumer of one shared in-memory queue, exactly one of them consumes. Then the
 * owner's node is cut off the network: its lease runs out, it stops and returns its in-flight jobs to
 * the queue before a standby takes over. At the end every job has been handled exactly once.
 *
 *   node --conditions=source --import tsx examples/consumer.ts
 */
import type { PesNode } from 'pes';
import { startLocalCluster } from 'pes/testing';
import { consumer, type Consumer, type JobContext, type SourceContext } from 'pes/plugins/consumer';

/** A tiny broker: take, ack, requeue. Takes wait for a job or the taker's signal. */
class Queue {
  readonly #items: number[] = [];
  readonly #waiters = new Set<() => void>();
  readonly acked = new Map<number, number>();

  add(job: number): void {
    this.#items.push(job);
    for (const w of [...this.#waiters]) w();
  }

  requeue(job: number): void {
    this.#items.unshift(job);
    for (const w of [...this.#waiters]) w();
  }

  ack(job: number): void {
    this.acked.set(job, (this.acked.get(job) ?? 0) + 1);
  }

  /** The consumer's source: a fresh async iterable per ownership, ending when its signal aborts. */
  consume(ctx: SourceContext): AsyncIterable<number> {
    const take = async (): Promise<IteratorResult<number>> => {
      while (!ctx.signal.aborted) {
        const job = this.#items.shift();
        if (job !== undefined) return { done: false, value: job };
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            this.#waiters.delete(wake);
            ctx.signal.removeEventListener('abort', wake);
            resolve();
          };
          this.#waiters.add(wake);
          ctx.signal.addEventListener('abort', wake, { once: true });
        });
      }
      return { done: true, value: undefined };
    };
    return { [Symbol.asyncIterator]: () => ({ next: take }) };
  }
}

const JOBS = 100;
const { nodes, ids, net, stop } = await startLocalCluster(3, { settings: { heartbeat: 1000 } });
const started = performance.now();
const t = (): string => `${((performance.now() - started) / 1000).toFixed(2).padStart(6)}s`;

const queue = new Queue();
for (let i = 1; i <= JOBS; i++) queue.add(i);
const handledBy = new Map<string, number>();

/** Each job takes 150 ms, stops when told to, and is acked only when done (as a broker would want). */
async function handle(job: number, ctx: JobContext): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, 150);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(ctx.signal.reason);
    }, { once: true });
  });
  queue.ack(job);
  handledBy.set(ctx.node, (handledBy.get(ctx.node) ?? 0) + 1);
  if (job % 10 === 0) console.log(`${t()}  ${ctx.node} handled job ${job} (token ${ctx.token})`);
}

const consumers: Consumer<number>[] = nodes.map((node) => consumer(node, 'queue/billing', (ctx) => queue.consume(ctx), handle, {
  concurrency: 2,
  drainTimeout: 2000,
  onReturn: (job, info) => {
    console.log(`${t()}  ${info.node} returns job ${job} to the queue (${info.reason})`);
    queue.requeue(job);
  },
  onLost: (c) => console.log(`${t()}  ${node.id}: lost queue/billing (token ${c.token})`),
}));

async function until(cond: () => boolean, limitMs: number, what: string): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

await until(() => queue.acked.size >= 12, 8000, 'the first jobs');
const i = consumers.findIndex((c) => c.running);
const owner = nodes[i] as PesNode;
console.log(`${t()}  ${owner.id} owns the consumer with ${consumers[i]!.inFlight} job(s) in flight; cutting it off the network`);
net.isolate(owner.id);

await until(() => consumers.some((c, j) => j !== i && c.running), 10_000, 'a standby to take over');
const next = consumers.findIndex((c, j) => j !== i && c.running);
console.log(`${t()}  ${ids[next]} took over with token ${consumers[next]!.token}`);
await until(() => queue.acked.size === JOBS, 10_000, 'every job');

const twice = [...queue.acked].filter(([, n]) => n !== 1);
console.log(`${t()}  ${queue.acked.size}/${JOBS} jobs handled; by node: ${[...handledBy].map(([n, c]) => `${n}=${c}`).join(', ')}`);
if (twice.length > 0) throw new Error(`jobs handled more than once: ${twice.map(([j]) => j).join(', ')}`);
console.log(`${t()}  every job handled exactly once`);

net.heal();
await stop();
console.log(`${t()}  done`);
