/**
 * Singletons: every node declares the same singleton; the guard machines decide which node runs it.
 * Standby nodes contend with jittered backoff, and at once when their watch reports the name free.
 * A transfer (and so a drain) never overlaps two owners: the running owner captures its state and is
 * stopped first, then the name moves to an owner waiting on the target node, which starts with that
 * state. The gap between the two is measured and reported.
 */
import { AbortedError, AlreadyRegisteredError, NotFoundError, PesError, TimeoutError } from './errors.js';
import type { Clock, TimerHandle } from './clock.js';
import type { Owner } from './owner.js';
import type { OwnerRef } from './protocol/messages.js';
import type { Registration } from './registration.js';
import type { OwnershipChange, Watch } from './watch.js';
import type { OwnershipEvent } from './events.js';

/** What a singleton's `start` receives. */
export interface SingletonContext<S = unknown> {
  readonly name: string;
  /** Fencing token of this grant: pass it to whatever the singleton writes. */
  readonly token: number;
  /** Aborted when this node's ownership ends, for any reason (before anyone else can be granted it). */
  readonly signal: AbortSignal;
  /** State handed over by the previous owner (transfer or drain), if any. */
  readonly state: S | undefined;
  readonly node: string;
  readonly registration: Registration;
}

/** Why a running singleton was stopped. */
export type SingletonStopReason = 'lost' | 'handoff' | 'unregistered' | 'stopped' | 'failed';

/** A singleton, as every node declares it. */
export interface SingletonSpec<S = unknown> {
  /** Runs while this node owns the singleton; may return at once or run until `ctx.signal` aborts. */
  start(ctx: SingletonContext<S>): void | Promise<void>;
  /** Called once when this node's ownership ends. */
  stop?(reason: SingletonStopReason): void | Promise<void>;
  /** Captures serializable state for the next owner, before a transfer or drain. */
  handoff?(): S | Promise<S>;
  /** The owner's node stopped answering (it keeps the name until its lease runs out). */
  onOwnerDown?(change: OwnershipChange): void;
  /** The singleton moved to another owner by handoff. */
  onHandoff?(change: OwnershipChange): void;
  /** This node lost the singleton because its lease could not be renewed. */
  onLost?(change: OwnershipChange): void;
}

/** The result of moving one singleton. */
export interface TransferReport {
  readonly name: string;
  readonly to: string;
  /** From the old owner's stop to the name's grant on the target, in ms (local clock). */
  readonly gapMs: number;
}

/** The result of a drain. */
export interface DrainReport {
  readonly moved: readonly TransferReport[];
  /** Singletons with no other node to go to: stopped and released. */
  readonly stopped: readonly string[];
  readonly failed: readonly { readonly name: string; readonly error: Error }[];
}

/** What the manager needs from its node. */
export interface SingletonParts {
  readonly clock: Clock;
  readonly random: () => number;
  readonly self: string;
  readonly heartbeat: () => number;
  readonly spawn: () => Owner;
  readonly register: (name: string, owner: Owner) => Promise<Registration>;
  readonly update: (name: string, to: OwnerRef) => Promise<void>;
  readonly registration: (name: string) => Registration | undefined;
  readonly lookupNode: (name: string) => Promise<string | undefined>;
  readonly liveNodes: () => readonly string[];
  readonly watch: (name: string) => Watch;
  /** Subscribes to this node's grants; returns the unsubscribe function. */
  readonly onRegistered: (fn: (e: OwnershipEvent) => void) => () => void;
  /** A node call to this topic on `node`, bounded by `timeoutMs` (the node's call timeout by default). */
  readonly call: (node: string, body: unknown, timeoutMs?: number) => Promise<unknown>;
  /** Bound of one protocol round trip: how long a live node may take to answer a quick question. */
  readonly phaseTimeout: number;
}

type RunnerState = 'standby' | 'running' | 'handing-off' | 'closed';

/** One declared singleton on this node. */
export class Singleton<S = unknown> {
  readonly name: string;
  readonly #spec: SingletonSpec<S>;
  readonly #p: SingletonParts;
  #state: RunnerState = 'standby';
  #draining = false;
  #current: { reg: Registration; owner: Owner; stop: AbortController; started: Promise<void> } | undefined;
  #receiver: { owner: Owner; state: S | undefined; timer: TimerHandle } | undefined;
  #wake: (() => void) | undefined;
  readonly #watch: Watch;
  readonly #unsubscribe: () => void;

  /** @internal */
  constructor(name: string, spec: SingletonSpec<S>, parts: SingletonParts) {
    this.name = name;
    this.#spec = spec;
    this.#p = parts;
    this.#watch = parts.watch(name);
    this.#watch.on('change', (c) => this.#onChange(c));
    this.#unsubscribe = parts.onRegistered((e) => this.#maybeReceive(e));
    void this.#contend();
  }

  /** Whether this node runs the singleton now. */
  get running(): boolean {
    return this.#state === 'running' && this.#current?.reg.valid === true;
  }

  /** Fencing token of the current run on this node, if running. */
  get token(): number | undefined {
    return this.running ? this.#current?.reg.token : undefined;
  }

