import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PesNode } from '../../lib/node.js';
import type { ManualClock } from '../../lib/clock.js';
import { createTestCluster, type TestCluster } from '../../lib/testing.js';
import {
  consumer, consumerPlugin, type Consumer, type ConsumerOptions, type JobContext, type PushSource, type ReturnInfo, type SourceContext,
} from '../../plugins/consumer.js';

const HB = 1000;

/**
 * A shared in-memory queue, as a broker would be: jobs are taken, then acked (done) or requeued
 * (back at the front). Pending takes end when the taker's signal aborts.
 */
class Queue {
  readonly items: number[] = [];
  readonly acks = new Map<number, number>();
  readonly takenBy: { job: number; node: string }[] = [];
  readonly requeued: { job: number; reason: string }[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(count: number) {
    for (let i = 1; i <= count; i++) this.items.push(i);
  }

  ack(job: number): void {
    this.acks.set(job, (this.acks.get(job) ?? 0) + 1);
  }

  requeue(job: number, info: ReturnInfo): void {
    this.requeued.push({ job, reason: info.reason });
    this.items.unshift(job);
    this.#wake();
  }

  add(job: number): void {
    this.items.push(job);
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Waits for a job (or the signal); undefined when aborted. */
  async take(node: string, signal: AbortSignal): Promise<number | undefined> {
    while (!signal.aborted) {
      const job = this.items.shift();
      if (job !== undefined) {
        this.takenBy.push({ job, node });
        return job;
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiters.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.#waiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return undefined;
  }

  /** The iterable form: one iterator per ownership, ending when the consumer stops. */
  source(): (ctx: SourceContext) => AsyncIterable<number> {
    return (ctx) => ({
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<number>> => {
          const job = await this.take(ctx.node, ctx.signal);
          return job === undefined ? { done: true, value: undefined } : { done: false, value: job };
        },
      }),
    });
  }

  /** The push form: a poller pushing jobs while the consumer takes them. */
  pushSource(): PushSource<number> {
    let stop: AbortController | undefined;
    return {
      start: async (push, ctx) => {
        const mine = new AbortController();
        stop = mine;
        while (!mine.signal.aborted) {
          const job = await this.take(ctx.node, mine.signal);
          if (job === undefined) return;
          if (!(await push(job))) return; // refused jobs reach onReturn, which requeues them
        }
      },
      stop: () => stop?.abort(),
    };
  }
}

interface Call { node: string; job: number; start: number; end?: number; outcome?: 'ok' | 'aborted' }

/** Sleeps `ms` of cluster time; rejects when `signal` aborts (unless told to ignore it). */
function work(clock: ManualClock, ms: number, signal: AbortSignal, ignoreSignal = false): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal.reason);
    };
    if (!ignoreSignal) signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A handler that works `ms`, acks on success, and records every call with cluster time. */
function handlerFor(cluster: TestCluster, queue: Queue, calls: Call[], ms: number, ignoreSignal = false) {
  return async (job: number, ctx: JobContext): Promise<void> => {
    const call: Call = { node: ctx.node, job, start: cluster.clock.now() };
    calls.push(call);
    try {
      await work(cluster.clock, ms, ctx.signal, ignoreSignal);
      queue.ack(job);
      call.outcome = 'ok';
    } catch (e) {
      call.outcome = 'aborted';
      throw e;
    } finally {
      call.end = cluster.clock.now();
    }
  };
}

function declareEverywhere(
  cluster: TestCluster, queue: Queue, calls: Call[], ms: number, opts: ConsumerOptions<number> = {}, ignoreSignal = false,
): Consumer<number>[] {
  return cluster.nodes.map((node) => consumer(node, 'jobs', queue.source(), handlerFor(cluster, queue, calls, ms, ignoreSignal), {
    onReturn: (job, info) => queue.requeue(job, info),
    ...opts,
  }));
}

