/**
 * `pes/testing`: whole clusters inside one process, on the in-memory network, for testing code built on
 * pes. {@link createTestCluster} runs on a manual clock: time moves only when the test says so; the
 * network's switches inject partitions, loss, delay and duplication from a seeded generator, so every
 * run is reproducible.
 *
 * ```ts
 * const cluster = await createTestCluster({ nodes: 3 });
 * const [a, b] = cluster.nodes;
 * const reg = await cluster.run(a.register('job', a.spawn()));
 * cluster.net.isolate(a.id);
 * await cluster.advance(30_000);           // a's lease runs out; reg.signal aborts
 * await cluster.stop();
 * ```
 *
 * {@link startLocalCluster} runs in real time instead, for demos, examples and trying pes out:
 *
 * ```ts
 * const { nodes, net, stop } = await startLocalCluster(3, { settings: { heartbeat: 1000 } });
 * const a = nodes[0]!;
 * await a.register('job', a.spawn());
 * net.isolate(a.id);                       // within about 3 s, a stands down and another node may take 'job'
 * await stop();
 * ```
 */
import { ManualClock, SkewedClock, SystemClock, type Clock } from './clock.js';
import type { Settings } from './cluster/config.js';
import { InvalidArgumentError, TimeoutError } from './errors.js';
import { PesNode, type PesOptions } from './node.js';
import type { MemberInfo } from './protocol/messages.js';
import { MemoryNetwork, MemoryTransport } from './transport/memory.js';

export { LivelockError, ManualClock, SkewedClock } from './clock.js';
export { MemoryNetwork, MemoryTransport, Random } from './transport/memory.js';

export interface TestClusterOptions {
  /** Number of nodes (default 3). */
  readonly nodes?: number;
  /** Seed of the network's failure generator and of every node's jitter (default 1). */
  readonly seed?: number;
  /** Cluster settings every node starts with (e.g. a short heartbeat). */
  readonly settings?: Partial<Settings>;
  /** Per-node clock rates (1 = exact), to model drift. */
  readonly rates?: readonly number[];
  /** Extra node options (phaseTimeout, timeout, shards...). */
  readonly node?: Omit<PesOptions, 'id' | 'transport' | 'clock' | 'members' | 'settings' | 'random'>;
}

export interface TestCluster {
  readonly clock: ManualClock;
  readonly net: MemoryNetwork;
  /** Current node of each slot (a restart replaces it). */
  readonly nodes: PesNode[];
  readonly ids: readonly string[];
  /** Each node's own clock view (drift applied). */
  readonly clocks: readonly Clock[];
  /**
   * Adds a slot: a new node (id `n<slot + 1>`, the cluster's settings and node options) that joins
   * through slot `via`'s node, as `Pes.start({ seeds })` does. Returns it at once with its start, which
   * settles as the clock runs (it rejects, and the node stops, when the join does not succeed in time).
   * A restart of such a slot joins through the same seed again.
   */
  add(via: number): { readonly index: number; readonly node: PesNode; readonly started: Promise<PesNode> };
  /** Moves time forward, running everything due. */
  advance(ms: number): Promise<void>;
  /** Advances time until `promise` settles (at most `maxMs` of cluster time), then returns its result. */
  run<T>(promise: Promise<T>, maxMs?: number): Promise<T>;
  /** Kills slot `i` as `kill -9` would (no tombstones sent). */
  crash(i: number): Promise<void>;
  /**
   * Starts slot `i` again: a new incarnation with empty acceptor state. Resolves once it runs; a slot
   * made by {@link add} joins again and resolves at once (its start settles as the clock runs).
   */
  restart(i: number): Promise<PesNode>;
  /** Stops every node gracefully. */
  stop(): Promise<void>;
}

