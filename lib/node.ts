/**
 * PesNode: one member of a pes cluster. It holds the node's parts (built and connected in
 * node-wiring.ts: transport -> request layer -> acceptor and registry -> guards -> renewer), runs their
 * lifecycle (start, join, stop) and exposes the public API. Data flows one way: API -> registry ->
 * guard -> transport -> acceptors on every node -> replies -> guard -> owner and events.
 */
import { EventEmitter } from 'eventemitter3';
import type { Acceptor } from './acceptor/acceptor.js';
import type { Clock } from './clock.js';
import type { SettingKey, Settings } from './cluster/config.js';
import { hookDrainOnSignal } from './drain-on-signal.js';
import { InvalidArgumentError, NoConsensusError, StoppedError } from './errors.js';
import type { PesEvents } from './events.js';
import { validateName } from './name.js';
import { wireNode, type NodeParts } from './node-wiring.js';
import type { PesOptions, PesStat } from './options.js';
import type { Owner, OwnerHandler } from './owner.js';
import type { PesPlugin } from './plugin.js';
import type { MemberList, OwnerRef } from './protocol/messages.js';
import type { Registration } from './registration.js';
import type { CallOptions, LookupResult } from './registry.js';
import type { DrainReport, Singleton, SingletonSpec, TransferReport } from './singleton.js';
import type { Transport } from './transport/transport.js';
import type { Watch, WatchTarget } from './watch.js';
export type { PesOptions, PesStat } from './options.js';