/** No two handler calls on different nodes overlap in cluster time (touching ends are fine). */
function assertNoOverlapAcrossNodes(calls: Call[]): void {
  for (const a of calls) {
    for (const b of calls) {
      if (a === b || a.node === b.node) continue;
      const aEnd = a.end ?? Infinity;
      const bEnd = b.end ?? Infinity;
      const overlap = a.start < bEnd && b.start < aEnd;
      assert.not.ok(overlap, `job ${a.job} on ${a.node} [${a.start}, ${a.end}] overlaps job ${b.job} on ${b.node} [${b.start}, ${b.end}]`);
    }
  }
}

/** Most calls in flight at once on any one node. */
function maxConcurrent(calls: Call[]): number {
  const points: [number, number][] = [];
  for (const c of calls) points.push([c.start, 1], [c.end ?? Infinity, -1]);
  points.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of points) {
    cur += d;
    max = Math.max(max, cur);
  }
  return max;
}

function allAckedOnce(queue: Queue, count: number): void {
  for (let i = 1; i <= count; i++) assert.is(queue.acks.get(i), 1, `job ${i} acked ${queue.acks.get(i) ?? 0} times`);
  assert.is(queue.acks.size, count);
}

async function until(cluster: TestCluster, cond: () => boolean, maxMs = 60_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 50) {
    if (waited > maxMs) throw new Error('condition not met in time');
    await cluster.advance(50);
  }
}

test('consumer: declared on 3 nodes over one shared queue -> only the owner consumes, each job once', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(20);
    const calls: Call[] = [];
    const consumers = declareEverywhere(cluster, queue, calls, 100);
    await until(cluster, () => queue.acks.size === 20);
    const nodes = new Set(calls.map((c) => c.node));
    assert.is(nodes.size, 1);
    const owner = consumers.find((c) => c.running);
    assert.ok(owner !== undefined, 'one consumer runs');
    assert.is(consumers.filter((c) => c.running).length, 1);
    assert.is(owner.stats.handled, 20);
    assert.ok(typeof owner.token === 'number');
    assert.equal(new Set(queue.takenBy.map((t) => t.node)), nodes);
    allAckedOnce(queue, 20);
    for (const c of consumers) if (c !== owner) assert.is(c.stats.received, 0);
  } finally {
    await cluster.stop();
  }
});

test('consumer: the owner node crashes mid-stream -> a standby takes over; every job handled exactly once', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(40);
    const calls: Call[] = [];
    const consumers = declareEverywhere(cluster, queue, calls, 200, { concurrency: 2 });
    await until(cluster, () => queue.acks.size >= 10);
    const first = calls[0]!.node;
    const i = cluster.ids.indexOf(first);
    const inFlight = consumers[i]!.inFlight;
    assert.ok(inFlight > 0, 'jobs were in flight at the crash');
    const crashedAt = cluster.clock.now();
    await cluster.crash(i);
    await until(cluster, () => queue.acks.size === 40);
    await cluster.advance(HB);
    allAckedOnce(queue, 40);
    const later = calls.filter((c) => c.start > crashedAt);
    assert.ok(later.length > 0 && later.every((c) => c.node !== first), 'a standby consumed after the crash');
    // The crashed owner's in-flight jobs were interrupted and returned, then handled by the new owner.
    assert.ok(queue.requeued.length >= inFlight, `requeued ${queue.requeued.length}`);
    assert.ok(queue.requeued.every((r) => r.reason === 'interrupted'));
    assert.is(consumers[i]!.stats.returned, queue.requeued.length);
    assertNoOverlapAcrossNodes(calls);
  } finally {
    await cluster.stop();
  }
});

