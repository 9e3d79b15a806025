/**
 * Requests and replies over a transport. A requester opens a request id with a reply handler, sends
 * messages stamped with it to any peers, and closes it when done; replies for closed ids (stale, or
 * duplicated by the network) are dropped here. Messages to the local node skip the transport and are
 * delivered on the next microtask, so a single-node cluster needs no network at all.
 */
import type { Clock } from './clock.js';
import type { Message, RequestMsg } from './protocol/messages.js';
import type { Transport } from './transport/transport.js';

export type ReplyHandler = (from: string, reply: Message) => void;
export type RequestHandler = (from: string, request: RequestMsg) => void;

const REPLY_TYPES: ReadonlySet<string> = new Set([
  'readR', 'prepR', 'comR', 'repR', 'renewR', 'syncR', 'probeR', 'helloR', 'hoffR', 'hgoR', 'fwdR', 'msgR', 'pong',
  'mgetR', 'msetR', 'joinR', 'statusR', 'ncallR',
]);

/** True for reply messages (they carry the request id of what they answer). */
export function isReply(m: Message): boolean {
  return REPLY_TYPES.has(m.type);
}

/**
 * One request to one peer: sends `build(rid)` and resolves with the first reply `accept` takes, or
 * undefined after `timeoutMs`. The request id is closed either way, so a late reply is dropped.
 */
export function request(
  rpc: Rpc, clock: Clock, peer: string, build: (rid: number) => Message, timeoutMs: number,
  accept: (from: string, reply: Message) => boolean = () => true,
): Promise<Message | undefined> {
  return new Promise((resolve) => {
    const rid = rpc.open((from, reply) => {
      if (!accept(from, reply)) return;
      rpc.close(rid);
      clock.clearTimeout(timer);
      resolve(reply);
    });
    const timer = clock.setTimeout(() => {
      rpc.close(rid);
      resolve(undefined);
    }, timeoutMs);
    rpc.send(peer, build(rid));
  });
}

export class Rpc {
  readonly #transport: Transport;
  readonly #self: string;
  readonly #handlers = new Map<number, ReplyHandler>();
  #onRequest: RequestHandler = () => {};
  #nextRid = 1;
  #stopped = false;

  constructor(components: { transport: Transport }) {
    this.#transport = components.transport;
    this.#self = components.transport.id;
  }

  /** Where requests from peers (and from this node to itself) go. */
  onRequest(handler: RequestHandler): void {
    this.#onRequest = handler;
  }

  /** A new request id whose replies go to `handler` until {@link close}. */
  open(handler: ReplyHandler): number {
    const rid = this.#nextRid++;
    this.#handlers.set(rid, handler);
    return rid;
  }

  close(rid: number): void {
    this.#handlers.delete(rid);
  }

  /** Number of open request ids (for leak checks). */
  get open_(): number {
    return this.#handlers.size;
  }

  /**
   * Sends a message (request, reply or one-way) to a peer or to this node. `lazy`: a notice nobody waits
   * for, which the transport may hold a few milliseconds to batch it (see {@link Transport.send}).
   */
  send(peer: string, msg: Message, lazy = false): void {
    if (this.#stopped) return;
    if (peer === this.#self) {
      queueMicrotask(() => this.dispatch(this.#self, msg));
    } else {
      this.#transport.send(peer, msg, lazy);
    }
  }

  /** Routes one incoming message: replies to their handler, everything else to the request handler. */
  dispatch(from: string, msg: Message): void {
    if (this.#stopped) return;
    if (isReply(msg)) {
      const rid = (msg as { rid: number }).rid;
      this.#handlers.get(rid)?.(from, msg);
      return;
    }
    this.#onRequest(from, msg as RequestMsg);
  }

  stop(): void {
    this.#stopped = true;
    this.#handlers.clear();
  }
}
