/**
 * Gossip: the member list and the cluster settings travel together in one message, sent to every other
 * member on each gossip round and whenever a setting changes here; the highest version of each wins on
 * the receiving side (see membership.ts and config.ts).
 */
import type { Rpc } from '../rpc.js';
import type { GossipMsg } from '../protocol/messages.js';
import type { ClusterConfig } from './config.js';
import type { Membership } from './membership.js';

/** What gossip reads and sends with. */
export interface GossipComponents {
  readonly self: string;
  readonly rpc: Rpc;
  readonly membership: Membership;
  readonly config: ClusterConfig;
}

/** This node's side of the gossip: the message it sends, and sending it to every other member. */
export class Gossip {
  readonly #c: GossipComponents;

  constructor(components: GossipComponents) {
    this.#c = components;
  }

  /** This node's view: its member list and settings. */
  message(): GossipMsg {
    return { type: 'gossip', members: this.#c.membership.list(), config: this.#c.config.entries() };
  }

  /** Sends this node's view to every other member. */
  spread(): void {
    const msg = this.message();
    for (const id of this.#c.membership.ids()) if (id !== this.#c.self) this.#c.rpc.send(id, msg);
  }
}
