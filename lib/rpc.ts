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

/**
 * A request id is `generation × SLOTS + slot`: the slot holds the handler, the generation (bumped at
 * each reuse of the slot) keeps an id unique, so a late reply to a closed request finds its slot holding
 * another id and is dropped. Generations wrap below 2^29, keeping ids safe integers.
 */
const SLOTS = 2 ** 24;
const GENERATIONS = 2 ** 29;

const REPLY_TYPES: ReadonlySet<string> = new Set([
  'readR', 'prepR', 'comR', 'renewR', 'syncR', 'probeR', 'helloR', 'hoffR', 'hgoR', 'fwdR', 'msgR', 'pong',
  'mgetR', 'msetR', 'joinR', 'statusR', 'ncallR',
]);

/** True for reply messages (they carry the request id of what they answer). */
export function isReply(m: Message): boolean {
  return REPLY_TYPES.has(m.type);
}

/**
 * One request to one peer: sends `build(rid)` and resolves with the first reply `accept` takes, or
 * undefined after `timeoutMs` or once `signal` aborts. The request id and its timer are released
 * either way, so a late reply is dropped and nothing is left on the clock.
 */
export function request(
  rpc: Rpc, clock: Clock, peer: string, build: (rid: number) => Message, timeoutMs: number,
  accept: (from: string, reply: Message) => boolean = () => true, signal?: AbortSignal,
): Promise<Message | undefined> {
  return new Promise((resolve) => {
    const end = (reply: Message | undefined): void => {
      rpc.close(rid);
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      resolve(reply);
    };
    const abort = (): void => end(undefined);
    const rid = rpc.open((from, reply) => {
      if (accept(from, reply)) end(reply);
    });
    const timer = clock.setTimeout(abort, timeoutMs);
    if (signal?.aborted === true) return abort();
    signal?.addEventListener('abort', abort, { once: true });
    rpc.send(peer, build(rid));
  });
}

export class Rpc {
  readonly #transport: Transport;
  readonly #self: string;
  // Handlers in slots, not a Map: every protocol phase opens and closes an id, and a long-lived Map's
  // discarded tables kept each closed handler (and the guard it points to) alive past the next
  // young-generation collection, so about 1 KB per registration reached the old generation as garbage.
  #handlers: (ReplyHandler | undefined)[] = [];
  /** Per slot: the id open in it (0 when free), and its generation. */
  #ids: number[] = [];
  #generations: number[] = [];
  /** Free slots, oldest first: reuse cycles through them, so generations grow slowly. */
  #free: number[] = [];
  #freeHead = 0;
  #open = 0;
  #onRequest: RequestHandler = () => {};
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
    let slot: number;
    if (this.#freeHead < this.#free.length) {
      slot = this.#free[this.#freeHead++] as number;
      if (this.#freeHead > 1024 && this.#freeHead * 2 > this.#free.length) {
        this.#free = this.#free.slice(this.#freeHead);
        this.#freeHead = 0;
      }
    } else {
      slot = this.#handlers.length;
      if (slot >= SLOTS) throw new RangeError('too many open requests');
    }
    const generation = ((this.#generations[slot] ?? 0) % (GENERATIONS - 1)) + 1;
    const rid = generation * SLOTS + slot;
    this.#generations[slot] = generation;
    this.#ids[slot] = rid;
    this.#handlers[slot] = handler;
    this.#open++;
    return rid;
  }

  /** Closes `rid`; ids not open (closed already, never opened, 0 or not a number) are ignored. */
  close(rid: number): void {
    // Valid ids are at least SLOTS (generation 1 and up); a free slot's id reads 0, so an id below that
    // must never match it (closing it would free the slot twice and give it to two requests).
    if (!(rid >= SLOTS)) return;
    const slot = rid % SLOTS;
    if (this.#ids[slot] !== rid) return;
    this.#ids[slot] = 0;
    this.#handlers[slot] = undefined;
    this.#free.push(slot);
    this.#open--;
  }

  /** The handler of `rid`, if it is open. */
  #handler(rid: number): ReplyHandler | undefined {
    if (!(rid >= SLOTS)) return undefined;
    const slot = rid % SLOTS;
    return this.#ids[slot] === rid ? this.#handlers[slot] : undefined;
  }

  /** Number of open request ids (for leak checks). */
  get open_(): number {
    return this.#open;
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
      this.#handler(rid)?.(from, msg);
      return;
    }
    this.#onRequest(from, msg as RequestMsg);
  }

  stop(): void {
    this.#stopped = true;
    this.#handlers = [];
    this.#ids = [];
    this.#free = [];
    this.#freeHead = 0;
    this.#open = 0;
  }
}
