/**
 * An in-process mesh for tests: every node of a {@link MemoryNetwork} gets a {@link MemoryTransport}.
 * Frames go through the real codec and are delivered by the network's clock after a delay, so a test on a
 * ManualClock is deterministic. Switches model the failures a real network has: partitions, loss,
 * delay and its jitter (which reorders), and duplication, all drawn from one seeded generator.
 */
import type { Clock } from '../clock.js';
import { decodeFrame, encodeFrame } from '../protocol/codec.js';
import { PROTOCOL_VERSION, type Message } from '../protocol/messages.js';
import {
  emptyTransportStats, type FrameHandler, type LivenessHandler, type PeerAddress, type Transport, type TransportStats,
} from './transport.js';

/** A small seeded generator (mulberry32): the same seed gives the same failures. */
export class Random {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A number in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty list');
    return item;
  }
}

/** The network's failure switches. */
export interface NetworkConditions {
  /** Probability that a frame is lost. */
  loss: number;
  /** Probability that a frame is delivered twice. */
  duplicate: number;
  /** Delivery delay range in ms; a spread reorders frames. */
  minDelay: number;
  maxDelay: number;
}

/** The in-memory network: nodes, links, and the switches tests flip. */
export class MemoryNetwork {
  readonly clock: Clock;
  readonly random: Random;
  readonly conditions: NetworkConditions = { loss: 0, duplicate: 0, minDelay: 0, maxDelay: 0 };
  readonly #nodes = new Map<string, MemoryTransport>();
  /** Directed links that are cut, as "from>to". */
  readonly #cut = new Set<string>();

  constructor(clock: Clock, seed = 1) {
    this.clock = clock;
    this.random = new Random(seed);
  }

  /** Sets some of the failure switches. */
  set(conditions: Partial<NetworkConditions>): void {
    Object.assign(this.conditions, conditions);
  }

  /** Cuts every link between the groups (nodes in no group keep their links). */
  partition(...groups: readonly (readonly string[])[]): void {
    for (const a of groups) for (const b of groups) {
      if (a === b) continue;
      for (const x of a) for (const y of b) this.#cut.add(`${x}>${y}`);
    }
    this.#notifyAll();
  }

  /** Cuts one node off from every other. */
  isolate(id: string): void {
    for (const other of this.#nodes.keys()) {
      if (other === id) continue;
      this.#cut.add(`${id}>${other}`);
      this.#cut.add(`${other}>${id}`);
    }
    this.#notifyAll();
  }

  /** Cuts one direction only (from -> to). */
  cutOneWay(from: string, to: string): void {
    this.#cut.add(`${from}>${to}`);
    this.#notifyAll();
  }

  /** Restores every link. */
  heal(): void {
    this.#cut.clear();
    this.#notifyAll();
  }

  /** Whether frames from `from` currently reach `to`. */
  linked(from: string, to: string): boolean {
    if (from === to) return true;
    const target = this.#nodes.get(to);
    return target !== undefined && target.running && !this.#cut.has(`${from}>${to}`) && !this.#cut.has(`${to}>${from}`);
  }

  /** @internal */
  attach(t: MemoryTransport): void {
    this.#nodes.set(t.id, t);
    this.#notifyAll();
  }

  /** @internal */
  detach(t: MemoryTransport): void {
    if (this.#nodes.get(t.id) === t) this.#nodes.delete(t.id);
    this.#notifyAll();
  }

  /** @internal Delivers one encoded frame with the current conditions. */
  deliver(from: string, to: string, bytes: Buffer): boolean {
    if (!this.linked(from, to)) return false;
    const c = this.conditions;
    if (from !== to && c.loss > 0 && this.random.next() < c.loss) return true;
    const copies = from !== to && c.duplicate > 0 && this.random.next() < c.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = from === to ? 0 : c.minDelay + (c.maxDelay > c.minDelay ? this.random.next() * (c.maxDelay - c.minDelay) : 0);
      this.clock.setTimeout(() => {
        // A link cut while the frame was in flight loses it, as a real partition would.
        if (!this.linked(from, to)) return;
        this.#nodes.get(to)?.receive(bytes);
      }, delay);
    }
    return true;
  }

