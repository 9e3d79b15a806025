/**
 * `send` and `call`: deliver a message to whoever holds a name, on this node or another. `send` is fire
 * and forget (it returns the owner it sent to); `call` waits for the owner handler's result.
 */
import type { Clock } from './clock.js';
import { NotRegisteredError, RemoteCallError, TimeoutError } from './errors.js';
import type { OwnerTable } from './owner.js';
import type { DeliverMsg, OwnerRef } from './protocol/messages.js';
import type { CallOptions, Registry } from './registry.js';
import { request, type Rpc } from './rpc.js';

export interface DeliveryComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly owners: OwnerTable;
  readonly registry: Registry;
  readonly timeout: number;
}

export class Delivery {
  readonly #c: DeliveryComponents;

  constructor(components: DeliveryComponents) {
    this.#c = components;
  }

  async send(name: string, body: unknown, opts: CallOptions = {}): Promise<OwnerRef> {
    const found = await this.#c.registry.lookup(name, opts);
    if (found === undefined) throw new NotRegisteredError(name);
    const local = this.#c.owners.get(found.owner);
    if (local !== undefined) {
      local.deliver(body, name, false);
    } else {
      this.#c.rpc.send(found.owner.node, { type: 'msg', rid: 0, name, to: found.owner, body, call: false });
    }
    return found.owner;
  }

  async call(name: string, body: unknown, opts: CallOptions = {}): Promise<unknown> {
    const found = await this.#c.registry.lookup(name, opts);
    if (found === undefined) throw new NotRegisteredError(name);
    const local = this.#c.owners.get(found.owner);
    if (local !== undefined) {
      try {
        return await local.deliver(body, name, true);
      } catch (e) {
        throw new RemoteCallError(name, { cause: e });
      }
    }
    const ms = opts.timeout ?? this.#c.timeout;
    const reply = await request(this.#c.rpc, this.#c.clock, found.owner.node,
      (rid) => ({ type: 'msg', rid, name, to: found.owner, body, call: true }), ms,
      (from, r) => r.type === 'msgR' && from === found.owner.node);
    if (reply?.type !== 'msgR') throw new TimeoutError('call', ms);
    if (reply.ok) return reply.body;
    throw reply.err === 'not-alive' ? new NotRegisteredError(name) : new RemoteCallError(name);
  }

  /** A message from a peer for a local owner. */
  handle(from: string, m: DeliverMsg): void {
    const owner = this.#c.owners.get(m.to);
    if (owner === undefined) {
      if (m.call) this.#c.rpc.send(from, { type: 'msgR', rid: m.rid, ok: false, err: 'not-alive' });
      return;
    }
    if (!m.call) {
      owner.deliver(m.body, m.name, false);
      return;
    }
    Promise.resolve()
      .then(() => owner.deliver(m.body, m.name, true))
      .then(
        (body) => this.#c.rpc.send(from, body === undefined ? { type: 'msgR', rid: m.rid, ok: true } : { type: 'msgR', rid: m.rid, ok: true, body }),
        () => this.#c.rpc.send(from, { type: 'msgR', rid: m.rid, ok: false, err: 'failed' }),
      );
  }
}
