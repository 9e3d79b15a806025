/**
 * When may a starting node's acceptor vote? A node that starts without state could contradict a live
 * registration: one it had accepted in a previous life (two such restarts in a 3-node cluster could
 * grant a held name twice), or, for a node joining, one the others hold but it has not been told of yet
 * (two quick joins could form a majority that never heard of it). Every live registration is live at
 * least on its owner's node's own acceptor (its guard renews there first; an owner whose node restarted
 * is dead). So the node asks every other member for its live values and installs them; once every
 * member has answered, it holds every live registration and votes. A member that is itself catching up
 * counts only if it holds nothing (its view may be incomplete). If some member does not answer, holds
 * too many values to send, or is catching up with values, the node waits one full expiry period (3
 * heartbeats and one more) instead, during which live guards renew and repair it.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { SyncEntry } from '../protocol/messages.js';
import type { Rpc } from '../rpc.js';

export interface RecoveryComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly self: string;
  readonly members: () => readonly string[];
  /** How long to wait when some member may hold state. */
  readonly period: () => number;
  readonly retryMs: number;
  /** Installs the live values a member sent. */
  /** Installs live values a member holds; `unconfirmed` indexes those it does not know decided. */
  readonly adopt: (entries: readonly SyncEntry[], unconfirmed: ReadonlySet<number>) => void;
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
    const answered = new Set<string>();
    this.#rid = this.#c.rpc.open((from, msg) => {
      if (msg.type !== 'helloR' || answered.has(from)) return;
      // Too much to copy, or a member still catching up itself that holds something: its view may be
      // incomplete, so only the full wait is safe. (Members all starting empty: a cold start, vote now.)
      if (!msg.complete || (!msg.voting && (msg.entries?.length ?? 0) > 0)) {
        this.#stopAsking();
        return;
      }
      this.#c.adopt(msg.entries ?? [], new Set(msg.unconfirmed ?? []));
      answered.add(from);
      if (this.#c.members().every((m) => m === this.#c.self || answered.has(m))) this.#vote();
    });
    const ask = (): void => {
      for (const m of this.#c.members()) if (m !== this.#c.self && !answered.has(m)) this.#c.rpc.send(m, { type: 'hello', rid: this.#rid });
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
