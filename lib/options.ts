/**
 * The options a node starts with, and the shape of what `stat()` reports.
 */
import type { AcceptorStats } from './acceptor/acceptor.js';
import type { Clock } from './clock.js';
import type { Settings } from './cluster/config.js';
import type { RenewerStats } from './guard/renewer.js';
import type { MemberInfo } from './protocol/messages.js';
import type { LatencySummary } from './stats.js';
import type { Transport, TransportStats } from './transport/transport.js';
import type { CurveOptions, ZmqPingOptions } from './transport/zmq.js';

/** Options of {@link Pes.start}. Every field is optional: with none, the node is a single-node cluster. */
export interface PesOptions {
  /** Node id, unique in the cluster (default: a random one). */
  readonly id?: string;
  /** The transport (default: an in-process one, enough for a single-node cluster). */
  readonly transport?: Transport;
  /** The clock (default: the system's monotonic clock). */
  readonly clock?: Clock;
  /** Initial member list (default: this node alone, or none when `seeds` are given). Must include this node. */
  readonly members?: readonly MemberInfo[];
  /**
   * Where this node's ZeroMQ inbox binds (`tcp://127.0.0.1:0` picks a free port; ipc works too). Setting
   * `endpoint`, `seeds` or `curve` without a `transport` runs the node on the ZeroMQ mesh. Loopback by
   * default: reachable from other hosts only when you bind another interface.
   */
  readonly endpoint?: string;
  /**
   * Existing members to join through during start: endpoints, or `{ endpoint, publicKey }` when CURVE
   * security is on (the seed's Z85 public key).
   */
  readonly seeds?: readonly (string | Seed)[];
  /**
   * On SIGTERM or SIGINT: drain (move every singleton this node runs to other nodes), stop, and exit
   * with code 0. `true` or `{ timeout }` (ms the drain may take, default 30000). Default off.
   */
  readonly drainOnSignal?: boolean | { readonly timeout?: number };
  /** How long start() keeps trying to join through the seeds, ms (default 120000). */
  readonly joinTimeout?: number;
  /** CURVE keys of this node and the allow-list of the cluster's public keys (ZeroMQ mesh only). */
  readonly curve?: CurveOptions;
  /** Application-level liveness of the ZeroMQ mesh (default: ping every 1000 ms, down after 3000 ms). */
  readonly ping?: ZmqPingOptions;
  /** Cluster settings this node starts with (gossip converges them cluster-wide). */
  readonly settings?: Partial<Settings>;
  /** Number of acceptor shards; must be the same on every node (default 16). */
  readonly shards?: number;
  /** How long one protocol phase waits for replies, ms (default 500). */
  readonly phaseTimeout?: number;
  /** Default bound on register, lookup, update and call, ms (default 5000). */
  readonly timeout?: number;
  /** Gossip interval, ms (default 1000). */
  readonly gossipInterval?: number;
  /** Random source in [0, 1) for jitter (default Math.random). */
  readonly random?: () => number;
}

/** A member to join through. */
export interface Seed {
  readonly endpoint: string;
  readonly publicKey?: string;
}

/** What {@link PesNode.stat} reports. */
export interface PesStat {
  readonly node: string;
  readonly incarnation: number;
  readonly members: readonly string[];
  readonly liveMembers: readonly string[];
  readonly voting: boolean;
  /** Guards running here (acquiring, holding, releasing), and names held by local owners. */
  readonly activeGuards: number;
  readonly heldNames: number;
  readonly register: LatencySummary;
  readonly lookup: LatencySummary;
  /** Per second over the last 10 s: requests this acceptor handled, acks, nacks and repairs it gave. */
  readonly rates: { readonly requests: number; readonly acks: number; readonly nacks: number; readonly repairs: number };
  readonly acceptor: AcceptorStats & { readonly requests: number; readonly rejected: number };
  readonly renewer: RenewerStats;
  readonly transport: TransportStats;
}