export class PesNode {
  readonly id: string;
  readonly incarnation: number;
  readonly clock: Clock;
  readonly events = new EventEmitter<PesEvents>();
  /** The parts this node wires together (see node-wiring.ts). */
  readonly #p: NodeParts;
  readonly #drainOnSignal: PesOptions['drainOnSignal'];
  readonly #plugins: PesPlugin[] = [];
  #unhookSignals: (() => void) | undefined;
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  /** Use {@link Pes.start}. */
  constructor(options: PesOptions = {}) {
    this.#p = wireNode(options, {
      events: this.events,
      // While stopping, the acceptor still answers: the node's own tombstones need its vote too.
      serving: () => this.#state === 'running' || this.#state === 'stopping',
      register: (name, owner) => this.register(name, owner),
      update: (name, to) => this.update(name, to),
      registration: (name) => this.registration(name),
      lookup: (name) => this.lookup(name),
    });
    this.id = this.#p.id;
    this.incarnation = this.#p.incarnation;
    this.clock = this.#p.clock;
    this.#drainOnSignal = options.drainOnSignal;
  }

  /** Starts the transport, then decides when the acceptor may vote. */
  async start(): Promise<this> {
    if (this.#state !== 'new') return this;
    this.#state = 'running';
    this.#unhookSignals = hookDrainOnSignal(this.#drainOnSignal, this);
    await this.#p.transport.start(
      (from, inc, messages) => {
        // After a pause, revoke expired leases before handling anything (input may run before timers).
        this.#p.renewer.checkOverdue();
        this.#p.inbox.onFrame(from, inc, messages);
      },
      (peer, up) => {
        if (!up) this.#p.watches.onNodeDown(peer);
        this.events.emit(up ? 'nodeup' : 'nodedown', peer);
      },
    );
    // The list was made before the transport bound: an ephemeral port (:0) is only now known.
    const list = this.#p.membership.list();
    const me = list.members.find((m) => m.id === this.id);
    if (me !== undefined && me.endpoint !== this.#p.transport.endpoint) {
      this.#p.membership.replace({ version: list.version, members: list.members.map((m) => (m.id === this.id ? this.#p.self() : m)) });
    }
    for (const m of this.#p.membership.list().members) this.#p.transport.addPeer(m);
    this.#p.periodic.start();
    if (this.#p.seeds.length === 0) {
      this.#p.recovery.start();
      return this;
    }
    try {
      await this.#p.changes.joinAny(this.#p.seeds, this.#p.joinTimeout, this.#p.timeout, () => this.#state === 'running');
      this.#p.recovery.start();
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
   * count differs from the cluster's. With CURVE on, pass the seed's public key. Also resolves when a
   * newer member list naming this node at its endpoint reaches it first (the seed added it, then died).
   */
  async join(endpoint: string, publicKey?: string): Promise<void> {
    this.#assertRunning();
    await this.#p.changes.join(endpoint, publicKey, this.#p.timeout);
    this.#p.recovery.start();
  }

  /**
   * Removes a member from the cluster (this node by default; a dead node too). Names its guards hold
   * keep their owners only while the rest renew them: a removed node's renewals are not counted.
   */
  async leave(node: string = this.id): Promise<MemberList> {
    this.#assertRunning();
    return this.#p.changes.remove(node);
  }

  // ---- public API ----------------------------------------------------------------------------------

  /** A new local owner handle (the seed's process). `handler` receives messages sent to its names. */
  spawn(handler?: OwnerHandler): Owner {
    this.#assertRunning();
    return this.#p.owners.spawn(handler);
  }

  /** Registers `name` for `owner`. Rejects with AlreadyRegisteredError, NoConsensusError, TimeoutError... */
  async register(name: string, owner: Owner, opts?: CallOptions): Promise<Registration> {
    validateName(name);
    if (name.startsWith('$pes/')) throw new InvalidArgumentError('name', 'names starting with $pes/ are reserved');
    this.#assertMember(name);
    return this.#p.registry.register(name, owner, opts);
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
    return this.#p.registry.whereis(name, opts);
  }

  /** Owner, guard, node and fencing token of `name`, or undefined. */
  async lookup(name: string, opts?: CallOptions): Promise<LookupResult | undefined> {
    this.#assertMember(name);
    return this.#p.registry.lookup(name, opts);
  }

  /** Ends the registration of `name` wherever its guard runs; resolves when absent too. */
  async unregister(name: string, opts?: CallOptions): Promise<void> {
    this.#assertMember(name);
    return this.#p.registry.unregister(name, opts);
  }

  /** Hands `name` to another owner (on any node); the old owner is revoked first. NotFoundError when absent. */
  async update(name: string, to: Owner | OwnerRef, opts?: CallOptions): Promise<void> {
    this.#assertMember(name);
    return this.#p.registry.update(name, to, opts);
  }

  /** Sends `message` to the owner of `name`; returns its ref. NotRegisteredError when nobody holds it. */
  async send(name: string, message: unknown, opts?: CallOptions): Promise<OwnerRef> {
    this.#assertMember(name);
    return this.#p.delivery.send(name, message, opts);
  }

  /** Sends `message` and waits for the owner handler's result. */
  async call(name: string, message: unknown, opts?: CallOptions): Promise<unknown> {
    this.#assertMember(name);
    return this.#p.delivery.call(name, message, opts);
  }

  /**
   * Follows ownership changes of one name, or of every name with a prefix (`'jobs/*'`; `'*'` for all),
   * as seen by this node: first a snapshot of current owners, then each change once, in token order per
   * name. Iterate it (`for await`) or listen to its 'change' event; `close()` it when done.
   */
  watch(target: WatchTarget): Watch {
    this.#assertRunning();
    return this.#p.watches.watch(target);
  }

  /**
   * Declares a singleton: every node declares the same one, exactly one runs it. See SingletonSpec for
   * start/stop/handoff and the hooks; standby nodes take over when the owner, its node or its lease dies.
   */
  singleton<S>(name: string, spec: SingletonSpec<S>): Singleton<S> {
    validateName(name);
    this.#assertRunning();
    return this.#p.singletons.declare(name, spec);
  }

  /** Moves singleton `name` to node `to`: old owner stopped and its state captured first, no overlap. */
  async transfer(name: string, to: string): Promise<TransferReport> {
    this.#assertMember(name);
    return this.#p.singletons.transfer(name, to);
  }

  /**
   * Moves every singleton this node runs to other live nodes (for a deploy), and stops contending for
   * them here. Singletons with nowhere to go are stopped. Resolves with what moved and each gap.
   * The other live nodes are asked at once whether they declare each singleton, each for one phase, so
   * a peer that died a moment ago does not hold the drain.
   */
  async drain(opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<DrainReport> {
    this.#assertRunning();
    return this.#p.singletons.drain(opts);
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
    return this.#p.registry.registration(name);
  }

  /** Where peers reach this node (an ephemeral port already resolved). */
  get endpoint(): string {
    return this.#p.transport.endpoint;
  }

  /** Members of the cluster: the majority base. */
  nodes(): readonly string[] {
    return this.#p.membership.ids();
  }

  /** Members currently reachable from this node (this node included). */
  liveNodes(): readonly string[] {
    return this.#p.liveNodes();
  }

  /** Cluster-wide settings: `get` reads this node's view, `set` changes it everywhere (by gossip). */
  readonly config = {
    get: (key: SettingKey): number => this.#p.config.get(key),
    set: (key: SettingKey, value: number): void => {
      this.#assertRunning();
      this.#p.config.set(key, value);
      this.#p.gossip.spread();
    },
    all: (): Readonly<Settings> => ({ ...this.#p.config.values }),
  };

  stat(): PesStat {
    return this.#p.stats.report();
  }

  /** Whether this node's acceptor votes yet (see DESIGN: restarts without state). */
  get voting(): boolean {
    return this.#p.acceptor.voting;
  }

  /**
   * Stops the node: owners exit, their names are unregistered (best effort, bounded by one phase), then
   * every timer, socket and listener is released. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    this.#unhookSignals?.();
    for (const p of this.#plugins.splice(0).reverse()) await Promise.resolve(p.stop?.()).catch(() => {});
    await this.#p.singletons.stop();
    this.#p.periodic.stop();
    this.#p.recovery.stop();
    this.#p.watches.stop();
    const released = this.#p.registry.releaseAll(this.#p.phaseTimeout);
    this.#p.owners.exitAll('stopped');
    await released;
    this.#p.renewer.stop();
    this.#p.rpc.stop();
    await this.#p.transport.stop();
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
    this.#p.periodic.stop();
    this.#p.recovery.stop();
    this.#p.watches.stop();
    this.#p.renewer.stop();
    this.#p.rpc.stop();
    await this.#p.transport.stop();
    this.#p.registry.killAll();
    this.events.removeAllListeners();
  }

  /**
   * Test hook: hands raw bytes to the transport as if a peer had sent them (in-memory transport only).
   * @internal
   */
  injectFrame(bytes: Uint8Array): void {
    const t = this.#p.transport as Transport & { injectRaw?: (b: Uint8Array) => void };
    t.injectRaw?.(bytes);
  }

  /** Test hook: the acceptor, for inspection. */
  get acceptor(): Acceptor {
    return this.#p.acceptor;
  }

  // ---- internals -----------------------------------------------------------------------------------

  #assertRunning(): void {
    if (this.#state !== 'running') throw new StoppedError();
  }

  /** Operations need a running node that is a member: a non-member has no quorum to ask. */
  #assertMember(name: string): void {
    this.#assertRunning();
    if (!this.#p.membership.has(this.id)) throw new NoConsensusError(name, 0, 1);
  }
}
