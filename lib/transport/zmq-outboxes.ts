/**
 * The DEALERs of a ZeroMQ mesh node, one per peer endpoint (and key): opened with the node's socket
 * options, shared by peer ids that name the same endpoint, closed when the last one lets go.
 * Socket plumbing for `zmq.ts`; nothing else imports it.
 */
import type * as zmq from 'zeromq';
import type { Clock } from '../clock.js';
import { StoppedError } from '../errors.js';
import type { ResolvedZmqOptions, ZmqPeerAddress } from './zmq-options.js';
import { Outbox, type OutboxHooks } from './zmq-outbox.js';

/**
 * Outboxes by endpoint and key. Peers known under two ids at one endpoint (a seed known by its address
 * while joining, then by its id) share one DEALER: two DEALERs with one routing id to one ROUTER take
 * the identity from each other (handover), and closing the displaced one aborts libzmq.
 */
export class OutboxPool {
  readonly #clock: Clock;
  readonly #o: ResolvedZmqOptions;
  readonly #hooks: OutboxHooks;
  readonly #open = new Map<string, { outbox: Outbox; users: number }>();

  constructor(clock: Clock, options: ResolvedZmqOptions, hooks: OutboxHooks) {
    this.#clock = clock;
    this.#o = options;
    this.#hooks = hooks;
  }

  /**
   * The outbox to `address`, shared with any other peer id at the same endpoint and key.
   * @throws StoppedError without a context (the transport is not running).
   */
  acquire(context: zmq.Context | undefined, address: ZmqPeerAddress): Outbox {
    const key = keyOf(address);
    const shared = this.#open.get(key);
    if (shared !== undefined) {
      shared.users++;
      return shared.outbox;
    }
    if (context === undefined) throw new StoppedError();
    const outbox = this.#create(context, address);
    this.#open.set(key, { outbox, users: 1 });
    return outbox;
  }

  /** One user of `address`'s outbox lets go; the last one closes it (what was queued is dropped). */
  release(address: ZmqPeerAddress): void {
    const key = keyOf(address);
    const shared = this.#open.get(key);
    if (shared === undefined || --shared.users > 0) return;
    shared.outbox.close();
    this.#open.delete(key);
  }

  /** Closes every outbox. */
  closeAll(): void {
    for (const { outbox } of this.#open.values()) outbox.close();
    this.#open.clear();
  }

  #create(context: zmq.Context, address: ZmqPeerAddress): Outbox {
    const o = this.#o;
    const curve = o.curve;
    return new Outbox({
      clock: this.#clock,
      context,
      ownId: o.id,
      endpoint: address.endpoint,
      queueFrames: o.limits.queueFrames,
      connectGrace: o.timeout,
      sendHighWaterMark: o.limits.sendHighWaterMark,
      heartbeatInterval: o.interval,
      heartbeatTimeout: o.timeout,
      heartbeatTtl: o.heartbeatTtl,
      reconnectMaxInterval: o.interval,
      curve: curve === undefined || address.publicKey === undefined ? undefined
        : { publicKey: curve.publicKey, secretKey: curve.secretKey, serverKey: address.publicKey },
    }, this.#hooks);
  }
}

function keyOf(address: ZmqPeerAddress): string {
  return `${address.endpoint}\u0000${address.publicKey ?? ''}`;
}