  #notifyAll(): void {
    for (const t of this.#nodes.values()) t.refreshLiveness();
  }
}

/** A transport on a {@link MemoryNetwork}. */
export class MemoryTransport implements Transport {
  readonly id: string;
  readonly incarnation: number;
  readonly endpoint: string;
  running = false;
  readonly #net: MemoryNetwork;
  readonly #peers = new Set<string>();
  /** Peers known by another id than their node's (a seed known only by its endpoint). */
  readonly #alias = new Map<string, string>();
  readonly #up = new Map<string, boolean>();
  readonly #stats = emptyTransportStats();
  #outbox = new Map<string, Message[]>();
  #flushScheduled = false;
  #onFrame: FrameHandler | undefined;
  #onLiveness: LivenessHandler | undefined;

  constructor(net: MemoryNetwork, id: string, incarnation: number) {
    this.#net = net;
    this.id = id;
    this.incarnation = incarnation;
    this.endpoint = `memory://${id}`;
  }

  async start(onFrame: FrameHandler, onLiveness: LivenessHandler): Promise<void> {
    this.#onFrame = onFrame;
    this.#onLiveness = onLiveness;
    this.running = true;
    this.#net.attach(this);
  }

  send(target: string, message: Message): void {
    if (!this.running) return;
    const peer = this.#alias.get(target) ?? target;
    let q = this.#outbox.get(peer);
    if (q === undefined) this.#outbox.set(peer, (q = []));
    q.push(message);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#outbox;
    this.#outbox = new Map();
    if (!this.running) return;
    for (const [peer, messages] of out) {
      const bytes = encodeFrame({ version: PROTOCOL_VERSION, sender: this.id, inc: this.incarnation, messages });
      if (this.#net.deliver(this.id, peer, bytes)) {
        this.#stats.framesSent++;
        this.#stats.messagesSent += messages.length;
        this.#stats.bytesSent += bytes.byteLength;
      } else {
        this.#stats.dropped += messages.length;
      }
    }
  }

  /** @internal Called by the network with a frame for this node. */
  receive(bytes: Uint8Array): void {
    if (!this.running) return;
    this.#stats.bytesReceived += bytes.byteLength;
    const r = decodeFrame(bytes);
    if (!r.ok) {
      this.#stats.badFrames++;
      return;
    }
    this.#stats.framesReceived++;
    this.#stats.messagesReceived += r.frame.messages.length;
    this.#onFrame?.(r.frame.sender, r.frame.inc, r.frame.messages);
  }

  /** Injects raw bytes as if a peer had sent them (fuzzing and rogue-peer tests). */
  injectRaw(bytes: Uint8Array): void {
    this.receive(bytes);
  }

  addPeer(peer: PeerAddress): void {
    const node = peer.endpoint.startsWith('memory://') ? peer.endpoint.slice('memory://'.length) : peer.id;
    if (node !== peer.id) this.#alias.set(peer.id, node);
    if (peer.id === this.id) return;
    this.#peers.add(peer.id);
    this.refreshLiveness();
  }

  removePeer(peer: string): void {
    this.#alias.delete(peer);
    this.#peers.delete(peer);
    this.#up.delete(peer);
  }

  reachable(peer: string): boolean {
    return peer === this.id || (this.running && this.#net.linked(this.id, peer));
  }

  /** @internal Re-evaluates reachability of every peer and reports changes. */
  refreshLiveness(): void {
    if (!this.running) return;
    for (const p of this.#peers) {
      const up = this.#net.linked(this.id, p);
      if (this.#up.get(p) !== up) {
        this.#up.set(p, up);
        this.#onLiveness?.(p, up);
      }
    }
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.#outbox.clear();
    this.#net.detach(this);
  }
}
