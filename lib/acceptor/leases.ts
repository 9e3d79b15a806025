/**
 * How long each accepted value stays live at this acceptor. A value is renewed by its own installs
 * (commit, repair, sync: `renewedAt` and `hb` on the entry) and, while attached to the node whose guard
 * holds it, by that node's batched renewals: one `renew` per node per heartbeat, accepted only when the
 * node and this acceptor agree on the set of its entries (a count and an order-free digest). A value
 * expires 3 heartbeats after the last renewal that covered it, by this acceptor's own clock.
 */
import type { Clock } from '../clock.js';
import type { Ballot } from '../protocol/messages.js';
import { ownCopy } from '../strings.js';
import { DigestSet, entryHash } from './digest.js';
import type { EntryTable } from './entries.js';
import type { Entry } from './entry.js';

interface NodeRenewal {
  readonly set: DigestSet;
  renewedAt: number;
  hb: number;
  /** Member-list version a majority of which holds the node's set, as its last agreeing renewal said. */
  listVersion: number;
}

/** What a node's batched renewal found: whether the sets agreed, and this acceptor's view of them. */
export interface NodeRenewalResult {
  readonly ok: boolean;
  readonly count: number;
  readonly digest: number;
}

export class Leases {
  readonly #clock: Clock;
  readonly #entries: EntryTable;
  readonly #nodes = new Map<string, NodeRenewal>();

  constructor(clock: Clock, entries: EntryTable) {
    this.#clock = clock;
    this.#entries = entries;
  }

  /**
   * Node `from` renews every entry attached to it, if it counts and digests them as this acceptor does;
   * `listVersion`: the member list a majority of which holds them all, by the node's word (-1: none).
   */
  renewNode(from: string, count: number, digest: number, hb: number, listVersion = -1): NodeRenewalResult {
    const n = this.#node(from);
    const ok = n.set.count === count && n.set.digest === digest;
    if (ok) {
      n.renewedAt = this.#clock.now();
      n.hb = hb;
      n.listVersion = listVersion;
    }
    return { ok, count: n.set.count, digest: n.set.digest };
  }

  /** From now on `e` (holding `name` at `b`, `seq`) is renewed by node `gnode`'s batched renewals. */
  attach(e: Entry, gnode: string, name: string, b: Ballot, seq: number): void {
    e.attachedToGuardNode = true;
    e.hash = entryHash(name, b, seq);
    this.#node(gnode).set.add(e.hash);
  }

  /** `e` leaves its node's set, keeping the node's last renewal of it as its own. */
  detach(e: Entry): void {
    const attached = e.attached;
    if (attached === undefined) return;
    const n = this.#node(attached);
    if (n.renewedAt > e.renewedAt) {
      e.renewedAt = n.renewedAt;
      e.hb = n.hb;
      e.listVersion = Math.max(e.listVersion, n.listVersion);
    }
    n.set.remove(e.hash);
    e.attachedToGuardNode = false;
  }

  /** Every entry attached to `node` leaves its set (a sync from it is about to list them again). */
  detachAll(node: string): void {
    for (const e of this.#entries.attachedTo(node)) this.detach(e);
  }

  /**
   * Whether a majority of member-list version `v` (or a newer one) holds `e`'s value, by the word of
   * whoever wrote or renewed it last: the guard whose commit or grant notice installed it (it asked a
   * majority of list `e.listVersion`), or its node, in an agreeing renewal made after the install (the
   * node's last round that a majority of its list acked covered every name it holds). A sync or a
   * start-up copy vouches for nothing: it reaches one acceptor.
   */
  settledUnder(e: Entry, v: number): boolean {
    if (e.listVersion >= v) return true;
    const attached = e.attached;
    if (attached === undefined) return false;
    const n = this.#nodes.get(attached);
    return n !== undefined && n.renewedAt > e.renewedAt && n.listVersion >= v;
  }

  /** Local time of the last renewal that covered `e`. */
  lastRenewal(e: Entry): number {
    const attached = e.attached;
    if (attached === undefined) return e.renewedAt;
    const n = this.#nodes.get(attached);
    return n !== undefined && n.renewedAt >= e.renewedAt ? n.renewedAt : e.renewedAt;
  }

  /** How long `e` stays live after its last renewal: 3 heartbeats of the renewal that covered it. */
  expiry(e: Entry): number {
    const attached = e.attached;
    if (attached !== undefined) {
      const n = this.#nodes.get(attached);
      if (n !== undefined && n.renewedAt >= e.renewedAt) return 3 * n.hb;
    }
    return 3 * e.hb;
  }

  /** Whether `e`'s value is known decided: marked so, or renewed by its node since it was installed. */
  confirmed(e: Entry): boolean {
    if (e.confirmed) return true;
    const attached = e.attached;
    if (attached === undefined) return false;
    const n = this.#nodes.get(attached);
    return n !== undefined && n.renewedAt > e.renewedAt;
  }

  /** Whether `e` holds a value whose lease has run out here. */
  expired(e: Entry): boolean {
    return e.hasValue && this.#clock.now() - this.lastRenewal(e) >= this.expiry(e);
  }

  #node(id: string): NodeRenewal {
    let n = this.#nodes.get(id);
    if (n === undefined) this.#nodes.set(ownCopy(id), (n = { set: new DigestSet(), renewedAt: -Infinity, hb: 0, listVersion: -1 }));
    return n;
  }
}
