/**
 * The guard runner: holds one guard's state, feeds events to the pure machine, and performs the effects
 * it returns against the request layer, the clock and its owner callbacks. One request id per send, so a
 * reply to an earlier phase is dropped before it reaches the machine.
 *
 * A guard that holds its name has nothing in flight between events (renewals are the renewer's): it
 * tells its owner so (`idle`), and the registry may then {@link Guard.park park} it and keep a compact
 * record instead, building a new guard in `monitoring` when the next event for the name comes.
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
  /**
   * The guard's context with the current member list, if it changed since `ctx` was made; asked before
   * each event while the guard is between attempts (`backoff`), holds its name (`monitoring`) or waits
   * for a handoff (`waiting`): in none of them is a round in flight.
   */
  readonly latest?: (ctx: GuardContext) => GuardContext | undefined;
}

/** What the registry learns from a guard. */
export interface GuardCallbacks {
  granted(guard: Guard, b: Ballot, value: Value, seq: number, sentAt: number): void;
  failed(guard: Guard, failure: GuardFailure): void;
  revoke(guard: Guard, reason: RevokeReason): void;
  release(guard: Guard): void;
  handoffDone(guard: Guard, ok: boolean, failure: GuardFailure | undefined): void;
  stopped(guard: Guard): void;
  /** The guard holds its name (`monitoring`) and has handled every event: it may be parked. */
  idle(guard: Guard): void;
}

export class Guard {
  #ctx: GuardContext;
  /** Whatever its owner attached to it (the registry's record), for callbacks to find. */
  readonly tag: unknown;
  readonly #c: GuardComponents;
  readonly #cb: GuardCallbacks;
  #state: GuardState;
  /** Request ids of the current phase's send and the one before (late replies to it are still read). */
  #rid = 0;
  #previousRid = 0;
  #timer: TimerHandle | undefined;
  #deadline: TimerHandle | undefined;
  /** Events raised while effects run (created on first use: most guards never need it). */
  #queue: GuardEvent[] | undefined;
  #running = false;

  constructor(components: GuardComponents, ctx: GuardContext, initial: GuardState, callbacks: GuardCallbacks, tag?: unknown) {
    this.#c = components;
    this.#ctx = ctx;
    this.tag = tag;
    this.#state = initial;
    this.#cb = callbacks;
  }

  /** The guard's facts: fixed, but for the member list, which follows the cluster's between attempts. */
  get ctx(): GuardContext {
    return this.#ctx;
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
    if (this.#running) {
      (this.#queue ??= []).push(ev);
      return;
    }
    this.#running = true;
    try {
      for (let next: GuardEvent | undefined = ev; next !== undefined; next = this.#queue?.shift()) {
        const phase = this.#state.phase;
        // Between rounds (no round in flight whose replies count against the list it asked).
        if ((phase === 'backoff' || phase === 'monitoring' || phase === 'waiting') && this.#c.latest !== undefined) {
          const fresh = this.#c.latest(this.#ctx);
          if (fresh !== undefined) this.#ctx = fresh;
        }
        const [state, effects] = transition(this.#ctx, this.#state, next);
        this.#state = state;
        for (const e of effects) this.#perform(e);
      }
    } finally {
      this.#running = false;
    }
    if (this.#state.phase === 'monitoring') this.#cb.idle(this);
  }

  /**
   * Stops listening: closes the request ids and timers a held name no longer needs (a late reply to the
   * commit would change nothing in `monitoring`). Only for a guard in `monitoring`, outside `handle`.
   */
  park(): void {
    this.#dispose();
  }

  #perform(e: GuardEffect): void {
    switch (e.type) {
      case 'send': {
        const rid = this.#c.rpc.open((from, msg) => this.#onReply(from, msg));
        if (this.#previousRid !== 0) this.#c.rpc.close(this.#previousRid);
        this.#previousRid = this.#rid;
        this.#rid = rid;
        // `rid` first: a spread followed by a key its source lacks is several times as costly (see acceptor.ts).
        const msg = { rid, ...e.msg } as Message;
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
    if (this.#rid !== 0) this.#c.rpc.close(this.#rid);
    if (this.#previousRid !== 0) this.#c.rpc.close(this.#previousRid);
    this.#rid = 0;
    this.#previousRid = 0;
  }
}