  #onChange(c: OwnershipChange): void {
    if (c.snapshot) return;
    if (c.kind === 'owner-down') this.#spec.onOwnerDown?.(c);
    if (c.kind === 'handoff') this.#spec.onHandoff?.(c);
    if (c.kind === 'lost' && c.owner.node === this.#p.self) this.#spec.onLost?.(c);
    // Free now: contend at once rather than at the next backoff.
    if (c.kind === 'unregistered' || c.kind === 'expired' || c.kind === 'lost') this.#wake?.();
  }

  async #contend(): Promise<void> {
    while (this.#state === 'standby' && !this.#draining) {
      const owner = this.#p.spawn();
      try {
        const reg = await this.#p.register(this.name, owner);
        if (this.#state !== 'standby' || this.#draining) {
          owner.exit('standby');
          return;
        }
        await this.#run(reg, owner, undefined);
        continue;
      } catch (e) {
        owner.exit('standby');
        if (!(e instanceof PesError) || this.#state !== 'standby') return;
      }
      const hb = this.#p.heartbeat();
      await new Promise<void>((resolve) => {
        const timer = this.#p.clock.setTimeout(() => { this.#wake = undefined; resolve(); }, hb * (0.25 + 0.25 * this.#p.random()));
        this.#wake = () => { this.#p.clock.clearTimeout(timer); this.#wake = undefined; resolve(); };
      });
    }
  }

  async #run(reg: Registration, owner: Owner, state: S | undefined): Promise<void> {
    this.#state = 'running';
    const stop = new AbortController();
    const follow = (): void => stop.abort(reg.signal.reason);
    reg.signal.addEventListener('abort', follow, { once: true });
    const ctx: SingletonContext<S> = { name: this.name, token: reg.token, signal: stop.signal, state, node: this.#p.self, registration: reg };
    const started = Promise.resolve().then(() => this.#spec.start(ctx)).catch(() => {
      // A start that throws gives the singleton up: another node may do better.
      stop.abort(new AbortedError());
    });
    this.#current = { reg, owner, stop, started };
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    reg.signal.removeEventListener('abort', follow);
    // transfer() or close() stop and release it themselves.
    if ((this.#state as RunnerState) === 'handing-off' || (this.#state as RunnerState) === 'closed') return;
    await this.#stopSpec(reg.ended ?? 'failed');
    this.#current = undefined;
    if (reg.ended === undefined) await reg.unregister().catch(() => {});
    owner.exit('done');
    if (this.#state === 'running') this.#state = 'standby';
  }

  async #stopSpec(reason: SingletonStopReason | 'exit'): Promise<void> {
    const why: SingletonStopReason = reason === 'exit' ? 'stopped' : reason;
    try {
      await this.#spec.stop?.(why);
    } catch {
      // A failing stop must not keep the node from moving on.
    }
    await this.#current?.started;
  }

  /** @internal On the target of a transfer: an owner waits for the name, with the state to start with. */
  receive(state: S | undefined): OwnerRef {
    this.#dropReceiver('replaced');
    const owner = this.#p.spawn();
    // If the handoff never comes, the waiting owner goes away.
    const timer = this.#p.clock.setTimeout(() => {
      if (this.#receiver?.owner === owner) this.#dropReceiver('no handoff');
    }, this.#p.heartbeat() * 4);
    this.#receiver = { owner, state, timer };
    return owner.ref;
  }

  #dropReceiver(reason: string): void {
    const r = this.#receiver;
    if (r === undefined) return;
    this.#p.clock.clearTimeout(r.timer);
    r.owner.exit(reason);
    this.#receiver = undefined;
  }

