/**
 * Starts pes nodes as child processes (bench/fixtures/node.ts) and talks to them over IPC.
 *
 * Every child is tracked by pid and killed by pid (SIGKILL) when the cluster stops, when the bench
 * fails, and when the bench process exits for any reason (including SIGINT/SIGTERM). Every request
 * has a deadline. Nodes bind `tcp://127.0.0.1:0` (loopback, ephemeral port) and report what they bound.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { tsxScript, type NodeScript } from './build.js';
import type { ChildMessage, Command, StartResult, StatusResult } from './protocol.js';

/** Every child alive, by pid, across clusters: the exit hooks kill what is left. */
const live = new Map<number, ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const [pid] of live) killPid(pid);
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  live.delete(pid);
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface NodeProcessOptions {
  /** What to run (default: bench/fixtures/node.ts with tsx). */
  readonly script?: NodeScript;
  /** Extra node flags for the child (e.g. --cpu-prof). */
  readonly execArgv?: readonly string[];
  /** Extra environment variables for the child (added to this process's environment). */
  readonly env?: Readonly<Record<string, string>>;
}

/** One node process. */
export class NodeProcess {
  readonly id: string;
  readonly child: ChildProcess;
  readonly pid: number;
  endpoint = '';
  #seq = 0;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  #exited = false;
  readonly ready: Promise<void>;

  constructor(id: string, options: NodeProcessOptions = {}) {
    hookExit();
    this.id = id;
    const script = options.script ?? tsxScript();
    this.child = fork(script.script, [], {
      execArgv: [...script.execArgv, '--expose-gc', ...(options.execArgv ?? [])],
      serialization: 'advanced',
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    if (this.child.pid === undefined) throw new Error(`could not start node process ${id}`);
    this.pid = this.child.pid;
    live.set(this.pid, this.child);
    let onReady: () => void = () => {};
    let onFail: (e: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    const readyTimer = setTimeout(() => onFail(new Error(`${id}: not ready within 30 s`)), 30_000);
    this.child.on('message', (raw) => {
      const m = raw as ChildMessage;
      if ('ready' in m) {
        clearTimeout(readyTimer);
        onReady();
        return;
      }
      const p = this.#pending.get(m.seq);
      if (p === undefined) return;
      this.#pending.delete(m.seq);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${id}: ${m.error}`));
    });
    this.child.on('exit', (code, signal) => {
      this.#exited = true;
      live.delete(this.pid);
      clearTimeout(readyTimer);
      const err = new Error(`${id}: process exited (code ${code}, signal ${signal})`);
      onFail(err);
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this.#pending.clear();
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Sends a command; rejects if no answer comes within `timeoutMs`. */
  request<T>(command: Command, timeoutMs: number): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.id}: process has exited`));
    const seq = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(new Error(`${this.id}: no answer to '${command.cmd}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(seq, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ seq, command });
    });
  }

  /** Asks the child to exit (so --cpu-prof writes its profile), then kills it by pid if it lingers. */
  async exit(graceMs = 3000): Promise<void> {
    if (this.#exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      await this.request({ cmd: 'exit' }, 1000);
    } catch {
      // fall through to the kill
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, graceMs))]);
    this.kill();
  }

  kill(): void {
    if (!this.#exited) killPid(this.pid);
    live.delete(this.pid);
  }
}

export interface ClusterOptions extends NodeProcessOptions {
  readonly size: number;
  readonly heartbeat?: number;
  /** Prefix of node ids. */
  readonly name?: string;
}

/** A cluster of node processes: the first starts alone, the others join through it one at a time. */
export class Cluster {
  readonly nodes: NodeProcess[] = [];

  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster();
    try {
      await cluster.#start(options);
    } catch (e) {
      cluster.kill();
      throw e;
    }
    return cluster;
  }

  async #start(o: ClusterOptions): Promise<void> {
    const name = o.name ?? 'n';
    for (let i = 0; i < o.size; i++) this.nodes.push(new NodeProcess(`${name}${i + 1}`, o));
    await Promise.all(this.nodes.map((n) => n.ready));
    const seed: string[] = [];
    // One at a time: pes changes membership one node at a time (a second concurrent join is refused).
    for (const n of this.nodes) {
      const endpoint = 'tcp://127.0.0.1:0';
      const r = await n.request<StartResult>(
        { cmd: 'start', id: n.id, endpoint, seeds: seed, ...(o.heartbeat === undefined ? {} : { heartbeat: o.heartbeat }) }, 60_000);
      n.endpoint = r.endpoint;
      if (seed.length === 0) seed.push(r.endpoint);
    }
    await this.waitFormed(30_000);
  }

  /** Waits until every node lists every node as a member, sees them live, and votes. */
  async waitFormed(timeoutMs: number): Promise<StatusResult[]> {
    const deadline = Date.now() + timeoutMs;
    let last: StatusResult[] = [];
    while (Date.now() < deadline) {
      last = await this.status();
      const n = this.nodes.length;
      if (last.every((s) => s.members.length === n && s.liveMembers.length === n && s.voting)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`cluster not formed within ${timeoutMs} ms: ${JSON.stringify(last.map((s) => ({ id: s.id, members: s.members, live: s.liveMembers, voting: s.voting })))}`);
  }

  status(): Promise<StatusResult[]> {
    return Promise.all(this.nodes.map((n) => n.request<StatusResult>({ cmd: 'status' }, 10_000)));
  }

  /** Graceful exit (profiles are written), then kill by pid whatever is left. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.exit()));
    this.kill();
  }

  kill(): void {
    for (const n of this.nodes) n.kill();
  }
}
