/**
 * Typed events a node emits (eventemitter3). Listening is optional: the node never emits `'error'`.
 */
import type { RevokeReason } from './errors.js';
import type { OwnerRef } from './protocol/messages.js';

/** A registration made or ended on this node. */
export interface OwnershipEvent {
  readonly name: string;
  readonly owner: OwnerRef;
  /** Fencing token of the grant. */
  readonly token: number;
}

export interface PesEvents {
  /** A local owner was granted a name. */
  registered: [OwnershipEvent];
  /** A local owner's registration ended. `reason` says how; 'lost' means the lease could not be renewed. */
  released: [OwnershipEvent & { readonly reason: RevokeReason }];
  /** A local owner lost a name because its lease could not be renewed in time (also in `released`). */
  lost: [OwnershipEvent];
  /** A peer became reachable or unreachable. */
  nodeup: [string];
  nodedown: [string];
  /** The member list or a cluster setting changed. */
  members: [readonly string[]];
  config: [string, number];
}
