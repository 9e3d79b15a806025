/**
 * The registry: register / whereis / lookup / unregister / update, and the node-to-node requests they
 * cause (probe, handoff, forwarded operations). It creates guards, turns their outcomes into results
 * and errors, and keeps the index of names held by this node's owners: the renewer's holdings, which
 * are the guards' records (guard/record.ts). A guard that holds its name quietly is parked and its
 * record stands in for it until the next event for the name.
 */
import type { EventEmitter } from 'eventemitter3';
import type { Clock } from './clock.js';
import type { ClusterConfig } from './cluster/config.js';
import type { Membership } from './cluster/membership.js';
import {
  AbortedError, AlreadyRegisteredError, NoConsensusError, NotFoundError, OwnerNotAliveError, TimeoutError, type RevokeReason,
} from './errors.js';
import type { PesEvents } from './events.js';
import type { Guard, GuardCallbacks } from './guard/guard.js';
import { GuardSet } from './guard/guard-set.js';
import { effectiveHeartbeat } from './guard/lease.js';
import { holdsProbed } from './guard/probe.js';
import { initialState, waitingState, type GuardFailure, type GuardState } from './guard/machine.js';
import type { Acquisition, GuardRecord } from './guard/record.js';
import type { Renewer } from './guard/renewer.js';
import { validateName } from './name.js';
import { sameOwner, type Owner, type OwnerTable } from './owner.js';
import type { DecidedMsg, ForwardMsg, HandoffGoMsg, HandoffMsg, Message, OwnerRef, ProbeMsg } from './protocol/messages.js';
import { quorumRead, readDuration, type ReadResult } from './read.js';
import { Registration, type RegistrationHost } from './registration.js';
import { ownCopy } from './strings.js';
import { request, type Rpc } from './rpc.js';
import { LatencyWindow } from './stats.js';

export interface RegistryComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly membership: Membership;
  readonly config: ClusterConfig;
  readonly owners: OwnerTable;
  readonly renewer: Renewer<GuardRecord>;
  readonly events: EventEmitter<PesEvents>;
  readonly random: () => number;
  readonly reachable: (node: string) => boolean;
}

export interface RegistryOptions {
  readonly node: string;
  readonly incarnation: number;
  readonly termFloor: () => number;
  /** How long one protocol phase waits for replies. */
  readonly phaseTimeout: number;
  /** Default bound on register/update/lookup calls. */
  readonly timeout: number;
}

/** Per-call options of every public async operation. */
export interface CallOptions {
  readonly timeout?: number;
  readonly signal?: AbortSignal;
}

/** What `lookup` returns. */
export interface LookupResult {
  readonly owner: OwnerRef;
  /** The guard holding the name, and the node it runs on. */
  readonly guard: string;
  readonly node: string;
  /** Fencing token of the current grant. */
  readonly token: number;
}

export class Registry {
  readonly #c: RegistryComponents;
  readonly #o: RegistryOptions;
  readonly #guards: GuardSet;
  readonly registerLatency = new LatencyWindow();
  readonly lookupLatency = new LatencyWindow();
  /** Rotates which peers a quorum read or a one-round-trip registration asks first. */
  #readTurn = 0;

  constructor(components: RegistryComponents, options: RegistryOptions) {
    this.#c = components;
    this.#o = options;
    this.#guards = new GuardSet(
      { ...components, callbacks: this.#callbacks },
      {
        node: options.node, incarnation: options.incarnation, termFloor: options.termFloor, phaseTimeout: options.phaseTimeout,
        turn: () => this.#readTurn++,
      },
    );
    components.owners.onExit((owner) => this.#ownerExited(owner.ref));
  }

  /** Guards on this node (acquiring, holding or releasing; parked ones included). */
  get activeGuards(): number {
    return this.#guards.size;
  }

  /** Names held by this node's owners. */
  get heldNames(): number {
    return this.#c.renewer.size;
  }

  /** The local registration of `name`, if an owner on this node holds it. */
  registration(name: string): Registration | undefined {
    return this.#holder(name)?.registration;
  }

  /** The record of the guard holding `name` for an owner on this node. */
  #holder(name: string): GuardRecord | undefined {
    return this.#c.renewer.get(name);
  }