test('consumer: drain with jobs in flight -> the owner stops taking jobs, finishes them, then the next owner starts; no overlap', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(30);
    const calls: Call[] = [];
    const consumers = declareEverywhere(cluster, queue, calls, 700, { concurrency: 3, drainTimeout: 5 * HB });
    await until(cluster, () => queue.acks.size >= 3 && calls.filter((c) => c.end === undefined).length === 3);
    const first = calls[0]!.node;
    const i = cluster.ids.indexOf(first);
    const owner = cluster.nodes[i] as PesNode;
    const drainAt = cluster.clock.now();
    const inFlightAtDrain = calls.filter((c) => c.end === undefined);
    assert.is(inFlightAtDrain.length, 3);
    const report = await cluster.run(owner.drain({ timeout: 10 * HB }));
    assert.is(report.moved.length, 1);
    assert.equal(report.failed, []);
    assert.not.ok(consumers[i]!.running);
    await until(cluster, () => queue.acks.size === 30);
    // The in-flight jobs finished on the old owner (not returned), and it took nothing after the drain began.
    for (const c of inFlightAtDrain) assert.is(c.outcome, 'ok');
    assert.ok(calls.filter((c) => c.node === first).every((c) => c.start <= drainAt));
    assert.is(queue.requeued.length, 0);
    const next = calls.filter((c) => c.node !== first);
    assert.ok(next.length > 0 && next.every((c) => c.node === report.moved[0]!.to));
    const lastOld = Math.max(...calls.filter((c) => c.node === first).map((c) => c.end!));
    const firstNew = Math.min(...next.map((c) => c.start));
    assert.ok(firstNew >= lastOld, `new owner started at ${firstNew}, old owner's last job ended at ${lastOld}`);
    assertNoOverlapAcrossNodes(calls);
    allAckedOnce(queue, 30);
  } finally {
    await cluster.stop();
  }
});

test('consumer: concurrency 3 with 200 ms jobs -> at most 3 handler calls in flight, and 3 are reached', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(25);
    const calls: Call[] = [];
    declareEverywhere(cluster, queue, calls, 200, { concurrency: 3 });
    await until(cluster, () => queue.acks.size === 25);
    assert.is(maxConcurrent(calls), 3);
    allAckedOnce(queue, 25);
  } finally {
    await cluster.stop();
  }
});

test('consumer: push source with concurrency 2 -> at most 2 in flight, refused pushes requeued, all jobs once', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(20);
    const calls: Call[] = [];
    const consumers = cluster.nodes.map((node) => consumer(node, 'jobs', queue.pushSource(), handlerFor(cluster, queue, calls, 300), {
      concurrency: 2, onReturn: (job, info) => queue.requeue(job, info),
    }));
    await until(cluster, () => queue.acks.size >= 6);
    const first = calls[0]!.node;
    const owner = cluster.nodes[cluster.ids.indexOf(first)] as PesNode;
    await cluster.run(owner.drain({ timeout: 10 * HB }));
    await until(cluster, () => queue.acks.size === 20);
    assert.is(maxConcurrent(calls), 2);
    assert.ok(queue.requeued.every((r) => r.reason === 'not-started'), 'only refused pushes were returned');
    assertNoOverlapAcrossNodes(calls);
    allAckedOnce(queue, 20);
    assert.is(consumers.filter((c) => c.running).length, 1);
  } finally {
    await cluster.stop();
  }
});

test('consumer: jobs outlive drainTimeout on a handoff -> onReturn(timeout) with their signal aborted, then the next owner starts', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(4);
    const calls: Call[] = [];
    const signals: AbortSignal[] = [];
    const returned: { job: number; info: ReturnInfo; at: number }[] = [];
    const consumers = cluster.nodes.map((node) => consumer(node, 'jobs', queue.source(), async (job: number, ctx: JobContext) => {
      signals.push(ctx.signal);
      // Ignores its signal: runs 10 s whatever happens, so it outlives the drain timeout.
      await handlerFor(cluster, queue, calls, 10 * HB, true)(job, ctx);
    }, {
      concurrency: 2, drainTimeout: 1500,
      onReturn: (job, info) => {
        returned.push({ job, info, at: cluster.clock.now() });
        queue.requeue(job, info);
      },
    }));
    await until(cluster, () => calls.length === 2);
    const first = calls[0]!.node;
    const i = cluster.ids.indexOf(first);
    const drainAt = cluster.clock.now();
    const report = await cluster.run((cluster.nodes[i] as PesNode).drain({ timeout: 10 * HB }));
    assert.is(report.moved.length, 1);
    assert.equal(returned.map((r) => r.job).sort(), [1, 2]);
    assert.ok(returned.every((r) => r.info.reason === 'timeout' && r.info.node === first && r.at - drainAt >= 1500 && r.at - drainAt < 1600));
    assert.ok(signals.slice(0, 2).every((s) => s.aborted), 'the returned jobs were told to stop');
    assert.is(consumers[i]!.stats.returned, 2);
    // The next owner starts after the drain timeout and takes the returned jobs first.
    await until(cluster, () => calls.filter((c) => c.node !== first).length >= 2);
    const newCalls = calls.filter((c) => c.node !== first);
    assert.equal(newCalls.slice(0, 2).map((c) => c.job).sort(), [1, 2]);
    assert.ok(newCalls.every((c) => c.start >= drainAt + 1500));
  } finally {
    await cluster.stop();
  }
});

