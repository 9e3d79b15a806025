/**
 * The node's periodic chores: gossip of the member list and settings (which also samples the rate
 * meters, once a second by default), and acceptor cleanup every `cleanupPeriod` plus jitter.
 */
import type { Clock, TimerHandle } from './clock.js';

export interface PeriodicParts {
  readonly clock: Clock;
  readonly random: () => number;
  readonly gossipInterval: number;
  readonly cleanupPeriod: () => number;
  readonly gossip: () => void;
  readonly cleanup: () => void;
}

export class Periodic {
  readonly #p: PeriodicParts;
  #gossip: TimerHandle | undefined;
  #cleanup: TimerHandle | undefined;
  #running = false;

  constructor(parts: PeriodicParts) {
    this.#p = parts;
  }

  start(): void {
    this.#running = true;
    this.#scheduleGossip();
    this.#scheduleCleanup();
  }

  #scheduleGossip(): void {
    if (!this.#running) return;
    this.#gossip = this.#p.clock.setTimeout(() => {
      this.#p.gossip();
      this.#scheduleGossip();
    }, this.#p.gossipInterval);
  }

  #scheduleCleanup(): void {
    if (!this.#running) return;
    const period = this.#p.cleanupPeriod();
    this.#cleanup = this.#p.clock.setTimeout(() => {
      this.#p.cleanup();
      this.#scheduleCleanup();
    }, period + this.#p.random() * Math.min(1000, period / 5));
  }

  stop(): void {
    this.#running = false;
    this.#p.clock.clearTimeout(this.#gossip);
    this.#p.clock.clearTimeout(this.#cleanup);
    this.#gossip = undefined;
    this.#cleanup = undefined;
  }
}
