/**
 * The guard runner: holds one guard's state, feeds events to the pure machine, and performs the effects
 * it returns against the request layer, the clock and its owner callbacks. One request id per send, so a
 * reply to an earlier phase is dropped before it reaches the machine.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { RevokeReason } from '../errors.js';
import type { Ballot, Message, Value } from '../protocol/messages.js';
import type { Rpc } from '../rpc.js';
import {
  transition, type GuardContext, type GuardEffect, type GuardEvent, type GuardFailure, type GuardState,
} from './machine.js';

export interface GuardComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly random: () => number;
  readonly reachable: (node: string) => boolean;
}

/** What the registry learns from a guard. */
export interface GuardCallbacks {
  granted(guard: Guard, b: Ballot, value: Value, seq: number, sentAt: number): void;
  failed(guard: Guard, failure: GuardFailure): void;
  revoke(guard: Guard, reason: RevokeReason): void;
  release(guard: Guard): void;
  handoffDone(guard: Guard, ok: boolean, failure: GuardFailure | undefined): void;
  stopped(guard: Guard): void;
}

export class Guard {
  readonly ctx: GuardContext;
  readonly #c: GuardComponents;
  readonly #cb: GuardCallbacks;
  #state: GuardState;
  #rids: number[] = [];
  #timer: TimerHandle | undefined;
  #deadline: TimerHandle | undefined;
  #queue: GuardEvent[] = [];
  #running = false;
  /** Ballot and seq of the held value (set once granted). */
  held: { b: Ballot; value: Value; seq: number } | undefined;

  constructor(components: GuardComponents, ctx: GuardContext, initial: GuardState, callbacks: GuardCallbacks) {
    this.#c = components;
    this.ctx = ctx;
    this.#state = initial;
    this.#cb = callbacks;
  }

  get state(): GuardState {
    return this.#state;
  }

  get phase(): GuardState['phase'] {
    return this.#state.phase;
  }

  /** Starts acquiring; `timeoutMs` bounds the acquisition. */
  start(timeoutMs: number): void {
    this.#deadline = this.#c.clock.setTimeout(() => {
      this.#deadline = undefined;
      this.handle({ type: 'deadline', now: this.#c.clock.now() });
    }, timeoutMs);
    this.handle({ type: 'start', now: this.#c.clock.now() });
  }

  /** Arms a timer for a guard created in `waiting` (handoff receiver). */
  wait(timeoutMs: number): void {
    this.#setTimer(timeoutMs, false);
  }

  /** Feeds one event; events raised while effects run are queued and handled in order. */
  handle(ev: GuardEvent): void {
    this.#queue.push(ev);
    if (this.#running) return;
    this.#running = true;
    try {
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        const [state, effects] = transition(this.ctx, this.#state, next);
        this.#state = state;
        for (const e of effects) this.#perform(e);
      }
    } finally {
      this.#running = false;
    }
  }

  #perform(e: GuardEffect): void {
    switch (e.type) {
      case 'send': {
        const rid = this.#c.rpc.open((from, msg) => this.#onReply(from, msg));
        this.#rids.push(rid);
        if (this.#rids.length > 2) this.#c.rpc.close(this.#rids.shift() as number);
        const msg = { ...e.msg, rid } as Message;
        for (const peer of e.to) this.#c.rpc.send(peer, msg);
        // A probe to a node we cannot reach would only wait out the phase timer.
        if (e.msg.type === 'probe' && e.to.every((p) => !this.#c.reachable(p))) {
          queueMicrotask(() => this.handle({ type: 'timeout', now: this.#c.clock.now() }));
        }
        return;
      }
      case 'abandon':
        for (const peer of this.ctx.members) this.#c.rpc.send(peer, { type: 'abandon', name: this.ctx.name, b: e.b });
        return;
      case 'timer':
        this.#setTimer(e.ms, e.jitter);
        return;
      case 'granted':
        this.#clearDeadline();
        this.held = { b: e.b, value: e.value, seq: e.seq };
        this.#cb.granted(this, e.b, e.value, e.seq, e.sentAt);
        return;
      case 'failed':
        this.#clearDeadline();
        this.#cb.failed(this, e.failure);
        return;
      case 'revoke':
        this.#cb.revoke(this, e.reason);
        return;
      case 'release':
        this.#cb.release(this);
        return;
      case 'handoff-done':
        this.#cb.handoffDone(this, e.ok, e.failure);
        return;
      case 'stopped':
        this.#dispose();
        this.#cb.stopped(this);
        return;
    }
  }

  #onReply(from: string, msg: Message): void {
    this.handle({ type: 'reply', from, msg, now: this.#c.clock.now() });
  }

  #setTimer(ms: number, jitter: boolean): void {
    this.#c.clock.clearTimeout(this.#timer);
    const delay = jitter ? ms * (0.5 + this.#c.random()) : ms;
    this.#timer = this.#c.clock.setTimeout(() => {
      this.#timer = undefined;
      this.handle({ type: 'timeout', now: this.#c.clock.now() });
    }, delay);
  }

  #clearDeadline(): void {
    this.#c.clock.clearTimeout(this.#deadline);
    this.#deadline = undefined;
  }

  #dispose(): void {
    this.#clearDeadline();
    this.#c.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const rid of this.#rids) this.#c.rpc.close(rid);
    this.#rids = [];
  }
}
