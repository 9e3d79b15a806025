/**
 * Node calls: a component on one node calling the same component on another (singletons use it to
 * hand a singleton over). Handlers register by topic; a call to this node skips the network.
 */
import type { Clock } from './clock.js';
import { NoConsensusError, NotFoundError, TimeoutError } from './errors.js';
import { request, type Rpc } from './rpc.js';

export type NodeCallHandler = (body: unknown, from: string) => unknown;

export class NodeCalls {
  readonly handlers = new Map<string, NodeCallHandler>();
  readonly #c: { readonly clock: Clock; readonly rpc: Rpc; readonly self: string; readonly timeout: number };

  constructor(components: { clock: Clock; rpc: Rpc; self: string; timeout: number }) {
    this.#c = components;
  }

  /** Calls `topic` on `node`; resolves with its handler's result. Rejects with TimeoutError after `timeoutMs`. */
  call(node: string, topic: string, body: unknown, timeoutMs = this.#c.timeout): Promise<unknown> {
    const c = this.#c;
    if (node === c.self) {
      const h = this.handlers.get(topic);
      return h === undefined ? Promise.reject(new NotFoundError(topic)) : Promise.resolve().then(() => h(body, c.self));
    }
    return request(c.rpc, c.clock, node, (rid) => ({ type: 'ncall', rid, topic, body }), timeoutMs,
      (from, reply) => from === node && reply.type === 'ncallR').then((reply) => {
      if (reply?.type !== 'ncallR') throw new TimeoutError('call', timeoutMs);
      if (reply.ok) return reply.body;
      throw reply.err === 'not-found' ? new NotFoundError(topic) : new NoConsensusError(topic, 0, 1);
    });
  }
}
