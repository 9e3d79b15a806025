/**
 * How a node's parts are built from its options and connected: transport -> request layer -> acceptor
 * and registry -> guards -> renewer, with membership, recovery, watches, singletons and the periodic
 * chores around them. {@link PesNode} holds the parts and exposes the public API over them; the few
 * parts that call back into the node (singletons register through the public API, the inbox serves
 * only while the node runs) get those calls through {@link NodeHost}.
 */
import type { EventEmitter } from 'eventemitter3';
import { Acceptor } from './acceptor/acceptor.js';
import { SystemClock, type Clock } from './clock.js';
import { MembershipChanges } from './cluster/changes.js';
import { ClusterConfig } from './cluster/config.js';
import { Gossip } from './cluster/gossip.js';
import { Membership } from './cluster/membership.js';
import { Recovery } from './cluster/recovery.js';
import { Delivery } from './delivery.js';
import { InvalidArgumentError } from './errors.js';
import type { PesEvents } from './events.js';
import { effectiveHeartbeat, expiryDuration } from './guard/lease.js';
import type { GuardRecord } from './guard/record.js';
import { Renewer } from './guard/renewer.js';
import { Inbox } from './inbox.js';
import { NodeCalls } from './node-calls.js';
import { NodeStats } from './node-stats.js';
import type { PesOptions, Seed } from './options.js';
import { OwnerTable, type Owner } from './owner.js';
import { Periodic } from './periodic.js';
import type { MemberInfo, OwnerRef } from './protocol/messages.js';
import type { Registration } from './registration.js';
import { Registry, type LookupResult } from './registry.js';
import { Rpc } from './rpc.js';
import { SingletonManager } from './singleton.js';
import { MemoryNetwork, MemoryTransport } from './transport/memory.js';
import type { Transport } from './transport/transport.js';
import { WatchHub } from './watch.js';

/** What the parts need from the node that holds them. */
export interface NodeHost {
  readonly events: EventEmitter<PesEvents>;
  /** Whether the acceptor answers requests (running or stopping). */
  serving(): boolean;
  /** The public operations singletons use (with the node's own checks). */
  register(name: string, owner: Owner): Promise<Registration>;
  update(name: string, to: Owner | OwnerRef): Promise<void>;
  registration(name: string): Registration | undefined;
  lookup(name: string): Promise<LookupResult | undefined>;
}

/** A node's parts, connected, and the options they were built with. */
export interface NodeParts {
  readonly id: string;
  readonly incarnation: number;
  readonly clock: Clock;
  readonly transport: Transport;
  readonly rpc: Rpc;
  readonly membership: Membership;
  readonly config: ClusterConfig;
  readonly gossip: Gossip;
  readonly acceptor: Acceptor;
  readonly owners: OwnerTable;
  readonly renewer: Renewer<GuardRecord>;
  readonly registry: Registry;
  readonly delivery: Delivery;
  readonly recovery: Recovery;
  readonly changes: MembershipChanges;
  readonly calls: NodeCalls;
  readonly periodic: Periodic;
  readonly watches: WatchHub;
  readonly inbox: Inbox;
  readonly singletons: SingletonManager;
  readonly stats: NodeStats;
  readonly seeds: readonly Seed[];
  /** Default bound of every call, of one protocol phase, and of joining through the seeds, ms. */
  readonly timeout: number;
  readonly phaseTimeout: number;
  readonly joinTimeout: number;
  /** This node as a member: id, the transport's (resolved) endpoint, its CURVE public key. */
  self(): MemberInfo;
  /** Members reachable now (this node included). */
  liveNodes(): readonly string[];
}

let anonymous = 0;

