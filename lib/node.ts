/**
 * PesNode: one member of a pes cluster. It wires the parts together (transport -> request layer ->
 * acceptor and registry -> guards -> renewer) and exposes the public API. Data flows one way: API ->
 * registry -> guard -> transport -> acceptors on every node -> replies -> guard -> owner and events.
 */
import { EventEmitter } from 'eventemitter3';
import { Acceptor } from './acceptor/acceptor.js';
import { SystemClock, type Clock, type TimerHandle } from './clock.js';
import { ClusterConfig, type SettingKey, type Settings } from './cluster/config.js';
import { Membership } from './cluster/membership.js';
import { Recovery } from './cluster/recovery.js';
import { Delivery } from './delivery.js';
import { InvalidArgumentError, StoppedError } from './errors.js';
import type { PesEvents } from './events.js';
import { effectiveHeartbeat, expiryDuration } from './guard/lease.js';
import { Renewer } from './guard/renewer.js';
import type { Owner, OwnerHandler } from './owner.js';
import { OwnerTable } from './owner.js';
import type { MemberInfo, Message, OwnerRef, RequestMsg } from './protocol/messages.js';
import type { Registration } from './registration.js';
import { Registry, type CallOptions, type LookupResult } from './registry.js';
import { Rpc } from './rpc.js';
import { LatencyWindow, RateMeter, type LatencySummary } from './stats.js';
import { MemoryNetwork, MemoryTransport } from './transport/memory.js';
import type { Transport, TransportStats } from './transport/transport.js';
import type { AcceptorStats } from './acceptor/acceptor.js';
import type { RenewerStats } from './guard/renewer.js';

/** Options of {@link Pes.start}. Every field is optional: with none, the node is a single-node cluster. */
export interface PesOptions {
  /** Node id, unique in the cluster (default: a random one). */
  readonly id?: string;
  /** The transport (default: an in-process one, enough for a single-node cluster). */
  readonly transport?: Transport;
  /** The clock (default: the system's monotonic clock). */
  readonly clock?: Clock;
  /** Initial member list (default: this node alone). Must include this node. */
  readonly members?: readonly MemberInfo[];
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

const ACCEPTOR_REQUESTS: ReadonlySet<string> = new Set(['read', 'prep', 'com', 'rep', 'abandon', 'renew', 'sync']);

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
  readonly #random: () => number;
  readonly #phaseTimeout: number;
  readonly #gossipInterval: number;
  readonly #peerInc = new Map<string, number>();
  readonly #rates: Record<'requests' | 'acks' | 'nacks' | 'repairs', RateMeter>;
  #requests = 0;
  #rejected = 0;
  #gossipTimer: TimerHandle | undefined;
  #cleanupTimer: TimerHandle | undefined;
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
    const members = options.members ?? [{ id: this.id, endpoint: this.#transport.endpoint }];
    if (!members.some((m) => m.id === this.id)) throw new InvalidArgumentError('members', 'members must include this node');
    this.#membership = new Membership(this.id, { version: 1, members });
    this.#config = new ClusterConfig(this.id, options.settings);
    this.#rpc = new Rpc({ transport: this.#transport });
    const termFloor = Math.floor(this.clock.wallNow()) * 1000;
    this.#acceptor = new Acceptor(
      { clock: this.clock, settings: () => this.#config.values },
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
      { node: this.id, incarnation: this.incarnation, termFloor: () => Math.max(termFloor, this.#acceptor.floor), phaseTimeout: this.#phaseTimeout, timeout },
    );
    this.#delivery = new Delivery({ clock: this.clock, rpc: this.#rpc, owners: this.#owners, registry: this.#registry, timeout });
    this.#recovery = new Recovery({
      clock: this.clock, rpc: this.#rpc, self: this.id, members: () => this.#membership.ids(),
      period: () => expiryDuration(hb()) + hb(), retryMs: this.#phaseTimeout * 2, onVote: () => this.#acceptor.startVoting(),
    });
    this.#rates = { requests: new RateMeter(this.clock), acks: new RateMeter(this.clock), nacks: new RateMeter(this.clock), repairs: new RateMeter(this.clock) };
    this.#membership.onChange((ids) => {
      for (const m of this.#membership.list().members) this.#transport.addPeer(m);
      this.events.emit('members', ids);
    });
    this.#config.onChange((key, value) => this.events.emit('config', key, value));
    this.#rpc.onRequest((from, m) => this.#onRequest(from, m));
  }