  /** A grant on this node: when it is to the owner waiting for a handoff, that owner starts. */
  #maybeReceive(e: OwnershipEvent): void {
    const r = this.#receiver;
    if (r === undefined || e.name !== this.name || e.owner.id !== r.owner.ref.id || e.owner.inc !== r.owner.ref.inc) return;
    this.#p.clock.clearTimeout(r.timer);
    this.#receiver = undefined;
    const reg = this.#p.registration(this.name);
    if (reg === undefined || reg.owner.id !== r.owner.ref.id) return;
    this.#wake?.();
    void this.#run(reg, r.owner, r.state).then(() => this.#contendLater());
  }

  #contendLater(): void {
    if (this.#state === 'standby' && !this.#draining) void this.#contend();
  }

  /** Moves the running singleton to `to`: state captured, old owner stopped, then the name moves. */
  async transfer(to: string): Promise<TransferReport> {
    const cur = this.#current;
    if (this.#state !== 'running' || cur === undefined) throw new NotFoundError(this.name);
    const state = this.#spec.handoff === undefined ? undefined : await this.#spec.handoff();
    this.#state = 'handing-off';
    const stoppedAt = this.#p.clock.now();
    cur.stop.abort(new AbortedError());
    await this.#stopSpec('handoff');
    try {
      const reply = (await this.#p.call(to, { op: 'receive', name: this.name, state })) as { ref: OwnerRef };
      await this.#p.update(this.name, reply.ref);
    } catch (e) {
      // The name did not move: run it here again, with the state just captured.
      this.#state = 'standby';
      this.#current = undefined;
      if (cur.reg.valid) {
        void this.#run(cur.reg, cur.owner, state).then(() => this.#contendLater());
      } else {
        cur.owner.exit('failed');
        this.#contendLater();
      }
      throw e;
    }
    const gapMs = this.#p.clock.now() - stoppedAt;
    this.#current = undefined;
    cur.owner.exit('handed off');
    this.#state = 'standby';
    this.#contendLater();
    return { name: this.name, to, gapMs };
  }

  /** @internal Stop contending; runs, if any, are left to the caller (drain). */
  setDraining(on: boolean): void {
    this.#draining = on;
    if (!on) this.#contendLater();
  }

  /** Whether it was closed (it may then be declared again). */
  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** Whether this node would accept the singleton now. */
  get accepting(): boolean {
    return this.#state !== 'closed' && !this.#draining;
  }

  /** Undeclares it here: stops it if running (releasing the name), stops contending. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const cur = this.#current;
    this.#state = 'closed';
    this.#wake?.();
    this.#watch.close();
    this.#unsubscribe();
    this.#dropReceiver('closed');
    if (cur !== undefined) {
      cur.stop.abort(new AbortedError());
      await this.#stopSpec('stopped');
      await cur.reg.unregister().catch(() => {});
      cur.owner.exit('closed');
      this.#current = undefined;
    }
  }
}

/** All singletons declared on one node, and the node-call topic their transfers use. */
export class SingletonManager {
  readonly #p: SingletonParts;
  readonly #all = new Map<string, Singleton<never>>();

  constructor(parts: SingletonParts) {
    this.#p = parts;
  }

  declare<S>(name: string, spec: SingletonSpec<S>): Singleton<S> {
    if (this.#all.get(name)?.closed === false) throw new AlreadyRegisteredError(name, { node: this.#p.self, inc: 0, id: 0 });
    const s = new Singleton<S>(name, spec, this.#p);
    this.#all.set(name, s as unknown as Singleton<never>);
    return s;
  }

  get(name: string): Singleton | undefined {
    return this.#all.get(name) as Singleton | undefined;
  }

  /** Moves singleton `name` to node `to` (from whichever node runs it). */
  async transfer(name: string, to: string): Promise<TransferReport> {
    const here = this.#all.get(name);
    if (here?.running === true) return here.transfer(to);
    const node = await this.#p.lookupNode(name);
    if (node === undefined) throw new NotFoundError(name);
    if (node === to) return { name, to, gapMs: 0 };
    return (await this.#p.call(node, { op: 'transfer', name, to })) as TransferReport;
  }

  /** Moves every singleton this node runs to other live nodes that declare it; stops contending here. */
  async drain(opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<DrainReport> {
    for (const s of this.#all.values()) s.setDraining(true);
    const moved: TransferReport[] = [];
    const stopped: string[] = [];
    const failed: { name: string; error: Error }[] = [];
    const deadline = this.#p.clock.now() + (opts.timeout ?? 30_000);
    let turn = 0;
    for (const s of this.#all.values()) {
      if (!s.running) continue;
      if (opts.signal?.aborted === true || this.#p.clock.now() > deadline) {
        failed.push({ name: s.name, error: opts.signal?.aborted === true ? new AbortedError() : new TimeoutError('drain', opts.timeout ?? 30_000) });
        continue;
      }
      // Asked all at once, each for at most a phase: a peer that died just now must not hold the drain.
      const ask = Math.max(1, Math.min(this.#p.phaseTimeout, deadline - this.#p.clock.now()));
      const others = this.#p.liveNodes().filter((node) => node !== this.#p.self);
      const answers = await Promise.all(others.map((node) => this.#p.call(node, { op: 'accepts', name: s.name }, ask).then(
        (r) => (r as { accepts?: unknown } | undefined)?.accepts === true,
        () => false,
      )));
      const candidates = others.filter((_, i) => answers[i] === true);
      const target = candidates[turn++ % Math.max(1, candidates.length)];
      if (target === undefined) {
        await s.close();
        stopped.push(s.name);
        continue;
      }
      try {
        moved.push(await s.transfer(target));
      } catch (e) {
        failed.push({ name: s.name, error: e as Error });
      }
    }
    return { moved, stopped, failed };
  }

  /** The node-call handler for topic 'singleton'. */
  async onCall(body: unknown): Promise<unknown> {
    const m = body as { op?: string; name?: string; state?: unknown; to?: string };
    const s = typeof m.name === 'string' ? this.#all.get(m.name) : undefined;
    switch (m.op) {
      case 'accepts': return { accepts: s?.accepting === true };
      case 'receive':
        if (s === undefined || !s.accepting) throw new NotFoundError(String(m.name));
        return { ref: s.receive(m.state as never) };
      case 'transfer':
        if (s === undefined || typeof m.to !== 'string') throw new NotFoundError(String(m.name));
        return s.transfer(m.to);
      default:
        throw new NotFoundError(String(m.op));
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#all.values()].map((s) => s.close()));
    this.#all.clear();
  }
}
