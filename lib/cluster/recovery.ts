/**
 * When may a starting node's acceptor vote? A node that starts without state could contradict a live
 * registration: one it had accepted in a previous life (two such restarts in a 3-node cluster could
 * grant a held name twice), or, for a node joining, one the others hold but it has not been told of yet
 * (two quick joins could form a majority that never heard of it). So it votes at once only when every
 * other member answers that its acceptor is idle: no live value, no promise in flight (a cold start of
 * the whole cluster, or a cluster holding nothing). Otherwise it waits one full expiry period (3
 * heartbeats and one more), during which live guards renew and repair it.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { Rpc } from '../rpc.js';

export interface RecoveryComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly self: string;
  readonly members: () => readonly string[];
  /** How long to wait when some member may hold state. */
  readonly period: () => number;
  readonly retryMs: number;
  readonly onVote: () => void;
}

export class Recovery {
  readonly #c: RecoveryComponents;
  #timer: TimerHandle | undefined;
  #retry: TimerHandle | undefined;
  #rid = 0;
  #done = false;

  constructor(components: RecoveryComponents) {
    this.#c = components;
  }

  get done(): boolean {
    return this.#done;
  }

  start(): void {
    if (this.#done) return;
    this.stop();
    const others = this.#c.members().filter((m) => m !== this.#c.self);
    if (others.length === 0) return this.#vote();
    this.#timer = this.#c.clock.setTimeout(() => this.#vote(), this.#c.period());
    const empty = new Set<string>();
    this.#rid = this.#c.rpc.open((from, msg) => {
      if (msg.type !== 'helloR') return;
      if (!msg.empty) {
        // Someone holds state: only the full wait is safe.
        this.#stopAsking();
        return;
      }
      empty.add(from);
      if (this.#c.members().every((m) => m === this.#c.self || empty.has(m))) this.#vote();
    });
    const ask = (): void => {
      for (const m of this.#c.members()) if (m !== this.#c.self && !empty.has(m)) this.#c.rpc.send(m, { type: 'hello', rid: this.#rid });
      this.#retry = this.#c.clock.setTimeout(ask, this.#c.retryMs);
    };
    ask();
  }

  #stopAsking(): void {
    this.#c.clock.clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#c.rpc.close(this.#rid);
  }

  #vote(): void {
    if (this.#done) return;
    this.#done = true;
    this.stop();
    this.#c.onVote();
  }

  stop(): void {
    this.#stopAsking();
    this.#c.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