  /** Starts the transport, then decides when the acceptor may vote. */
  async start(): Promise<this> {
    if (this.#state !== 'new') return this;
    this.#state = 'running';
    await this.#transport.start(
      (from, inc, messages) => this.#onFrame(from, inc, messages),
      (peer, up) => this.events.emit(up ? 'nodeup' : 'nodedown', peer),
    );
    for (const m of this.#membership.list().members) this.#transport.addPeer(m);
    this.#recovery.start();
    this.#scheduleGossip();
    this.#scheduleCleanup();
    return this;
  }

  // ---- public API ----------------------------------------------------------------------------------

  /** A new local owner handle (the seed's process). `handler` receives messages sent to its names. */
  spawn(handler?: OwnerHandler): Owner {
    this.#assertRunning();
    return this.#owners.spawn(handler);
  }

  /** Registers `name` for `owner`. Rejects with AlreadyRegisteredError, NoConsensusError, TimeoutError... */
  register(name: string, owner: Owner, opts?: CallOptions): Promise<Registration> {
    this.#assertRunning();
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
  whereis(name: string, opts?: CallOptions): Promise<OwnerRef | undefined> {
    this.#assertRunning();
    return this.#registry.whereis(name, opts);
  }

  /** Owner, guard, node and fencing token of `name`, or undefined. */
  lookup(name: string, opts?: CallOptions): Promise<LookupResult | undefined> {
    this.#assertRunning();
    return this.#registry.lookup(name, opts);
  }

  /** Ends the registration of `name` wherever its guard runs; resolves when absent too. */
  unregister(name: string, opts?: CallOptions): Promise<void> {
    this.#assertRunning();
    return this.#registry.unregister(name, opts);
  }

  /** Hands `name` to another owner (on any node); the old owner is revoked first. NotFoundError when absent. */
  update(name: string, to: Owner | OwnerRef, opts?: CallOptions): Promise<void> {
    this.#assertRunning();
    return this.#registry.update(name, to, opts);
  }

  /** Sends `message` to the owner of `name`; returns its ref. NotRegisteredError when nobody holds it. */
  send(name: string, message: unknown, opts?: CallOptions): Promise<OwnerRef> {
    this.#assertRunning();
    return this.#delivery.send(name, message, opts);
  }

  /** Sends `message` and waits for the owner handler's result. */
  call(name: string, message: unknown, opts?: CallOptions): Promise<unknown> {
    this.#assertRunning();
    return this.#delivery.call(name, message, opts);
  }

  /** The local registration of `name`, when an owner on this node holds it. */
  registration(name: string): Registration | undefined {
    return this.#registry.registration(name);
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
        requests: this.#rates.requests.rate(this.#requests),
        acks: this.#rates.acks.rate(a.acks + a.renewals),
        nacks: this.#rates.nacks.rate(a.nacks + a.renewMismatches),
        repairs: this.#rates.repairs.rate(a.repairs),
      },
      acceptor: { ...a, entries: this.#acceptor.size, requests: this.#requests, rejected: this.#rejected },
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
    this.#clearTimers();
    this.#recovery.stop();
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
    this.#clearTimers();
    this.#recovery.stop();
    this.#renewer.stop();
    this.#rpc.stop();
    await this.#transport.stop();
    this.#registry.killAll();
    this.events.removeAllListeners();
  }

  /** Test hook: the acceptor, for inspection. */
  get acceptor(): Acceptor {
    return this.#acceptor;
  }

  // ---- internals -----------------------------------------------------------------------------------

  #assertRunning(): void {
    if (this.#state !== 'running') throw new StoppedError();
  }

  #onFrame(from: string, inc: number, messages: readonly Message[]): void {
    const known = this.#peerInc.get(from);
    // Traffic queued by a previous life of the peer is dropped.
    if (known !== undefined && inc < known) return;
    if (known !== inc) this.#peerInc.set(from, inc);
    for (const m of messages) this.#rpc.dispatch(from, m);
  }

  #onRequest(from: string, m: RequestMsg | Message): void {
    // While stopping, the acceptor still answers: the node's own tombstones need its vote too.
    if (this.#state !== 'running' && this.#state !== 'stopping') return;
    if (ACCEPTOR_REQUESTS.has(m.type) || m.type === 'hello') {
      if (!this.#membership.has(from)) {
        this.#rejected++;
        return;
      }
      this.#requests++;
    }
    const a = this.#acceptor;
    const reply = (r: Message): void => this.#rpc.send(from, r);
    switch (m.type) {
      case 'read': return reply(a.read(m));
      case 'prep': return reply(a.prepare(m));
      case 'com': return reply(a.commit(m));
      case 'rep': return reply(a.repair(m));
      case 'abandon': return a.abandon(m);
      case 'renew': return reply(a.renew(from, m));
      case 'sync': return reply(a.sync(from, m));
      case 'hello': return reply({ type: 'helloR', rid: m.rid, empty: a.empty });
      case 'probe': return this.#registry.probe(from, m);
      case 'hoff': return this.#registry.handoffOffer(from, m);
      case 'hgo': return this.#registry.handoffGo(from, m);
      case 'fwd': return this.#registry.forwarded(from, m);
      case 'msg': return this.#delivery.handle(from, m);
      case 'ping': return reply({ type: 'pong', rid: m.rid });
      case 'gossip':
        if (!this.#membership.has(from)) return;
        this.#membership.merge(m.members);
        this.#config.merge(m.config);
        return;
      default:
        return;
    }
  }

  #gossip(): void {
    const msg = { type: 'gossip', members: this.#membership.list(), config: this.#config.entries() } as const;
    for (const id of this.#membership.ids()) if (id !== this.id) this.#rpc.send(id, msg);
  }

  #scheduleGossip(): void {
    this.#gossipTimer = this.clock.setTimeout(() => {
      this.#gossip();
      this.#scheduleGossip();
    }, this.#gossipInterval);
  }

  #scheduleCleanup(): void {
    const period = this.#config.get('cleanupPeriod');
    this.#cleanupTimer = this.clock.setTimeout(() => {
      this.#acceptor.cleanup();
      this.#scheduleCleanup();
    }, period + this.#random() * Math.min(1000, period / 5));
  }

  #clearTimers(): void {
    this.clock.clearTimeout(this.#gossipTimer);
    this.clock.clearTimeout(this.#cleanupTimer);
    this.#gossipTimer = undefined;
    this.#cleanupTimer = undefined;
  }
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(name, `${name} must be a positive number`);
  return v;
}

/** The entry point: `const node = await Pes.start(options)`. */
export const Pes = {
  /** Creates and starts a node. With no options: a working single-node cluster. */
  async start(options: PesOptions = {}): Promise<PesNode> {
    return new PesNode(options).start();
  },
};
