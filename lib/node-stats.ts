/**
 * What a node reports about itself (`node.stat()`), and the rate meters behind its per-second rates:
 * the node samples them on every gossip round (once a second by default).
 */
import type { Acceptor } from './acceptor/acceptor.js';
import type { Clock } from './clock.js';
import type { Renewer } from './guard/renewer.js';
import type { Inbox } from './inbox.js';
import type { PesStat } from './options.js';
import type { Registry } from './registry.js';
import { RateMeter } from './stats.js';
import type { Transport } from './transport/transport.js';

/** What the report reads: the node's identity and the parts that keep counters. */
export interface NodeStatsComponents {
  readonly node: string;
  readonly incarnation: number;
  readonly clock: Clock;
  readonly acceptor: Acceptor;
  readonly inbox: Inbox;
  readonly registry: Registry;
  readonly renewer: Renewer;
  readonly transport: Transport;
  /** The node's members and those reachable now. */
  readonly members: () => readonly string[];
  readonly liveMembers: () => readonly string[];
}

/** The counters, latencies and rates of one node, as `stat()` reports them. */
export class NodeStats {
  readonly #c: NodeStatsComponents;
  readonly #rates: Record<'requests' | 'acks' | 'nacks' | 'repairs', RateMeter>;

  constructor(components: NodeStatsComponents) {
    this.#c = components;
    const { clock, acceptor, inbox } = components;
    const a = acceptor.stats;
    this.#rates = {
      requests: new RateMeter(clock, () => inbox.requests),
      acks: new RateMeter(clock, () => a.acks + a.renewals),
      nacks: new RateMeter(clock, () => a.nacks + a.renewMismatches),
      repairs: new RateMeter(clock, () => a.repairs),
    };
  }

  /** Records every counter now (the rates are per second over a sliding window of samples). */
  sample(): void {
    for (const meter of Object.values(this.#rates)) meter.sample();
  }

  /** What `node.stat()` returns: a fresh snapshot (the rates sample their counters now). */
  report(): PesStat {
    const { acceptor, registry, inbox, renewer, transport } = this.#c;
    const a = acceptor.stats;
    return {
      node: this.#c.node,
      incarnation: this.#c.incarnation,
      members: this.#c.members(),
      liveMembers: this.#c.liveMembers(),
      voting: acceptor.voting,
      activeGuards: registry.activeGuards,
      heldNames: registry.heldNames,
      register: registry.registerLatency.summary(),
      lookup: registry.lookupLatency.summary(),
      rates: {
        requests: this.#rates.requests.rate(),
        acks: this.#rates.acks.rate(),
        nacks: this.#rates.nacks.rate(),
        repairs: this.#rates.repairs.rate(),
      },
      acceptor: { ...a, entries: acceptor.size, requests: inbox.requests, rejected: inbox.rejected },
      renewer: { ...renewer.stats },
      transport: transport.stats(),
    };
  }
}
