/**
 * PesNode: one member of a pes cluster. It wires the parts together (transport -> request layer ->
 * acceptor and registry -> guards -> renewer) and exposes the public API. Data flows one way: API ->
 * registry -> guard -> transport -> acceptors on every node -> replies -> guard -> owner and events.
 */
import { EventEmitter } from 'eventemitter3';
import { Acceptor } from './acceptor/acceptor.js';
import { SystemClock, type Clock } from './clock.js';
import { ClusterConfig, type SettingKey, type Settings } from './cluster/config.js';
import { MembershipChanges } from './cluster/changes.js';
import { Membership } from './cluster/membership.js';
import { Recovery } from './cluster/recovery.js';
import { validateName } from './name.js';
import { Delivery } from './delivery.js';
import { Inbox } from './inbox.js';
import { NodeCalls } from './node-calls.js';
import { Periodic } from './periodic.js';
import { WatchHub, type Watch, type WatchTarget } from './watch.js';
import { SingletonManager, type DrainReport, type Singleton, type SingletonSpec, type TransferReport } from './singleton.js';
import type { PesPlugin } from './plugin.js';
import { InvalidArgumentError, NoConsensusError, StoppedError } from './errors.js';
import type { PesEvents } from './events.js';
import { effectiveHeartbeat, expiryDuration } from './guard/lease.js';
import { Renewer } from './guard/renewer.js';
import type { Owner, OwnerHandler } from './owner.js';
import { OwnerTable } from './owner.js';
import type { GossipMsg, MemberInfo, MemberList, OwnerRef } from './protocol/messages.js';
export type { PesOptions, PesStat } from './options.js';
import type { Registration } from './registration.js';
import { Registry, type CallOptions, type LookupResult } from './registry.js';
import { Rpc } from './rpc.js';
import { RateMeter } from './stats.js';
import { MemoryNetwork, MemoryTransport } from './transport/memory.js';
import type { Transport } from './transport/transport.js';
import type { PesOptions, PesStat, Seed } from './options.js';

let anonymous = 0;

