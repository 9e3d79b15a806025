/**
 * The ZeroMQ mesh: each node binds one ROUTER (its inbox) and connects one DEALER per peer (its outbox,
 * routing id = own node id). One ZeroMQ message carries one frame (see `protocol/codec.ts`); messages to
 * one peer within one event-loop turn travel in one frame. Liveness is an application-level ping on top
 * of ZMTP heartbeats (`zmq-liveness.ts`).
 *
 * This file and its `zmq-*.ts` plumbing (options, CURVE and ZAP, liveness, one outbox, the pool of
 * outboxes, replies to callers that are no peer) are the only code that imports `zeromq`.
 */
import * as zmq from 'zeromq';
import type { Clock } from '../clock.js';
import { InvalidArgumentError, StoppedError } from '../errors.js';
import { LIMITS, decodeFrame, encodeFrame } from '../protocol/codec.js';
import { splitBySize } from './frame-size.js';
import { PROTOCOL_VERSION, type Message } from '../protocol/messages.js';
import {
  emptyTransportStats, type FrameHandler, type LivenessHandler, type Transport, type TransportStats,
} from './transport.js';
import { ZAP_DOMAIN, ZapAuthenticator, isZ85Key } from './zmq-curve.js';
import {
  checkEndpoint, resolveZmqOptions, type ResolvedZmqOptions, type ZmqPeerAddress, type ZmqTransportOptions,
} from './zmq-options.js';
import { Batcher } from './batcher.js';
import { guarded } from './guarded.js';
import { CallerReplies } from './zmq-callers.js';
import { PeerLiveness } from './zmq-liveness.js';
import type { Outbox } from './zmq-outbox.js';
import { OutboxPool } from './zmq-outboxes.js';

export { generateCurveKeyPair, type CurveKeyPair, type CurveOptions } from './zmq-curve.js';
export {
  ZMQ_DEFAULTS, type ZmqLimits, type ZmqPeerAddress, type ZmqPingOptions, type ZmqTransportOptions,
} from './zmq-options.js';

/**
 * Longest a lazy message (a grant notice, say) waits for company, in ms. Each frame costs a wake-up of
 * the receiving process; on a busy cluster notices share frames with requests and with each other.
 */
const LAZY_MS = 5;

/** Components {@link ZmqTransport} takes. */
export interface ZmqTransportComponents {
  readonly clock: Clock;
}

/** {@link TransportStats} plus what only a ZeroMQ mesh can count. */
export interface ZmqTransportStats extends TransportStats {
  /** Inbound connections whose ZMTP or CURVE handshake failed (bad key, no key, refused by ZAP). */
  handshakeFailures: number;
}

interface PeerState {
  address: ZmqPeerAddress;
  outbox: Outbox | undefined;
}

type Phase = 'new' | 'starting' | 'running' | 'stopped';

/**
 * A {@link Transport} over ZeroMQ. Behaves towards the layer above like `MemoryTransport`: batching per
 * turn, strict decoding (bad frames are counted, never delivered), best-effort delivery, sends that never
 * throw. A peer starts unknown (not reachable); it is reported up on its first valid frame, and down
 * after `ping.timeout` ms without one. `ping`/`pong` messages are consumed here, never delivered, but
 * they are counted in the stats like any message (so `dropped` grows by one per interval per dead peer).
 *
 * One instance runs once: `start()` after `stop()` rejects; a restarted node is a new instance (with a
 * higher incarnation).
 *
 * @example
 * ```ts
 * const t = new ZmqTransport({ clock: new SystemClock() }, { id: 'n1' });
 * await t.start(onFrame, onLiveness);
 * t.addPeer({ id: 'n2', endpoint: 'tcp://127.0.0.1:7002' });
 * t.send('n2', { type: 'hello', rid: 1 });
 * ```
 */
export class ZmqTransport implements Transport {
  readonly id: string;
  readonly incarnation: number;
  readonly #clock: Clock;
  readonly #o: ResolvedZmqOptions;
  readonly #route: Buffer;
  readonly #peers = new Map<string, PeerState>();
  readonly #outboxes: OutboxPool;
  readonly #stats: ZmqTransportStats = { ...emptyTransportStats(), handshakeFailures: 0 };
  #phase: Phase = 'new';
  #endpoint: string;
  #context: zmq.Context | undefined;
  #inbox: zmq.Router | undefined;
  #zap: ZapAuthenticator | undefined;
  #events: zmq.Observer | undefined;
  readonly #liveness: PeerLiveness;
  readonly #batches: Batcher;
  /** Senders that are no peer (a status asker): answered over their own connection. */
  readonly #callers: CallerReplies;
  #onFrame: FrameHandler | undefined;
  #onLiveness: LivenessHandler | undefined;