/** Builds and connects the parts of one node; throws InvalidArgumentError on a bad option. */
export function wireNode(options: PesOptions, host: NodeHost): NodeParts {
  const clock = options.clock ?? new SystemClock();
  const random = options.random ?? Math.random;
  const id = options.transport?.id ?? options.id ?? `pes-${process.pid}-${++anonymous}`;
  const transport: Transport = options.transport ?? new MemoryTransport(new MemoryNetwork(clock), id, Math.floor(clock.wallNow()));
  if (transport.id !== id) throw new InvalidArgumentError('id', 'id must match the transport id');
  const incarnation = transport.incarnation;
  const phaseTimeout = positive('phaseTimeout', options.phaseTimeout ?? 500);
  const gossipInterval = positive('gossipInterval', options.gossipInterval ?? 1000);
  const timeout = positive('timeout', options.timeout ?? 5000);
  const shards = positive('shards', options.shards ?? 16);
  const seeds = (options.seeds ?? []).map((x) => (typeof x === 'string' ? { endpoint: x } : x));
  const publicKey = options.curve?.publicKey;
  const joinTimeout = positive('joinTimeout', options.joinTimeout ?? 120_000);
  const self = (): MemberInfo => {
    const endpoint = transport.endpoint;
    return publicKey === undefined ? { id, endpoint } : { id, endpoint, publicKey };
  };
  const members = options.members ?? (seeds.length > 0 ? [] : [self()]);
  if (members.length > 0 && !members.some((m) => m.id === id)) throw new InvalidArgumentError('members', 'members must include this node');
  const membership = new Membership(id, { version: members.length > 0 ? 1 : 0, members });
  const liveNodes = (): readonly string[] => membership.ids().filter((n) => transport.reachable(n));
  const config = new ClusterConfig(id, options.settings);
  const rpc = new Rpc({ transport });
  const gossip = new Gossip({ self: id, rpc, membership, config });
  const termFloor = Math.floor(clock.wallNow()) * 1000;
  const listVersion = (): number => membership.list().version;
  const acceptor = new Acceptor(
    { clock, settings: () => config.values, onChange: (c) => watches.onAccepted(c), listVersion },
    { shards, termFloor, voting: false },
  );
  const owners = new OwnerTable(id, incarnation);
  const hb = (): number => effectiveHeartbeat(config.get('heartbeat'));
  /** A lease period and a heartbeat: by then every value is renewed or has expired everywhere. */
  const expiryPeriod = (): number => expiryDuration(hb()) + hb();
  const renewer = new Renewer<GuardRecord>({
    clock, rpc, members: () => membership.ids(), heartbeat: hb, random, listVersion,
  });
  const registry = new Registry(
    {
      clock, rpc, membership, config, owners,
      renewer, events: host.events, random, reachable: (n) => transport.reachable(n),
    },
    // Terms start from the wall clock now, not at this node's start: a node started before its peers
    // would otherwise propose below their floors and be refused on every first attempt.
    { node: id, incarnation, termFloor: () => Math.max(Math.floor(clock.wallNow()) * 1000, acceptor.floor), phaseTimeout, timeout },
  );
  const delivery = new Delivery({ clock, rpc, owners, registry, timeout });
  const recovery = new Recovery({
    clock, rpc, self: id, members: () => membership.ids(),
    period: expiryPeriod, retryMs: phaseTimeout * 2, onVote: () => acceptor.startVoting(),
    adopt: (entries, unconfirmed) => acceptor.adopt(entries, unconfirmed),
  });
  const changes = new MembershipChanges({
    clock, rpc, membership, phaseTimeout,
    settled: () => !acceptor.unsettled(),
    settleWait: () => expiryPeriod() + 4 * phaseTimeout,
    addPeer: (m) => transport.addPeer(m), removePeer: (peer) => transport.removePeer(peer),
    self, spawn: () => owners.spawn(), shards,
    register: (name, owner) => registry.register(name, owner),
  });
  const calls = new NodeCalls({ clock, rpc, self: id, timeout });
  const periodic = new Periodic({
    clock, random, gossipInterval,
    cleanupPeriod: () => config.get('cleanupPeriod'), cleanup: () => acceptor.cleanup(),
    gossip: () => {
      gossip.spread();
      stats.sample();
    },
  });
  const watches = new WatchHub({
    clock, live: (prefix) => acceptor.live(prefix), stateOf: (name, b) => acceptor.stateOf(name, b),
    scanEvery: () => Math.max(250, hb() / 2),
  });
  host.events.on('lost', (e) => watches.onLost(e.name, e.owner, id, e.token));
  membership.onChange((ids) => {
    for (const m of membership.list().members) transport.addPeer(m);
    renewer.listChanged();
    host.events.emit('members', ids);
  });
  config.onChange((key, value) => host.events.emit('config', key, value));
  const inbox = new Inbox({
    rpc, acceptor, registry, delivery, changes,
    membership, config,
    // While stopping, the acceptor still answers: the node's own tombstones need its vote too.
    serving: () => host.serving(),
    status: () => ({ node: id, members: membership.list(), live: liveNodes(), held: registry.heldNames, voting: acceptor.voting }),
    gossip: () => gossip.message(), clock, calls: calls.handlers,
    afterFlush: (fn) => {
      if (transport.afterFlush === undefined) queueMicrotask(fn);
      else transport.afterFlush(fn);
    },
    decided: (name, b, v, seq, mv) => {
      if (v === null) return watches.onReleased(name, b);
      acceptor.learn(name, b, v, seq, mv);
      watches.onDecided(name, b, v);
    },
  });
  const singletons = new SingletonManager({
    clock, random, self: id, heartbeat: hb,
    spawn: () => owners.spawn(), register: (name, owner) => host.register(name, owner),
    update: (name, to) => host.update(name, to), registration: (name) => host.registration(name),
    lookupNode: async (name) => (await host.lookup(name))?.node, liveNodes,
    watch: (name) => watches.watch(name), call: (node, body, ms) => calls.call(node, 'singleton', body, ms), phaseTimeout,
    onRegistered: (fn) => {
      host.events.on('registered', fn);
      return () => host.events.off('registered', fn);
    },
  });
  calls.handlers.set('singleton', (body) => singletons.onCall(body));
  const stats = new NodeStats({
    node: id, incarnation, clock, acceptor, inbox, registry, renewer, transport,
    members: () => membership.ids(), liveMembers: liveNodes,
  });
  return {
    id, incarnation, clock, transport, rpc, membership, config, gossip, acceptor, owners, renewer, registry, delivery, recovery,
    changes, calls, periodic, watches, inbox, singletons, stats, seeds, timeout, phaseTimeout, joinTimeout, self, liveNodes,
  };
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(name, `${name} must be a positive number`);
  return v;
}