  async register(name: string, owner: Owner, opts: CallOptions = {}): Promise<Registration> {
    validateName(name);
    if (opts.signal?.aborted === true) throw new AbortedError({ cause: opts.signal.reason });
    if (!owner.alive || this.#c.owners.get(owner.ref) !== owner) throw new OwnerNotAliveError(owner.ref);
    const held = this.#holder(name);
    if (held?.registration?.valid === true) throw new AlreadyRegisteredError(name, held.registration.owner);
    const timeout = opts.timeout ?? this.#o.timeout;
    return new Promise<Registration>((resolve, reject) => {
      // A copy of its own: the caller's string may be a rope of parts, or a slice of a larger text.
      const rec = this.#newGuard(ownCopy(name), owner.ref, initialState());
      const guard = rec.guard as Guard;
      const onAbort = (): void => guard.handle({ type: 'release', reason: 'stopped', now: this.#c.clock.now() });
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => opts.signal?.removeEventListener('abort', onAbort);
      (rec.acquisition as Acquisition).acquire = {
        resolve: (r) => { done(); resolve(r); },
        reject: (e) => {
          done();
          reject(e instanceof TimeoutError ? new TimeoutError('register', timeout) : opts.signal?.aborted === true ? new AbortedError({ cause: opts.signal.reason }) : e);
        },
      };
      guard.start(timeout);
    });
  }

  async whereis(name: string, opts: CallOptions = {}): Promise<OwnerRef | undefined> {
    return (await this.lookup(name, opts))?.owner;
  }

  async lookup(name: string, opts: CallOptions = {}): Promise<LookupResult | undefined> {
    validateName(name);
    const local = this.#holder(name);
    if (local?.registration?.valid === true) {
      this.lookupLatency.record(0);
      return { owner: local.owner, guard: local.gid, node: local.node, token: local.term };
    }
    const started = this.#c.clock.now();
    const r = await this.#read(name, opts);
    this.lookupLatency.record(this.#c.clock.now() - started);
    return r.kind === 'free' ? undefined : { owner: r.value.owner, guard: r.b.g, node: r.value.gnode, token: r.b.t };
  }

  async unregister(name: string, opts: CallOptions = {}): Promise<void> {
    validateName(name);
    const local = this.#holder(name);
    if (local !== undefined) return this.#stopGuard(local, 'unregistered');
    const r = await this.#read(name, opts);
    if (r.kind === 'free') return;
    await this.#forward({ type: 'fwd', rid: 0, op: 'unregister', name, b: r.b }, r.value.gnode, opts);
  }

  async update(name: string, to: Owner | OwnerRef, opts: CallOptions = {}): Promise<void> {
    validateName(name);
    const ref: OwnerRef = 'ref' in to ? to.ref : to;
    const local = this.#holder(name);
    if (local !== undefined) {
      if (sameOwner(local.owner, ref)) return;
      return this.#handoff(local, ref);
    }
    const r = await this.#read(name, opts);
    if (r.kind === 'free') throw new NotFoundError(name);
    if (sameOwner(r.value.owner, ref)) return;
    await this.#forward({ type: 'fwd', rid: 0, op: 'update', name, b: r.b, owner: ref }, r.value.gnode, opts);
  }

  /** Quorum read with the caller's timeout and signal. */
  #read(name: string, opts: CallOptions): Promise<ReadResult> {
    const c = this.#c;
    const read = quorumRead({ clock: c.clock, rpc: c.rpc, members: () => c.membership.ids(), self: this.#o.node, reachable: c.reachable, turn: () => this.#readTurn++ }, name, this.#o.phaseTimeout);
    // Without a signal, and with a timeout the read cannot outlast, the read's own bound is the caller's.
    if (opts.signal === undefined && (opts.timeout ?? this.#o.timeout) >= readDuration(this.#o.phaseTimeout)) return read;
    return this.#bounded(read, 'lookup', opts);
  }

  /** Races `p` against the call's timeout and abort signal. */
  #bounded<T>(p: Promise<T>, operation: string, opts: CallOptions): Promise<T> {
    const ms = opts.timeout ?? this.#o.timeout;
    return new Promise<T>((resolve, reject) => {
      const timer = this.#c.clock.setTimeout(() => reject(new TimeoutError(operation, ms)), ms);
      const onAbort = (): void => reject(new AbortedError({ cause: opts.signal?.reason }));
      if (opts.signal?.aborted === true) onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      p.then(resolve, reject).finally(() => {
        this.#c.clock.clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      });
    });
  }

  /** Runs an update or unregister on the node whose guard holds the name. */
  async #forward(msg: ForwardMsg, node: string, opts: CallOptions): Promise<void> {
    const reply = await this.#bounded(this.#request(node, msg), msg.op, opts);
    if (reply === undefined) throw new NoConsensusError(msg.name, 0, 1);
    if (reply.type !== 'fwdR' || reply.ok) return;
    if (reply.err === 'not-alive' && msg.owner !== undefined) throw new OwnerNotAliveError(msg.owner);
    if (reply.err === 'not-found') throw new NotFoundError(msg.name);
    throw new NoConsensusError(msg.name, 0, 1);
  }

  /** One request to one peer; resolves undefined if no reply comes within a few phases. */
  #request(peer: string, msg: Message & { rid: number }): Promise<Message | undefined> {
    return request(this.#c.rpc, this.#c.clock, peer, (rid) => ({ ...msg, rid }) as Message, this.#o.phaseTimeout * 8, (from) => from === peer);
  }

  #handoff(rec: GuardRecord, to: OwnerRef): Promise<void> {
    return new Promise((resolve, reject) => {
      rec.onHandoff({ resolve, reject, to });
      this.#guards.wake(rec).handle({ type: 'handoff', owner: to, now: this.#c.clock.now() });
    });
  }

  #stopGuard(rec: GuardRecord, reason: 'unregistered' | 'exit' | 'stopped'): Promise<void> {
    return new Promise((resolve) => {
      rec.onStop(resolve);
      this.#guards.wake(rec).handle({ type: 'release', reason, now: this.#c.clock.now() });
    });
  }

  #ownerExited(ref: OwnerRef): void {
    for (const rec of this.#guards.ofOwner(ref.id)) this.#guards.wake(rec).handle({ type: 'release', reason: 'exit', now: this.#c.clock.now() });
  }

  /** Releases every guard (node stop); resolves when all have stopped or after `ms`. */
  async releaseAll(ms: number): Promise<void> {
    const all = this.#guards.all().map((rec) => this.#stopGuard(rec, 'stopped'));
    if (all.length === 0) return;
    await new Promise<void>((resolve) => {
      const timer = this.#c.clock.setTimeout(resolve, ms);
      void Promise.all(all).then(() => {
        this.#c.clock.clearTimeout(timer);
        resolve();
      });
    });
    for (const rec of this.#guards.all()) this.#guards.wake(rec).handle({ type: 'kill' });
  }

  /** Ends every guard at once, sending nothing (a crash). */
  killAll(): void {
    for (const rec of this.#guards.all()) this.#guards.wake(rec).handle({ type: 'kill' });
  }

  // ---- requests from peers -----------------------------------------------------------------------

  /** probe: is this owner alive, and does its guard hold `name` at `b` (see holdsProbed)? */
  probe(from: string, m: ProbeMsg): void {
    const holds = holdsProbed(m, this.#holder(m.name), this.#guards, this.#o.node);
    this.#c.rpc.send(from, { type: 'probeR', rid: m.rid, alive: this.#c.owners.isAlive(m.owner), holds });
  }

  /** hoff: create a guard here that waits to take `name` over for a local owner. */
  handoffOffer(from: string, m: HandoffMsg): void {
    if (!this.#c.owners.isAlive(m.owner)) {
      this.#c.rpc.send(from, { type: 'hoffR', rid: m.rid, ok: false, err: 'not-alive' });
      return;
    }
    // The name came in a frame: a copy of its own, not a slice keeping the frame's text (the record may live long).
    const rec = this.#newGuard(ownCopy(m.name), m.owner, waitingState(m.from));
    rec.guard?.wait(this.#o.phaseTimeout * 8);
    this.#c.rpc.send(from, { type: 'hoffR', rid: m.rid, ok: true, guard: rec.gid });
  }

  /** hgo: the marker is committed; the waiting guard takes the name. */
  handoffGo(from: string, m: HandoffGoMsg): void {
    const rec = this.#guards.running(m.guard);
    if (rec?.guard === undefined || rec.guard.phase !== 'waiting' || rec.name !== m.name || rec.acquisition === undefined) {
      this.#c.rpc.send(from, { type: 'hgoR', rid: m.rid, ok: false, err: 'not-found' });
      return;
    }
    rec.acquisition.go = { from, rid: m.rid };
    rec.guard.handle({ type: 'go', seq: m.seq, now: this.#c.clock.now() });
  }

  /** fwd: an update or unregister called on another node, for a name a guard here holds. */
  forwarded(from: string, m: ForwardMsg): void {
    const reply = (ok: boolean, err?: 'not-alive' | 'not-found' | 'failed'): void =>
      this.#c.rpc.send(from, err === undefined ? { type: 'fwdR', rid: m.rid, ok } : { type: 'fwdR', rid: m.rid, ok, err });
    const rec = this.#holder(m.name);
    if (rec === undefined || rec.term !== m.b.t || rec.gid !== m.b.g) {
      reply(m.op === 'unregister', m.op === 'unregister' ? undefined : 'not-found');
      return;
    }
    if (m.op === 'unregister') {
      void this.#stopGuard(rec, 'unregistered').then(() => reply(true));
      return;
    }
    const to = m.owner as OwnerRef;
    if (sameOwner(rec.owner, to)) return reply(true);
    this.#handoff(rec, to).then(() => reply(true), (e: unknown) => reply(false, e instanceof OwnerNotAliveError ? 'not-alive' : 'failed'));
  }

  // ---- guards ------------------------------------------------------------------------------------

  #newGuard(name: string, owner: OwnerRef, initial: GuardState): GuardRecord {
    return this.#guards.create(name, owner, effectiveHeartbeat(this.#c.config.get('heartbeat')), initial);
  }

  readonly #registrationHost: RegistrationHost = {
    leaseUntil: (r) => (this.#holder(r.name)?.registration === r ? this.#c.renewer.leaseOf(r.name) : undefined),
    now: () => this.#c.clock.now(),
    // Only this registration: a handed-off or lost one must not end whoever holds the name now.
    unregister: (r) => {
      const rec = this.#holder(r.name);
      return r.ended === undefined && rec?.registration === r ? this.#stopGuard(rec, 'unregistered') : Promise.resolve();
    },
  };

  readonly #callbacks: GuardCallbacks = {
    granted: (guard, b, value, seq, sentAt) => {
      const rec = this.#guards.of(guard);
      if (rec === undefined) return;
      const { name, owner } = rec;
      const acquisition = rec.acquisition;
      const previous = this.#holder(name);
      if (previous !== undefined) this.#guards.wake(previous).handle({ type: 'lease-lost' });
      const registration = new Registration({ name, owner, token: b.t }, this.#registrationHost);
      rec.grant(value, seq, registration);
      this.#c.renewer.add(rec, sentAt, guard.ctx.mv);
      if (acquisition !== undefined) this.registerLatency.record(this.#c.clock.now() - acquisition.startedAt);
      this.#c.events.emit('registered', { name, owner, token: b.t });
      // Decided: every member's ownership watches may report it now (their acceptors may not know yet).
      // Lazy: nobody waits for it, and on a busy cluster many share one frame.
      const mv = guard.ctx.mv;
      const notice: DecidedMsg = mv === undefined ? { type: 'own', name, b, v: value, seq } : { type: 'own', name, b, v: value, seq, mv };
      for (const m of this.#c.membership.ids()) this.#c.rpc.send(m, notice, true);
      acquisition?.acquire?.resolve(registration);
      if (acquisition?.go !== undefined) this.#c.rpc.send(acquisition.go.from, { type: 'hgoR', rid: acquisition.go.rid, ok: true, token: b.t });
      // The owner may have exited while the commit was in flight.
      if (!this.#c.owners.isAlive(owner)) guard.handle({ type: 'release', reason: 'exit', now: this.#c.clock.now() });
    },
    failed: (guard, failure) => {
      const acquisition = this.#guards.of(guard)?.acquisition;
      if (acquisition === undefined) return;
      acquisition.acquire?.reject(this.#error(guard.ctx.name, guard.ctx.owner, failure));
      acquisition.acquire = undefined;
      if (acquisition.go !== undefined) this.#c.rpc.send(acquisition.go.from, { type: 'hgoR', rid: acquisition.go.rid, ok: false, err: 'failed' });
      acquisition.go = undefined;
    },
    revoke: (guard, reason) => this.#revoke(guard, reason),
    release: (guard) => {
      const rec = this.#holder(guard.ctx.name);
      if (rec?.guard !== guard) return;
      this.#c.renewer.remove(rec.name);
    },
    handoffDone: (guard, ok, failure) => {
      const rec = this.#guards.of(guard);
      for (const w of rec?.takeHandoffs() ?? []) {
        if (ok) w.resolve();
        else w.reject(this.#error(guard.ctx.name, w.to, failure ?? { kind: 'refused' }, 'update'));
      }
    },
    stopped: (guard) => {
      const rec = this.#guards.ended(guard);
      if (rec === undefined) return;
      rec.acquisition?.acquire?.reject(new AbortedError());
      rec.acquisition = undefined;
      for (const w of rec.takeHandoffs()) w.reject(new AbortedError());
      for (const s of rec.takeStops()) s();
    },
    // Holding quietly: the record stands in for the guard until the next event for the name.
    idle: (guard) => this.#guards.park(guard),
  };

  #revoke(guard: Guard, reason: RevokeReason): void {
    const rec = this.#guards.of(guard);
    const registration = rec?.registration;
    // Revoked once: a handoff revokes first and a crash mid-handoff must not report a second end.
    if (rec === undefined || registration === undefined || registration.ended !== undefined) return;
    registration.end(reason);
    if (reason === 'lost' || reason === 'handoff') this.#c.owners.get(rec.owner)?.revoke(rec.name, reason);
    const ev = { name: registration.name, owner: registration.owner, token: registration.token };
    this.#c.events.emit('released', { reason, ...ev });
    // A release by the owner's side is news for every watch (a lost lease is seen as expiry instead).
    if ((reason === 'unregistered' || reason === 'exit' || reason === 'stopped') && rec.granted) {
      const { b, seq } = rec;
      for (const m of this.#c.membership.ids()) this.#c.rpc.send(m, { type: 'own', name: ev.name, b, v: null, seq }, true);
    }
    if (reason === 'lost') this.#c.events.emit('lost', ev);
  }

  /** The error for a failed register (or update): `owner` is the owner the operation was for. */
  #error(name: string, owner: OwnerRef, f: GuardFailure, operation: 'register' | 'update' = 'register'): Error {
    switch (f.kind) {
      case 'already': return new AlreadyRegisteredError(name, f.owner);
      case 'no-consensus': return new NoConsensusError(name, f.answered, f.needed);
      case 'timeout': return new TimeoutError(operation, operation === 'register' ? this.#o.timeout : this.#o.phaseTimeout);
      case 'not-alive': return new OwnerNotAliveError(owner);
      case 'refused': return new AbortedError();
    }
  }
}