  /** @throws InvalidArgumentError naming the first bad option (see {@link ZmqTransportOptions}). */
  constructor(components: ZmqTransportComponents, options: ZmqTransportOptions) {
    this.#clock = components.clock;
    this.#o = resolveZmqOptions(options, this.#clock.wallNow());
    this.id = this.#o.id;
    this.incarnation = this.#o.incarnation;
    this.#route = Buffer.from(this.id, 'utf8');
    this.#endpoint = this.#o.bind;
    this.#batches = new Batcher(this.#clock, LAZY_MS, (peer, messages) => this.#sendBatch(peer, messages));
    const sent = (bytes: number, messages: number): void => {
      this.#stats.framesSent++;
      this.#stats.messagesSent += messages;
      this.#stats.bytesSent += bytes;
    };
    const dropped = (messages: number): void => {
      this.#stats.dropped += messages;
    };
    this.#outboxes = new OutboxPool(this.#clock, this.#o, { sent, dropped, received: (parts) => this.#receiveReply(parts) });
    this.#callers = new CallerReplies(this.#clock, { timeout: this.#o.timeout, queueFrames: this.#o.limits.queueFrames }, { sent, dropped });
    this.#liveness = new PeerLiveness(this.#clock, { interval: this.#o.interval, timeout: this.#o.timeout }, {
      ping: (peer, rid) => this.send(peer, { type: 'ping', rid }),
      report: (peer, up) => guarded(() => this.#onLiveness?.(peer, up)),
    });
  }

  /** The bound endpoint; after `start()`, an ephemeral port (`:0`) is resolved to the real one. */
  get endpoint(): string {
    return this.#endpoint;
  }

  /**
   * Binds the inbox (resolving an ephemeral port into {@link endpoint}), connects to the peers added so
   * far and starts pinging them. While running, the pending receive keeps the process alive.
   * @throws StoppedError after stop(); the bind error from ZeroMQ (e.g. EADDRINUSE) when binding fails.
   */
  async start(onFrame: FrameHandler, onLiveness: LivenessHandler): Promise<void> {
    if (this.#phase === 'stopped') throw new StoppedError();
    if (this.#phase !== 'new') throw new InvalidArgumentError('start', 'start() may be called once');
    this.#phase = 'starting';
    this.#onFrame = onFrame;
    this.#onLiveness = onLiveness;
    // An own context per node: the ZAP endpoint is a per-context name, and blocky:false means that even a
    // socket we forgot could never hold the process at exit.
    const context = (this.#context = new zmq.Context({ blocky: false }));
    const curve = this.#o.curve;
    try {
      if (curve !== undefined) {
        // Bound before the inbox exists, so no handshake can slip in while nobody guards the door.
        this.#zap = new ZapAuthenticator(context, curve.allow);
        await this.#zap.start();
        if (this.#stoppedMeanwhile()) return;
      }
      const inbox = (this.#inbox = new zmq.Router({
        context,
        linger: 0,
        receiveHighWaterMark: this.#o.limits.receiveHighWaterMark,
        // Checked by libzmq per ZeroMQ frame, before the bytes reach us; a peer exceeding it is disconnected.
        maxMessageSize: this.#o.limits.frameBytes,
        heartbeatInterval: this.#o.interval,
        heartbeatTimeout: this.#o.timeout,
        heartbeatTimeToLive: this.#o.heartbeatTtl,
        // A restarted peer reconnects with the same routing id while its old connection may linger;
        // without handover the ROUTER would refuse the new one until the old one times out.
        handover: true,
        // A reply to a caller that is gone fails at once instead of being dropped silently.
        mandatory: true,
        sendTimeout: 0,
        ...(curve === undefined ? {} : { curveServer: true, curveSecretKey: curve.secretKey, zapDomain: ZAP_DOMAIN }),
      }));
      this.#events = inbox.events;
      void this.#countHandshakeFailures(this.#events);
      await inbox.bind(this.#o.bind);
      if (this.#stoppedMeanwhile()) return;
      this.#endpoint = inbox.lastEndpoint ?? this.#o.bind;
      this.#phase = 'running';
      void this.#receiveLoop(inbox);
    } catch (err) {
      // A bind that failed because stop() closed the socket under it is no error of start().
      const stopped = this.#stoppedMeanwhile();
      this.#phase = 'stopped';
      this.#closeAll();
      if (!stopped) throw err;
      return;
    }
    for (const peer of this.#peers.values()) peer.outbox = this.#outboxes.acquire(this.#context, peer.address);
    this.#liveness.start();
  }

  /**
   * Queues `message` for `peer`; never throws. To an unknown peer: dropped and counted. To a peer just
   * added: held (bounded) until its connection is up, for at most `ping.timeout` ms. Later, while the
   * peer is unreachable: dropped and counted at once.
   */
  send(peer: string, message: Message, lazy = false): void {
    if (this.#phase !== 'running') return;
    this.#batches.add(peer, message, lazy);
  }

  /**
   * Runs `fn` right after this turn's frames are handed to libzmq (see {@link Transport.afterFlush});
   * when the transport is not running, in a microtask (nothing is sent then anyway).
   */
  afterFlush(fn: () => void): void {
    if (this.#phase !== 'running') queueMicrotask(fn);
    else this.#batches.after(fn);
  }

  /**
   * Starts talking to a peer (idempotent). The same id with a new endpoint or key replaces the DEALER.
   * @throws InvalidArgumentError when the endpoint is not tcp/ipc, or CURVE is on and `publicKey` is
   * missing or malformed (without it the DEALER cannot authenticate the peer's inbox).
   */
  addPeer(peer: ZmqPeerAddress): void {
    if (peer.id === this.id) return;
    checkEndpoint('endpoint', peer.endpoint);
    if (this.#o.curve !== undefined && (peer.publicKey === undefined || !isZ85Key(peer.publicKey))) {
      throw new InvalidArgumentError('publicKey', 'with CURVE on, every peer needs its Z85 public key');
    }
    const address: ZmqPeerAddress = { id: peer.id, endpoint: peer.endpoint, publicKey: peer.publicKey };
    const running = this.#phase === 'running';
    const known = this.#peers.get(peer.id);
    if (known !== undefined) {
      if (known.address.endpoint === address.endpoint && known.address.publicKey === address.publicKey) return;
      if (known.outbox !== undefined) this.#outboxes.release(known.address);
      known.address = address;
      known.outbox = running ? this.#outboxes.acquire(this.#context, address) : undefined;
      return;
    }
    this.#peers.set(peer.id, { address, outbox: running ? this.#outboxes.acquire(this.#context, address) : undefined });
    this.#liveness.add(peer.id);
  }

  /** Stops talking to a peer (idempotent): closes its DEALER, drops and counts what was queued for it. */
  removePeer(peer: string): void {
    const known = this.#peers.get(peer);
    if (known === undefined) return;
    if (known.outbox !== undefined) this.#outboxes.release(known.address);
    this.#peers.delete(peer);
    this.#liveness.remove(peer);
  }

  /** True for this node, and for a peer heard from within `ping.timeout` (as last reported). */
  reachable(peer: string): boolean {
    return peer === this.id || (this.#phase === 'running' && this.#liveness.isUp(peer));
  }

  /** A snapshot of the counters. */
  stats(): ZmqTransportStats {
    return { ...this.#stats };
  }

  /**
   * Closes every socket (linger 0: frames still queued to peers are discarded) and clears every timer;
   * idempotent. Afterwards nothing of this transport keeps the process alive.
   */
  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopped';
    this.#closeAll();
  }

  /** True when stop() ran during an await of start(); closes what start() created after it. */
  #stoppedMeanwhile(): boolean {
    if (this.#phase !== 'stopped') return false;
    this.#closeAll();
    return true;
  }

  #closeAll(): void {
    this.#liveness.stop();
    this.#batches.close();
    for (const peer of this.#peers.values()) peer.outbox = undefined;
    this.#outboxes.closeAll();
    // The observer first, explicitly: see #countHandshakeFailures.
    this.#events?.close();
    this.#events = undefined;
    this.#inbox?.close();
    this.#zap?.close();
    this.#inbox = undefined;
    this.#zap = undefined;
    this.#context = undefined;
  }

  /** A frame a peer sent back over this node's DEALER: only the answer to a status query of a non-member. */
  #receiveReply(parts: readonly Buffer[]): void {
    const [payload, ...extra] = parts;
    const result = payload === undefined || extra.length > 0 ? undefined : decodeFrame(payload);
    // Nothing else may enter the protocol by this path (it skips the check that the sender matches the
    // connection).
    if (payload === undefined || result === undefined || !result.ok || !result.frame.messages.every((m) => m.type === 'statusR')) {
      this.#stats.badFrames++;
      return;
    }
    this.#receive([Buffer.from(result.frame.sender, 'utf8'), payload]);
  }

  /** One peer's batch of a turn: one frame, cut into frames of a few hundred KB when it is large. */
  #sendBatch(peer: string, batch: readonly Message[]): void {
    if (this.#phase !== 'running') return;
    for (const messages of splitBySize(batch)) this.#sendFrames(peer, messages);
  }

  #sendFrames(peer: string, messages: readonly Message[]): void {
    const outbox = this.#peers.get(peer)?.outbox;
    if (peer !== this.id && outbox === undefined) {
      if (this.#callers.answers(peer)) {
        for (const [bytes, count] of this.#encode(messages)) this.#callers.push(() => this.#inbox, peer, bytes, count);
      } else {
        this.#stats.dropped += messages.length;
      }
      return;
    }
    for (const [bytes, count] of this.#encode(messages)) {
      if (outbox !== undefined) {
        outbox.push(bytes, count);
        continue;
      }
      // To ourselves: through the codec and the same checks as any inbound frame, as on the memory mesh.
      this.#stats.framesSent++;
      this.#stats.messagesSent += count;
      this.#stats.bytesSent += bytes.byteLength;
      this.#receive([this.#route, bytes]);
    }
  }

  /** Encodes messages into frames within the limits; a single message too large to send is dropped. */
  #encode(messages: readonly Message[]): (readonly [Buffer, number])[] {
    let bytes: Buffer | undefined;
    try {
      bytes = encodeFrame({ version: PROTOCOL_VERSION, sender: this.id, inc: this.incarnation, messages });
    } catch {
      bytes = undefined; // unencodable content: split to isolate it, drop it alone
    }
    if (bytes !== undefined && bytes.byteLength <= this.#o.limits.frameBytes && messages.length <= LIMITS.messagesPerFrame) {
      return [[bytes, messages.length]];
    }
    if (messages.length <= 1) {
      this.#stats.dropped += messages.length;
      return [];
    }
    const half = messages.length >>> 1;
    return [...this.#encode(messages.slice(0, half)), ...this.#encode(messages.slice(half))];
  }

  /**
   * Reads the inbox's socket events in iterator mode. Not `events.on(...)`: that emitter mode leaves an
   * internal receive loop that cannot be closed cleanly, and about one process in twenty then hung at
   * exit in libzmq's context termination (zeromq 6.8.0, measured here); closing the observer ourselves
   * before the socket, as #closeAll does, never hung in 100 runs.
   */
  async #countHandshakeFailures(events: zmq.Observer): Promise<void> {
    try {
      for await (const event of events) {
        if (event.type.startsWith('handshake:error')) this.#stats.handshakeFailures++;
      }
    } catch {
      // A receive pending when the observer closes settles without an event; the loop is over.
    }
  }

  async #receiveLoop(inbox: zmq.Router): Promise<void> {
    try {
      for await (const parts of inbox) this.#receive(parts);
    } catch {
      // Closing the socket under a pending receive ends the loop; nothing else is expected here.
    }
  }

  /** One inbound ZeroMQ message: [routing id, frame]. Anything else, or a spoofed sender, is a bad frame. */
  #receive(parts: readonly Buffer[]): void {
    if (this.#phase !== 'running') return;
    const [route, payload, ...extra] = parts;
    if (payload !== undefined) this.#stats.bytesReceived += payload.byteLength;
    if (route === undefined || payload === undefined || extra.length > 0) {
      this.#stats.badFrames++;
      return;
    }
    const result = decodeFrame(payload);
    // The routing id is the sending DEALER's, set by its node; a frame claiming another sender is forged.
    if (!result.ok || !route.equals(Buffer.from(result.frame.sender, 'utf8'))) {
      this.#stats.badFrames++;
      return;
    }
    const { sender, inc, messages } = result.frame;
    this.#stats.framesReceived++;
    this.#stats.messagesReceived += messages.length;
    const known = this.#liveness.heard(sender);
    if (!known && sender !== this.id) this.#callers.heard(sender);
    let rest = messages;
    if (messages.some((m) => m.type === 'ping' || m.type === 'pong')) {
      rest = messages.filter((m) => m.type !== 'ping' && m.type !== 'pong');
      // Only known peers get a pong: we have no outbox to anyone else.
      for (const m of messages) if (m.type === 'ping' && known) this.send(sender, { type: 'pong', rid: m.rid });
    }
    if (rest.length > 0) guarded(() => this.#onFrame?.(sender, inc, rest));
  }
}