export class PesNode {
  readonly id: string;
  readonly incarnation: number;
  readonly clock: Clock;
  readonly events = new EventEmitter<PesEvents>();
  readonly #transport: Transport;
  readonly #rpc: Rpc;
  readonly #membership: Membership;
  readonly #config: ClusterConfig;
  readonly #acceptor: Acceptor;
  readonly #owners: OwnerTable;
  readonly #renewer: Renewer;
  readonly #registry: Registry;
  readonly #delivery: Delivery;
  readonly #recovery: Recovery;
  readonly #changes: MembershipChanges;
  readonly #seeds: readonly Seed[];
  readonly #publicKey: string | undefined;
  readonly #timeout: number;
  readonly #joinTimeout: number;
  readonly #drainOnSignal: PesOptions['drainOnSignal'];
  readonly #random: () => number;
  readonly #phaseTimeout: number;
  readonly #gossipInterval: number;
  readonly #rates: Record<'requests' | 'acks' | 'nacks' | 'repairs', RateMeter>;
  readonly #inbox: Inbox;
  readonly #watches: WatchHub;
  readonly #singletons: SingletonManager;
  readonly #plugins: PesPlugin[] = [];
  readonly #calls: NodeCalls;
  readonly #periodic: Periodic;
  #signalHandler: (() => void) | undefined;
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  /** Use {@link Pes.start}. */
  constructor(options: PesOptions = {}) {
    this.clock = options.clock ?? new SystemClock();
    this.#random = options.random ?? Math.random;
    this.id = options.transport?.id ?? options.id ?? `pes-${process.pid}-${++anonymous}`;
    this.#transport = options.transport ?? new MemoryTransport(new MemoryNetwork(this.clock), this.id, Math.floor(this.clock.wallNow()));
    if (this.#transport.id !== this.id) throw new InvalidArgumentError('id', 'id must match the transport id');
    this.incarnation = this.#transport.incarnation;
    this.#phaseTimeout = positive('phaseTimeout', options.phaseTimeout ?? 500);
    this.#gossipInterval = positive('gossipInterval', options.gossipInterval ?? 1000);
    const timeout = positive('timeout', options.timeout ?? 5000);
    const shards = positive('shards', options.shards ?? 16);
    this.#seeds = (options.seeds ?? []).map((x) => (typeof x === 'string' ? { endpoint: x } : x));
    this.#publicKey = options.curve?.publicKey;
    this.#timeout = timeout;
    this.#joinTimeout = positive('joinTimeout', options.joinTimeout ?? 120_000);
    this.#drainOnSignal = options.drainOnSignal;
    const members = options.members ?? (this.#seeds.length > 0 ? [] : [this.#self()]);
    if (members.length > 0 && !members.some((m) => m.id === this.id)) throw new InvalidArgumentError('members', 'members must include this node');
    this.#membership = new Membership(this.id, { version: members.length > 0 ? 1 : 0, members });
    this.#config = new ClusterConfig(this.id, options.settings);
    this.#rpc = new Rpc({ transport: this.#transport });
    const termFloor = Math.floor(this.clock.wallNow()) * 1000;
    this.#acceptor = new Acceptor(
      { clock: this.clock, settings: () => this.#config.values, onChange: (c) => this.#watches.onAccepted(c) },
      { shards, termFloor, voting: false },
    );
    this.#owners = new OwnerTable(this.id, this.incarnation);
    const hb = (): number => effectiveHeartbeat(this.#config.get('heartbeat'));
    this.#renewer = new Renewer({ clock: this.clock, rpc: this.#rpc, members: () => this.#membership.ids(), heartbeat: hb, random: this.#random });
    this.#registry = new Registry(
      {
        clock: this.clock, rpc: this.#rpc, membership: this.#membership, config: this.#config, owners: this.#owners,
        renewer: this.#renewer, events: this.events, random: this.#random, reachable: (n) => this.#transport.reachable(n),
      },
      // Terms start from the wall clock now, not at this node's start: a node started before its peers
      // would otherwise propose below their floors and be refused on every first attempt.
      { node: this.id, incarnation: this.incarnation, termFloor: () => Math.max(Math.floor(this.clock.wallNow()) * 1000, this.#acceptor.floor), phaseTimeout: this.#phaseTimeout, timeout },
    );
    this.#delivery = new Delivery({ clock: this.clock, rpc: this.#rpc, owners: this.#owners, registry: this.#registry, timeout });
    this.#recovery = new Recovery({
      clock: this.clock, rpc: this.#rpc, self: this.id, members: () => this.#membership.ids(),
      period: () => expiryDuration(hb()) + hb(), retryMs: this.#phaseTimeout * 2, onVote: () => this.#acceptor.startVoting(),
      adopt: (entries, unconfirmed) => this.#acceptor.adopt(entries, unconfirmed),
    });
    this.#changes = new MembershipChanges({
      clock: this.clock, rpc: this.#rpc, membership: this.#membership, phaseTimeout: this.#phaseTimeout,
      addPeer: (m) => this.#transport.addPeer(m), removePeer: (id) => this.#transport.removePeer(id),
      self: () => this.#self(), spawn: () => this.#owners.spawn(), shards,
      register: (name, owner) => this.#registry.register(name, owner),
    });
    this.#calls = new NodeCalls({ clock: this.clock, rpc: this.#rpc, self: this.id, timeout });
    this.#periodic = new Periodic({
      clock: this.clock, random: this.#random, gossipInterval: this.#gossipInterval,
      cleanupPeriod: () => this.#config.get('cleanupPeriod'), cleanup: () => this.#acceptor.cleanup(),
      gossip: () => {
        this.#gossip();
        for (const meter of Object.values(this.#rates)) meter.sample();
      },
    });
    this.#watches = new WatchHub({
      clock: this.clock, live: (prefix) => this.#acceptor.live(prefix), stateOf: (name, b) => this.#acceptor.stateOf(name, b),
      scanEvery: () => Math.max(250, hb() / 2),
    });
    this.events.on('lost', (e) => this.#watches.onLost(e.name, e.owner, this.id, e.token));
    this.#membership.onChange((ids) => {
      for (const m of this.#membership.list().members) this.#transport.addPeer(m);
      this.events.emit('members', ids);
    });
    this.#config.onChange((key, value) => this.events.emit('config', key, value));
    this.#inbox = new Inbox({
      rpc: this.#rpc, acceptor: this.#acceptor, registry: this.#registry, delivery: this.#delivery, changes: this.#changes,
      membership: this.#membership, config: this.#config,
      // While stopping, the acceptor still answers: the node's own tombstones need its vote too.
      serving: () => this.#state === 'running' || this.#state === 'stopping',
      status: () => ({ node: this.id, members: this.#membership.list(), live: this.liveNodes(), held: this.#registry.heldNames, voting: this.#acceptor.voting }),
      gossip: () => this.#gossipMessage(), clock: this.clock, calls: this.#calls.handlers,
      decided: (name, b, v, seq) => {
        if (v === null) return this.#watches.onReleased(name, b);
        this.#acceptor.learn(name, b, v, seq);
        this.#watches.onDecided(name, b, v);
      },
    });
    this.#singletons = new SingletonManager({
      clock: this.clock, random: this.#random, self: this.id, heartbeat: hb,
      spawn: () => this.#owners.spawn(), register: (name, owner) => this.register(name, owner),
      update: (name, to) => this.update(name, to), registration: (name) => this.registration(name),
      lookupNode: async (name) => (await this.lookup(name))?.node, liveNodes: () => this.liveNodes(),
      watch: (name) => this.#watches.watch(name), call: (node, body) => this.#calls.call(node, 'singleton', body),
      onRegistered: (fn) => {
        this.events.on('registered', fn);
        return () => this.events.off('registered', fn);
      },
    });
    this.#calls.handlers.set('singleton', (body) => this.#singletons.onCall(body));
    const a = this.#acceptor.stats;
    this.#rates = {
      requests: new RateMeter(this.clock, () => this.#inbox.requests),
      acks: new RateMeter(this.clock, () => a.acks + a.renewals),
      nacks: new RateMeter(this.clock, () => a.nacks + a.renewMismatches),
      repairs: new RateMeter(this.clock, () => a.repairs),
    };
  }

  /** Starts the transport, then decides when the acceptor may vote. */
  async start(): Promise<this> {
    if (this.#state !== 'new') return this;
    this.#state = 'running';
    this.#hookSignals();
    await this.#transport.start(
      (from, inc, messages) => {
        // After a pause, revoke expired leases before handling anything (input may run before timers).
        this.#renewer.checkOverdue();
        this.#inbox.onFrame(from, inc, messages);
      },
      (peer, up) => {
        if (!up) this.#watches.onNodeDown(peer);
        this.events.emit(up ? 'nodeup' : 'nodedown', peer);
      },
    );
    // The list was made before the transport bound: an ephemeral port (:0) is only now known.
    const list = this.#membership.list();
    const me = list.members.find((m) => m.id === this.id);
    if (me !== undefined && me.endpoint !== this.#transport.endpoint) {
      this.#membership.replace({ version: list.version, members: list.members.map((m) => (m.id === this.id ? this.#self() : m)) });
    }
    for (const m of this.#membership.list().members) this.#transport.addPeer(m);
    this.#periodic.start();
    if (this.#seeds.length === 0) {
      this.#recovery.start();
      return this;
    }
    try {
      await this.#changes.joinAny(this.#seeds, this.#joinTimeout, (seed, ms) => this.#join(seed.endpoint, seed.publicKey, Math.min(this.#timeout, ms)), () => this.#state === 'running');
    } catch (e) {
      await this.stop();
      throw e;
    }
    return this;
  }

  /**
   * Joins the cluster of the member at `endpoint`. Like a restarted node, the new member votes once it
   * cannot contradict a live registration: at once when no member holds a live name, else after one
   * expiry period (3 heartbeats and one more) during which live guards repair it. Rejects with
   * ConfigError when another membership change is in progress, or (key 'shards') when this node's shard
   * count differs from the cluster's. With CURVE on, pass the seed's public key.
   */
  async join(endpoint: string, publicKey?: string): Promise<void> {
    this.#assertRunning();
    await this.#join(endpoint, publicKey, this.#timeout);
  }

  async #join(endpoint: string, publicKey: string | undefined, timeoutMs: number): Promise<void> {
    await this.#changes.join(endpoint, publicKey, timeoutMs);
    this.#recovery.start();
  }

  /**
   * Removes a member from the cluster (this node by default; a dead node too). Names its guards hold
   * keep their owners only while the rest renew them: a removed node's renewals are not counted.
   */
  async leave(node: string = this.id): Promise<MemberList> {
    this.#assertRunning();
    return this.#changes.remove(node);
  }

  /** With `drainOnSignal`, SIGTERM/SIGINT drain the node, stop it and exit 0 (a deploy's rolling restart). */
  #hookSignals(): void {
    const opt = this.#drainOnSignal;
    if (opt === undefined || opt === false) return;
    const timeout = typeof opt === 'object' ? opt.timeout ?? 30_000 : 30_000;
    let once = false;
    this.#signalHandler = () => {
      if (once) return;
      once = true;
      void this.drain({ timeout }).catch(() => undefined).then(() => this.stop()).finally(() => process.exit(0));
    };
    process.on('SIGTERM', this.#signalHandler);
    process.on('SIGINT', this.#signalHandler);
  }

  #self(): MemberInfo {
    const endpoint = this.#transport.endpoint;
    return this.#publicKey === undefined ? { id: this.id, endpoint } : { id: this.id, endpoint, publicKey: this.#publicKey };
  }

  // ---- public API ----------------------------------------------------------------------------------

  /** A new local owner handle (the seed's process). `handler` receives messages sent to its names. */
  spawn(handler?: OwnerHandler): Owner {
    this.#assertRunning();
    return this.#owners.spawn(handler);
  }

  /** Registers `name` for `owner`. Rejects with AlreadyRegisteredError, NoConsensusError, TimeoutError... */
  async register(name: string, owner: Owner, opts?: CallOptions): Promise<Registration> {
    validateName(name);
    if (name.startsWith('$pes/')) throw new InvalidArgumentError('name', 'names starting with $pes/ are reserved');
    this.#assertMember(name);
    return this.#registry.register(name, owner, opts);
  }

  /** Seed parity: 'yes' when registered, 'no' otherwise (held, owner gone, no consensus). */
  async registerName(name: string, owner: Owner, opts?: CallOptions): Promise<'yes' | 'no'> {
    try {
      await this.register(name, owner, opts);
      return 'yes';
    } catch (e) {
      if (e instanceof InvalidArgumentError || e instanceof StoppedError) throw e;
      return 'no';
    }
  }

  /** The owner holding `name`, or undefined. Rejects on no consensus or timeout; never guesses. */
  async whereis(name: string, opts?: CallOptions): Promise<OwnerRef | undefined> {
    this.#assertMember(name);
    return this.#registry.whereis(name, opts);
  }

  /** Owner, guard, node and fencing token of `name`, or undefined. */
  async lookup(name: string, opts?: CallOptions): Promise<LookupResult | undefined> {
    this.#assertMember(name);
    return this.#registry.lookup(name, opts);
  }

  /** Ends the registration of `name` wherever its guard runs; resolves when absent too. */
  async unregister(name: string, opts?: CallOptions): Promise<void> {
    this.#assertMember(name);
    return this.#registry.unregister(name, opts);
  }

  /** Hands `name` to another owner (on any node); the old owner is revoked first. NotFoundError when absent. */
  async update(name: string, to: Owner | OwnerRef, opts?: CallOptions): Promise<void> {
    this.#assertMember(name);
    return this.#registry.update(name, to, opts);
  }

  /** Sends `message` to the owner of `name`; returns its ref. NotRegisteredError when nobody holds it. */
  async send(name: string, message: unknown, opts?: CallOptions): Promise<OwnerRef> {
    this.#assertMember(name);
    return this.#delivery.send(name, message, opts);
  }

  /** Sends `message` and waits for the owner handler's result. */
  async call(name: string, message: unknown, opts?: CallOptions): Promise<unknown> {
    this.#assertMember(name);
    return this.#delivery.call(name, message, opts);
  }

  /**
   * Follows ownership changes of one name, or of every name with a prefix (`'jobs/*'`; `'*'` for all),
   * as seen by this node: first a snapshot of current owners, then each change once, in token order per
   * name. Iterate it (`for await`) or listen to its 'change' event; `close()` it when done.
   */
  watch(target: WatchTarget): Watch {
    this.#assertRunning();
    return this.#watches.watch(target);
  }

  /**
   * Declares a singleton: every node declares the same one, exactly one runs it. See SingletonSpec for
   * start/stop/handoff and the hooks; standby nodes take over when the owner, its node or its lease dies.
   */
  singleton<S>(name: string, spec: SingletonSpec<S>): Singleton<S> {
    validateName(name);
    this.#assertRunning();
    return this.#singletons.declare(name, spec);
  }

  /** Moves singleton `name` to node `to`: old owner stopped and its state captured first, no overlap. */
  async transfer(name: string, to: string): Promise<TransferReport> {
    this.#assertMember(name);
    return this.#singletons.transfer(name, to);
  }

  /**
   * Moves every singleton this node runs to other live nodes (for a deploy), and stops contending for
   * them here. Singletons with nowhere to go are stopped. Resolves with what moved and each gap.
   */
  async drain(opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<DrainReport> {
    this.#assertRunning();
    return this.#singletons.drain(opts);
  }

  /** Attaches a plugin (a worker-framework adapter); it is stopped before the node stops. */
  async use(plugin: PesPlugin): Promise<this> {
    this.#assertRunning();
    await plugin.setup(this);
    this.#plugins.push(plugin);
    return this;
  }

  /** The local registration of `name`, when an owner on this node holds it. */
  registration(name: string): Registration | undefined {
    return this.#registry.registration(name);
  }

  /** Where peers reach this node (an ephemeral port already resolved). */
  get endpoint(): string {
    return this.#transport.endpoint;
  }

  /** Members of the cluster: the majority base. */
  nodes(): readonly string[] {
    return this.#membership.ids();
  }

  /** Members currently reachable from this node (this node included). */
  liveNodes(): readonly string[] {
    return this.#membership.ids().filter((id) => this.#transport.reachable(id));
  }

  /** Cluster-wide settings: `get` reads this node's view, `set` changes it everywhere (by gossip). */
  readonly config = {
    get: (key: SettingKey): number => this.#config.get(key),
    set: (key: SettingKey, value: number): void => {
      this.#assertRunning();
      this.#config.set(key, value);
      this.#gossip();
    },
    all: (): Readonly<Settings> => ({ ...this.#config.values }),
  };

  stat(): PesStat {
    const a = this.#acceptor.stats;
    return {
      node: this.id,
      incarnation: this.incarnation,
      members: this.nodes(),
      liveMembers: this.liveNodes(),
      voting: this.#acceptor.voting,
      activeGuards: this.#registry.activeGuards,
      heldNames: this.#registry.heldNames,
      register: this.#registry.registerLatency.summary(),
      lookup: this.#registry.lookupLatency.summary(),
      rates: {
        requests: this.#rates.requests.rate(),
        acks: this.#rates.acks.rate(),
        nacks: this.#rates.nacks.rate(),
        repairs: this.#rates.repairs.rate(),
      },
      acceptor: { ...a, entries: this.#acceptor.size, requests: this.#inbox.requests, rejected: this.#inbox.rejected },
      renewer: { ...this.#renewer.stats },
      transport: this.#transport.stats(),
    };
  }

  /** Whether this node's acceptor votes yet (see DESIGN: restarts without state). */
  get voting(): boolean {
    return this.#acceptor.voting;
  }

  /**
   * Stops the node: owners exit, their names are unregistered (best effort, bounded by one phase), then
   * every timer, socket and listener is released. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    if (this.#signalHandler !== undefined) {
      process.off('SIGTERM', this.#signalHandler);
      process.off('SIGINT', this.#signalHandler);
    }
    for (const p of this.#plugins.splice(0).reverse()) await Promise.resolve(p.stop?.()).catch(() => {});
    await this.#singletons.stop();
    this.#periodic.stop();
    this.#recovery.stop();
    this.#watches.stop();
    const released = this.#registry.releaseAll(this.#phaseTimeout);
    this.#owners.exitAll('stopped');
    await released;
    this.#renewer.stop();
    this.#rpc.stop();
    await this.#transport.stop();
    this.events.removeAllListeners();
    this.#state = 'stopped';
  }

  /**
   * Test hook: ends the node as `kill -9` would. Nothing more is sent (no tombstones); owners and
   * guards vanish with it and its names expire on the other nodes.
   * @internal
   */
  async crash(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#periodic.stop();
    this.#recovery.stop();
    this.#watches.stop();
    this.#renewer.stop();
    this.#rpc.stop();
    await this.#transport.stop();
    this.#registry.killAll();
    this.events.removeAllListeners();
  }

  /**
   * Test hook: hands raw bytes to the transport as if a peer had sent them (in-memory transport only).
   * @internal
   */
  injectFrame(bytes: Uint8Array): void {
    const t = this.#transport as Transport & { injectRaw?: (b: Uint8Array) => void };
    t.injectRaw?.(bytes);
  }

  /** Test hook: the acceptor, for inspection. */
  get acceptor(): Acceptor {
    return this.#acceptor;
  }

  // ---- internals -----------------------------------------------------------------------------------

  #assertRunning(): void {
    if (this.#state !== 'running') throw new StoppedError();
  }

  /** Operations need a running node that is a member: a non-member has no quorum to ask. */
  #assertMember(name: string): void {
    this.#assertRunning();
    if (!this.#membership.has(this.id)) throw new NoConsensusError(name, 0, 1);
  }

  #gossipMessage(): GossipMsg {
    return { type: 'gossip', members: this.#membership.list(), config: this.#config.entries() };
  }

  #gossip(): void {
    const msg = this.#gossipMessage();
    for (const id of this.#membership.ids()) if (id !== this.id) this.#rpc.send(id, msg);
  }
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(name, `${name} must be a positive number`);
  return v;
}
