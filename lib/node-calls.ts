/**
 * Node calls: a component on one node calling the same component on another (singletons use it to
 * hand a singleton over). Handlers register by topic; a call to this node skips the network.
 */
import type { Clock } from './clock.js';
import { NoConsensusError, NotFoundError, TimeoutError } from './errors.js';
import type { Rpc } from './rpc.js';

export type NodeCallHandler = (body: unknown, from: string) => unknown;

export class NodeCalls {
  readonly handlers = new Map<string, NodeCallHandler>();
  readonly #c: { readonly clock: Clock; readonly rpc: Rpc; readonly self: string; readonly timeout: number };

  constructor(components: { clock: Clock; rpc: Rpc; self: string; timeout: number }) {
    this.#c = components;
  }

  /** Calls `topic` on `node`; resolves with its handler's result. */
  call(node: string, topic: string, body: unknown): Promise<unknown> {
    const c = this.#c;
    if (node === c.self) {
      const h = this.handlers.get(topic);
      return h === undefined ? Promise.reject(new NotFoundError(topic)) : Promise.resolve().then(() => h(body, c.self));
    }
    return new Promise((resolve, reject) => {
      const rid = c.rpc.open((from, reply) => {
        if (from !== node || reply.type !== 'ncallR') return;
        c.rpc.close(rid);
        c.clock.clearTimeout(timer);
        if (reply.ok) resolve(reply.body);
        else reject(reply.err === 'not-found' ? new NotFoundError(topic) : new NoConsensusError(topic, 0, 1));
      });
      const timer = c.clock.setTimeout(() => {
        c.rpc.close(rid);
        reject(new TimeoutError('call', c.timeout));
      }, c.timeout);
      c.rpc.send(node, { type: 'ncall', rid, topic, body });
    });
  }
}