/** Builds and starts an N-node cluster; resolves when every acceptor votes. */
export async function createTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const n = options.nodes ?? 3;
  const seed = options.seed ?? 1;
  const clock = new ManualClock();
  const net = new MemoryNetwork(clock, seed);
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  /** Per slot: the endpoint of the seed it joins through (slots made by `add`), else undefined. */
  const seeds: (string | undefined)[] = ids.map(() => undefined);
  const members: MemberInfo[] = ids.map((id) => ({ id, endpoint: `memory://${id}` }));
  const clockOf = (i: number): Clock => {
    const rate = options.rates?.[i] ?? 1;
    return rate === 1 ? clock : new SkewedClock(clock, rate);
  };
  const clocks: Clock[] = ids.map((_, i) => clockOf(i));
  const incarnations = ids.map(() => 1);
  let jitterSeed = seed * 7919;
  const random = (): number => {
    jitterSeed = (jitterSeed * 1103515245 + 12345) % 2147483648;
    return jitterSeed / 2147483648;
  };
  const make = (i: number): PesNode => {
    const id = ids[i] as string;
    const seed = seeds[i];
    return new PesNode({
      ...options.node,
      id,
      transport: new MemoryTransport(net, id, incarnations[i] as number),
      clock: clocks[i] as Clock,
      ...(seed === undefined ? { members } : { seeds: [seed] }),
      ...(options.settings === undefined ? {} : { settings: options.settings }),
      random,
    });
  };
  const nodes = ids.map((_, i) => make(i));

  const run = async <T>(promise: Promise<T>, maxMs = 120_000): Promise<T> => {
    let settled = false;
    promise.then(() => { settled = true; }, () => { settled = true; });
    const limit = clock.now() + maxMs;
    await clock.flush();
    while (!settled) {
      const due = clock.nextDue();
      if (due === undefined || due > limit) throw new Error(`test cluster: promise did not settle within ${maxMs} ms of cluster time`);
      await clock.advance(due - clock.now());
    }
    return promise;
  };

  await Promise.all(nodes.map((node) => node.start()));
  for (let waited = 0; !nodes.every((node) => node.voting); waited += 10) {
    if (waited > 60_000) throw new Error('test cluster: acceptors did not start voting');
    await clock.advance(10);
  }

  return {
    clock, net, nodes, ids, clocks,
    advance: (ms) => clock.advance(ms),
    run,
    async crash(i) {
      await nodes[i]?.crash();
    },
    add(via) {
      const seedId = ids[via];
      if (seedId === undefined) throw new InvalidArgumentError('via', `no slot ${via}`);
      const index = ids.length;
      ids.push(`n${index + 1}`);
      seeds.push(`memory://${seedId}`);
      clocks.push(clockOf(index));
      incarnations.push(1);
      const node = make(index);
      nodes.push(node);
      const started = node.start();
      // Whoever ignores the start (a schedule that only watches the node) must not crash the process.
      started.catch(() => {});
      return { index, node, started };
    },
    async restart(i) {
      await nodes[i]?.crash();
      incarnations[i] = (incarnations[i] ?? 1) + 1;
      const node = make(i);
      nodes[i] = node;
      if (seeds[i] !== undefined) {
        node.start().catch(() => {});
        return node;
      }
      await node.start();
      await clock.flush();
      return node;
    },
    async stop() {
      await run(Promise.all(nodes.map((node) => node.stop())));
    },
  };
}

/** Options of {@link startLocalCluster}. */
export interface LocalClusterOptions {
  /** Node ids, one per node (default `node-a`, `node-b`, ... and `node-27` on from the 27th). */
  readonly ids?: readonly string[];
  /** Cluster settings every node starts with (`{ heartbeat: 1000 }` fails over within seconds). */
  readonly settings?: Partial<Settings>;
  /** The clock of every node and of the network (default: the system clock, real time). */
  readonly clock?: Clock;
  /** Extra node options (phaseTimeout, timeout, shards, random...). */
  readonly node?: Omit<PesOptions, 'id' | 'transport' | 'clock' | 'members' | 'settings'>;
  /** How long, ms of `clock`, the nodes may take until every one votes (default 10000). */
  readonly readyTimeout?: number;
}

/** A running in-process cluster made by {@link startLocalCluster}. */
export interface LocalCluster {
  /** The nodes, in the order of `ids`. */
  readonly nodes: readonly PesNode[];
  readonly ids: readonly string[];
  /** The network between them: `isolate`, `partition`, `heal` and the fault switches. */
  readonly net: MemoryNetwork;
  readonly clock: Clock;
  /** Stops every node gracefully (their names are released); idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `n` nodes (default 3) in this process, every one a member from the start, on one in-memory
 * network and (by default) the real clock; resolves once every node votes. Unlike
 * {@link createTestCluster}, time runs by itself. Rejects with InvalidArgumentError on a bad `n` or
 * `ids`, with TimeoutError when the nodes do not all vote within `readyTimeout` (every node started is
 * stopped first), or with the error of a node that failed to start.
 */
export async function startLocalCluster(n = 3, options: LocalClusterOptions = {}): Promise<LocalCluster> {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('n', 'n must be an integer >= 1');
  const ids = options.ids ?? Array.from({ length: n }, (_, i) => `node-${i < 26 ? String.fromCharCode(97 + i) : i + 1}`);
  if (ids.length !== n || new Set(ids).size !== n) throw new InvalidArgumentError('ids', 'ids must be n distinct node ids');
  const clock = options.clock ?? new SystemClock();
  const readyTimeout = options.readyTimeout ?? 10_000;
  const net = new MemoryNetwork(clock);
  const members: MemberInfo[] = ids.map((id) => ({ id, endpoint: `memory://${id}` }));
  const nodes = ids.map((id) => new PesNode({
    ...options.node,
    id,
    clock,
    members,
    transport: new MemoryTransport(net, id, 1),
    ...(options.settings === undefined ? {} : { settings: options.settings }),
  }));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= Promise.all(nodes.map((node) => node.stop())).then(() => undefined));
  const started = await Promise.allSettled(nodes.map((node) => node.start()));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  // A node votes once it has copied the live values of the others (one round trip here).
  const deadline = clock.now() + readyTimeout;
  while (!nodes.every((node) => node.voting)) {
    if (clock.now() >= deadline) {
      await stop();
      throw new TimeoutError('startLocalCluster', readyTimeout);
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 10));
  }
  return { nodes, ids, net, clock, stop };
}
