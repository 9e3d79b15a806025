/**
 * One peer's outbox: a DEALER connected to the peer's inbox ROUTER, a bounded queue of encoded frames,
 * and the single send pump that drains it. Socket plumbing for `zmq.ts`; nothing else imports it.
 */
import * as zmq from 'zeromq';
import type { Clock, TimerHandle } from '../clock.js';

/** How to build an outbox. */
export interface OutboxOptions {
  readonly clock: Clock;
  readonly context: zmq.Context;
  /** This node's id: the DEALER's routing id, which the peer's ROUTER checks against each frame's sender. */
  readonly ownId: string;
  readonly endpoint: string;
  /** Most frames waiting in this queue; more are dropped and counted. */
  readonly queueFrames: number;
  /**
   * How long, in ms, frames may wait for this DEALER's first connection; also the most any frame waits
   * in the queue. After the first connection, a send that finds no connection drops the frame at once.
   */
  readonly connectGrace: number;
  readonly sendHighWaterMark: number;
  /** ZMTP heartbeat interval and timeout in ms (they cut dead TCP connections so the DEALER reconnects). */
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly heartbeatTtl: number;
  /** Longest pause between reconnect attempts to a dead peer, in ms. */
  readonly reconnectMaxInterval: number;
  /** Own key pair and the peer's public key, when the mesh runs CURVE. */
  readonly curve?: { readonly publicKey: string; readonly secretKey: string; readonly serverKey: string } | undefined;
}

/** What an outbox reports to its transport's counters. */
export interface OutboxHooks {
  /** A frame of `bytes` bytes carrying `messages` messages was handed to libzmq. */
  sent(bytes: number, messages: number): void;
  /** Messages were dropped: queue full, no connection, too old, or the outbox closed. */
  dropped(messages: number): void;
  /** A frame the peer sent back on this connection (a reply to a request of a non-member asker). */
  received(parts: readonly Buffer[]): void;
}

interface Queued {
  readonly bytes: Buffer;
  readonly messages: number;
  /** Clock time it was queued. */
  readonly at: number;
}

/** First and longest pause between send attempts while waiting for the first connection, in ms. */
const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 100;

/**
 * A DEALER to one peer with a bounded queue and exactly one send in flight at a time.
 *
 * With `immediate`, libzmq refuses (EAGAIN) every send until a connection is complete. A peer that was
 * just added has none yet, so the first frames to it (a join reply, say) would always be lost, where the
 * memory mesh delivers them. So until the first send succeeds, and for at most `connectGrace` ms, a
 * refused frame stays queued and is retried with backoff; after that, refused means dropped.
 */
export class Outbox {
  readonly #socket: zmq.Dealer;
  readonly #hooks: OutboxHooks;
  readonly #clock: Clock;
  readonly #limit: number;
  readonly #grace: number;
  readonly #waitUntil: number;
  #connected = false;
  #queue: Queued[] = [];
  #pumping = false;
  #closed = false;
  #retry: TimerHandle | undefined;
  #retryMs = RETRY_FIRST_MS;

  constructor(options: OutboxOptions, hooks: OutboxHooks) {
    this.#hooks = hooks;
    this.#clock = options.clock;
    this.#limit = options.queueFrames;
    this.#grace = options.connectGrace;
    this.#waitUntil = options.clock.now() + options.connectGrace;
    this.#socket = new zmq.Dealer({
      context: options.context,
      routingId: options.ownId,
      // Queue nothing in libzmq for a peer we are not connected to: a send to it fails at once (EAGAIN),
      // so frames never pile up, unseen and unbounded in age, for a peer that may never come back.
      immediate: true,
      sendTimeout: 0,
      sendHighWaterMark: options.sendHighWaterMark,
      // Only replies to a non-member asker (pes status) come back on this socket; keep the queue small.
      receiveHighWaterMark: 16,
      // Without linger 0, a frame queued to a dead peer keeps the process from exiting after close.
      linger: 0,
      heartbeatInterval: options.heartbeatInterval,
      heartbeatTimeout: options.heartbeatTimeout,
      heartbeatTimeToLive: options.heartbeatTtl,
      reconnectMaxInterval: options.reconnectMaxInterval,
      ...(options.curve === undefined ? {} : {
        curvePublicKey: options.curve.publicKey,
        curveSecretKey: options.curve.secretKey,
        curveServerKey: options.curve.serverKey,
      }),
    });
    this.#socket.connect(options.endpoint);
    void this.#receiveLoop();
  }

  async #receiveLoop(): Promise<void> {
    try {
      for await (const parts of this.#socket) this.#hooks.received(parts);
    } catch {
      // closed under a pending receive
    }
  }

  /** Queues an encoded frame carrying `messages` messages; drops and counts it when the queue is full. */
  push(bytes: Buffer, messages: number): void {
    if (this.#closed || this.#queue.length >= this.#limit) {
      this.#hooks.dropped(messages);
      return;
    }
    this.#queue.push({ bytes, messages, at: this.#clock.now() });
    if (!this.#pumping && this.#retry === undefined) void this.#pump();
  }

  /**
   * Drains the queue one send at a time: a second concurrent send on a ZeroMQ socket throws EBUSY. With
   * sendTimeout 0 each send settles at once, either queued in libzmq or refused (EAGAIN: no connection,
   * or the high-water mark is reached).
   */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (!this.#closed) {
        const item = this.#queue[0];
        if (item === undefined) break;
        const now = this.#clock.now();
        if (now - item.at > this.#grace) {
          this.#queue.shift();
          this.#hooks.dropped(item.messages); // too old to matter to the protocol any more
          continue;
        }
        try {
          await this.#socket.send(item.bytes);
          this.#connected = true;
          this.#queue.shift();
          this.#hooks.sent(item.bytes.byteLength, item.messages);
        } catch (err) {
          if (isEagain(err) && !this.#connected && now < this.#waitUntil && !this.#closed) {
            this.#scheduleRetry(); // still waiting for the first connection: keep the frame
            return;
          }
          this.#queue.shift();
          this.#hooks.dropped(item.messages);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  #scheduleRetry(): void {
    const delay = this.#retryMs;
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
    this.#retry = this.#clock.setTimeout(() => {
      this.#retry = undefined;
      void this.#pump();
    }, delay);
  }

  /** Closes the DEALER (linger 0) and drops, counting, whatever is still queued; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearTimeout(this.#retry);
    this.#retry = undefined;
    const left = this.#queue;
    this.#queue = [];
    for (const item of left) this.#hooks.dropped(item.messages);
    this.#socket.close();
  }
}

function isEagain(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EAGAIN';
}
