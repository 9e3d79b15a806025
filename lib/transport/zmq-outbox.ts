/**
 * One peer's outbox: a DEALER connected to the peer's inbox ROUTER, a bounded queue of encoded frames,
 * and the single send pump that drains it. Socket plumbing for `zmq.ts`; nothing else imports it.
 */
import * as zmq from 'zeromq';

/** How to build an outbox. */
export interface OutboxOptions {
  readonly context: zmq.Context;
  /** This node's id: the DEALER's routing id, which the peer's ROUTER checks against each frame's sender. */
  readonly ownId: string;
  readonly endpoint: string;
  /** Most frames waiting in this queue; more are dropped and counted. */
  readonly queueFrames: number;
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
  sent(bytes: number, messages: number): void;
  dropped(messages: number): void;
}

interface Queued {
  readonly bytes: Buffer;
  readonly messages: number;
}

/** A DEALER to one peer with a bounded queue and exactly one send in flight at a time. */
export class Outbox {
  readonly #socket: zmq.Dealer;
  readonly #hooks: OutboxHooks;
  readonly #limit: number;
  #queue: Queued[] = [];
  #pumping = false;
  #closed = false;

  constructor(options: OutboxOptions, hooks: OutboxHooks) {
    this.#hooks = hooks;
    this.#limit = options.queueFrames;
    this.#socket = new zmq.Dealer({
      context: options.context,
      routingId: options.ownId,
      // Queue nothing for a peer we are not connected to: a send to it fails at once (EAGAIN), and the
      // frame is dropped and counted instead of piling up for a peer that may never come back.
      immediate: true,
      sendTimeout: 0,
      sendHighWaterMark: options.sendHighWaterMark,
      // Nothing is ever sent back on this socket; keep its inbound queue minimal.
      receiveHighWaterMark: 1,
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
  }

  /** Queues an encoded frame carrying `messages` messages; drops and counts it when the queue is full. */
  push(bytes: Buffer, messages: number): void {
    if (this.#closed || this.#queue.length >= this.#limit) {
      this.#hooks.dropped(messages);
      return;
    }
    this.#queue.push({ bytes, messages });
    if (!this.#pumping) void this.#pump();
  }

  /**
   * Drains the queue one send at a time: a second concurrent send on a ZeroMQ socket throws EBUSY. With
   * sendTimeout 0 each send settles at once, either queued in libzmq or rejected (EAGAIN: no connection
   * or the high-water mark is reached), so the queue only grows within one turn.
   */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (!this.#closed) {
        const item = this.#queue.shift();
        if (item === undefined) break;
        try {
          await this.#socket.send(item.bytes);
          this.#hooks.sent(item.bytes.byteLength, item.messages);
        } catch {
          this.#hooks.dropped(item.messages);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** Closes the DEALER (linger 0) and drops, counting, whatever is still queued; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const left = this.#queue;
    this.#queue = [];
    for (const item of left) this.#hooks.dropped(item.messages);
    this.#socket.close();
  }
}
