/**
 * Who on the ZeroMQ mesh is reachable: each peer's last valid frame, a ping to every peer each
 * interval, and a report when a peer goes up (its first frame after silence) or down (no frame for
 * `timeout` ms). ZMTP heartbeats cannot show this: libzmq answers them from its own I/O thread, so a peer
 * whose event loop is blocked looks healthy to ZMTP while it handles nothing. Plumbing for `zmq.ts`.
 */
import type { Clock, TimerHandle } from '../clock.js';

/** What liveness asks of its transport. */
export interface LivenessHooks {
  /** Sends a ping with request id `rid` to `peer` (it rides in that turn's frame). */
  ping(peer: string, rid: number): void;
  /** `peer` is now reachable (`up`) or not. */
  report(peer: string, up: boolean): void;
}

interface PeerLife {
  /** Clock time of the last valid frame from this peer (or of when we began to expect one). */
  heard: number;
  /** Last reported reachability; undefined until the first report. */
  up: boolean | undefined;
}

/** Reachability of a transport's peers, judged from their frames and kept fresh by pings. */
export class PeerLiveness {
  readonly #clock: Clock;
  readonly #interval: number;
  readonly #timeout: number;
  readonly #hooks: LivenessHooks;
  readonly #peers = new Map<string, PeerLife>();
  #timer: TimerHandle | undefined;
  #running = false;
  #lastTick = 0;
  #pingRid = 0;

  /** `interval`: ms between pings; `timeout`: ms of silence after which a peer is reported down. */
  constructor(clock: Clock, timing: { readonly interval: number; readonly timeout: number }, hooks: LivenessHooks) {
    this.#clock = clock;
    this.#interval = timing.interval;
    this.#timeout = timing.timeout;
    this.#hooks = hooks;
  }

  /** Starts expecting frames from `peer` (idempotent); it is unreachable until its first one. */
  add(peer: string): void {
    if (!this.#peers.has(peer)) this.#peers.set(peer, { heard: this.#clock.now(), up: undefined });
  }

  remove(peer: string): void {
    this.#peers.delete(peer);
  }

  /** Whether `peer` was last reported up. */
  isUp(peer: string): boolean {
    return this.#peers.get(peer)?.up === true;
  }

  /** A valid frame came from `peer`: reported up if it was not. False when `peer` is not watched. */
  heard(peer: string): boolean {
    const life = this.#peers.get(peer);
    if (life === undefined) return false;
    life.heard = this.#clock.now();
    if (life.up !== true) this.#report(peer, life, true);
    return true;
  }

  /** Begins pinging; every peer's silence counts from now. */
  start(): void {
    const now = this.#clock.now();
    this.#running = true;
    this.#lastTick = now;
    for (const life of this.#peers.values()) life.heard = now;
    this.#timer = this.#clock.setTimeout(() => this.#tick(), this.#interval);
  }

  /** Stops pinging and judging (idempotent); also when called from a report. */
  stop(): void {
    this.#running = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Every interval: judge silence, then ping every peer. */
  #tick(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const now = this.#clock.now();
    // A tick this late means our own event loop was blocked (or the process stopped): frames our peers
    // sent meanwhile are still queued in the inbox, so judge nobody until the receive loop has run.
    const wePaused = now - this.#lastTick > 2 * this.#interval;
    this.#lastTick = now;
    for (const [peer, life] of this.#peers) {
      if (!wePaused && life.up !== false && now - life.heard >= this.#timeout) this.#report(peer, life, false);
      this.#pingRid = this.#pingRid >= Number.MAX_SAFE_INTEGER ? 1 : this.#pingRid + 1;
      this.#hooks.ping(peer, this.#pingRid);
    }
    if (this.#running) this.#timer = this.#clock.setTimeout(() => this.#tick(), this.#interval);
  }

  #report(peer: string, life: PeerLife, up: boolean): void {
    life.up = up;
    this.#hooks.report(peer, up);
  }
}
