/**
 * Replies to callers that are no peer (an operator's `pes status`, a node asking to join): this node
 * has no DEALER to them, so their answers go back over their own connection, through the inbox ROUTER,
 * one send at a time and within a bounded queue. Socket plumbing for `zmq.ts`; nothing else imports it.
 */
import type * as zmq from 'zeromq';
import type { Clock } from '../clock.js';

/** What the caller replies report to the transport's counters. */
export interface CallerHooks {
  sent(bytes: number, messages: number): void;
  dropped(messages: number): void;
}

/** Callers remembered at most; more clear the list (a caller that asks again is remembered again). */
const MAX_CALLERS = 1024;

export class CallerReplies {
  readonly #clock: Clock;
  /** How long after its last frame a caller is still answered, in ms. */
  readonly #timeout: number;
  readonly #queueFrames: number;
  readonly #hooks: CallerHooks;
  /** Caller id -> clock time last heard. */
  readonly #heard = new Map<string, number>();
  readonly #queue: (readonly [Buffer, Buffer, number])[] = [];
  #pumping = false;

  constructor(clock: Clock, limits: { readonly timeout: number; readonly queueFrames: number }, hooks: CallerHooks) {
    this.#clock = clock;
    this.#timeout = limits.timeout;
    this.#queueFrames = limits.queueFrames;
    this.#hooks = hooks;
  }

  /** A frame came from `caller`, which is no peer. */
  heard(caller: string): void {
    if (this.#heard.size >= MAX_CALLERS) this.#heard.clear();
    this.#heard.set(caller, this.#clock.now());
  }

  /** Whether `caller` was heard recently enough to be answered. */
  answers(caller: string): boolean {
    const at = this.#heard.get(caller);
    return at !== undefined && this.#clock.now() - at <= this.#timeout;
  }

  /** Queues one encoded frame of `count` messages for `caller`, sent through `inbox()` when it is open. */
  push(inbox: () => zmq.Router | undefined, caller: string, bytes: Buffer, count: number): void {
    if (this.#queue.length >= this.#queueFrames) {
      this.#hooks.dropped(count);
      return;
    }
    this.#queue.push([Buffer.from(caller, 'utf8'), bytes, count]);
    if (!this.#pumping) void this.#pump(inbox);
  }

  async #pump(inbox: () => zmq.Router | undefined): Promise<void> {
    this.#pumping = true;
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        const socket = inbox();
        if (socket === undefined) return;
        try {
          await socket.send([item[0], item[1]]);
          this.#hooks.sent(item[1].byteLength, item[2]);
        } catch {
          this.#hooks.dropped(item[2]);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }
}
