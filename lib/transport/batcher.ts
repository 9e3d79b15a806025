/**
 * Which messages travel together. Messages queued for one peer during an event-loop turn leave as one
 * batch at the end of the turn (setImmediate: after every I/O callback of the turn and the promise
 * chains they started). A per-microtask flush sent one frame per chain as soon as callers' work spread
 * over several microtask checkpoints (a read answered locally, say), and a frame costs far more than a
 * message. Lazy messages (notices nobody waits for) wait up to `lazyMs` for company and always go
 * first in the next batch to their peer, so they never overtake nor are overtaken by later messages.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { Message } from '../protocol/messages.js';
import { guarded } from './guarded.js';

export class Batcher {
  readonly #clock: Clock;
  readonly #lazyMs: number;
  readonly #out: (peer: string, messages: readonly Message[]) => void;
  #pending = new Map<string, Message[]>();
  #lazy = new Map<string, Message[]>();
  #scheduled = false;
  #after: (() => void)[] = [];
  #lazyTimer: TimerHandle | undefined;
  #closed = false;

  /** `out` receives each peer's batch, in the order the messages were queued. */
  constructor(clock: Clock, lazyMs: number, out: (peer: string, messages: readonly Message[]) => void) {
    this.#clock = clock;
    this.#lazyMs = lazyMs;
    this.#out = out;
  }

  add(peer: string, message: Message, lazy: boolean): void {
    if (this.#closed) return;
    const queues = lazy ? this.#lazy : this.#pending;
    let queue = queues.get(peer);
    if (queue === undefined) queues.set(peer, (queue = []));
    queue.push(message);
    if (lazy) {
      this.#lazyTimer ??= this.#clock.setTimeout(() => this.#flushLazy(), this.#lazyMs);
    } else {
      this.#schedule();
    }
  }

  /**
   * Runs `fn` right after the next flush of this turn's batches (scheduling one when none is due).
   * An exception in `fn` surfaces as uncaught, without stopping the flush or the other callbacks.
   */
  after(fn: () => void): void {
    if (this.#closed) return;
    this.#after.push(fn);
    this.#schedule();
  }

  /** Drops everything queued and stops (idempotent). */
  close(): void {
    this.#closed = true;
    this.#clock.clearTimeout(this.#lazyTimer);
    this.#lazyTimer = undefined;
    this.#pending = new Map();
    this.#lazy = new Map();
    this.#after = [];
  }

  /** One flush at the end of this turn (setImmediate), however many ask for it. */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const out = this.#pending;
    this.#pending = new Map();
    const after = this.#after;
    if (after.length > 0) this.#after = [];
    if (this.#closed) return;
    for (const [peer, eager] of out) {
      const held = this.#lazy.get(peer);
      if (held !== undefined) this.#lazy.delete(peer);
      this.#out(peer, held === undefined ? eager : [...held, ...eager]);
    }
    for (const fn of after) guarded(fn);
  }

  #flushLazy(): void {
    this.#lazyTimer = undefined;
    if (this.#closed || this.#lazy.size === 0) return;
    for (const peer of this.#lazy.keys()) if (!this.#pending.has(peer)) this.#pending.set(peer, []);
    this.#flush();
  }
}