test('consumer: handler throws on its own -> onError(handler), counted failed, not returned; consumption goes on', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(6);
    const errors: { phase: string; job: number | undefined }[] = [];
    const consumers = cluster.nodes.map((node) => consumer(node, 'jobs', queue.source(), (job: number) => {
      if (job % 2 === 0) throw new Error('even jobs fail');
      queue.ack(job);
    }, { onError: (_e, info) => errors.push({ phase: info.phase, job: info.job }), onReturn: (job, info) => queue.requeue(job, info) }));
    await until(cluster, () => errors.length === 3 && queue.acks.size === 3);
    const owner = consumers.find((c) => c.running)!;
    assert.equal(owner.stats, { runs: 1, received: 6, handled: 3, failed: 3, returned: 0 });
    assert.equal(errors.map((e) => e.phase), ['handler', 'handler', 'handler']);
    assert.equal(errors.map((e) => e.job), [2, 4, 6]);
    assert.is(queue.requeued.length, 0);
  } finally {
    await cluster.stop();
  }
});

test('consumer: used as a plugin -> declared by node.use; stopping the node hands the queue to another node', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const queue = new Queue(10);
    const calls: Call[] = [];
    const plugins = cluster.nodes.map(() => consumerPlugin('jobs', queue.source(), handlerFor(cluster, queue, calls, 300), {
      onReturn: (job, info) => queue.requeue(job, info),
    }));
    for (const [i, node] of cluster.nodes.entries()) await cluster.run(node.use(plugins[i]!));
    assert.is(plugins[0]!.name, 'consumer:jobs');
    await until(cluster, () => queue.acks.size >= 2);
    const first = calls[0]!.node;
    const i = cluster.ids.indexOf(first);
    await cluster.run((cluster.nodes[i] as PesNode).stop());
    assert.not.ok(plugins[i]!.running);
    await until(cluster, () => queue.acks.size === 10);
    assert.ok(calls.some((c) => c.node !== first));
    assertNoOverlapAcrossNodes(calls);
    allAckedOnce(queue, 10);
  } finally {
    await cluster.stop();
  }
});

test('consumer: bad arguments -> InvalidArgumentError naming the argument', async () => {
  const cluster = await createTestCluster({ nodes: 1 });
  try {
    const node = cluster.nodes[0] as PesNode;
    const source = new Queue(0).source();
    const cases: [string, () => unknown][] = [
      ['concurrency', () => consumer(node, 'a', source, () => {}, { concurrency: 0 })],
      ['drainTimeout', () => consumer(node, 'b', source, () => {}, { drainTimeout: -1 })],
      ['source', () => consumer(node, 'c', {} as never, () => {})],
      ['handler', () => consumer(node, 'd', source, 5 as never)],
    ];
    for (const [argument, fn] of cases) {
      try {
        fn();
        assert.unreachable(`${argument} accepted`);
      } catch (e) {
        assert.is((e as Error).name, 'InvalidArgumentError');
        assert.is((e as { argument?: string }).argument, argument);
      }
    }
  } finally {
    await cluster.stop();
  }
});

test.run();
