/**
 * This node's guards: running ones by guard id, and parked ones as their records (the renewer's
 * holdings). It makes guards, wakes a parked record into a guard in `monitoring` when an event comes for
 * its name, and parks a guard that holds its name quietly. The registry decides what the events are.
 */
import type { Clock } from '../clock.js';
import type { Membership } from '../cluster/membership.js';
import type { OwnerRef } from '../protocol/messages.js';
import type { Rpc } from '../rpc.js';
import { firstWave } from '../first-wave.js';
import { Guard, type GuardCallbacks, type GuardComponents } from './guard.js';
import type { GuardContext, GuardState } from './machine.js';
import { GuardRecord, OwnerIndex, type RecordHost } from './record.js';
import type { Renewer } from './renewer.js';

export interface GuardSetComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly random: () => number;
  readonly reachable: (node: string) => boolean;
  readonly membership: Membership;
  readonly renewer: Renewer<GuardRecord>;
  readonly callbacks: GuardCallbacks;
}

export interface GuardSetOptions {
  readonly node: string;
  readonly incarnation: number;
  readonly termFloor: () => number;
  readonly phaseTimeout: number;
  /** The next turn of the rotation of which peers a registration asks first (shared with reads). */
  readonly turn: () => number;
}

export class GuardSet {
  readonly #c: GuardSetComponents;
  readonly #o: GuardSetOptions;
  readonly #guard: GuardComponents;
  readonly #host: RecordHost;
  /**
   * Records with a running guard, each knowing its index. Not a Map by guard id: guards start and park
   * at the rate of registrations, and a long-lived Map's discarded tables kept each removed record (and
   * its guard) alive past the next young-generation collection.
   */
  readonly #running: GuardRecord[] = [];
  /** Records standing in for a parked guard (each is a holding of the renewer). */
  #parked = 0;
  /** Records by local owner (owners on other nodes never exit here). */
  readonly #byOwner = new OwnerIndex();
  #next = 1;

  constructor(components: GuardSetComponents, options: GuardSetOptions) {
    this.#c = components;
    this.#o = options;
    this.#guard = {
      clock: components.clock, rpc: components.rpc, random: components.random, reachable: components.reachable,
      latest: (ctx) => this.#latest(ctx),
    };
    // A lease that ran out: the renewer has dropped the record; its guard, woken, revokes the owner.
    this.#host = {
      node: options.node,
      guardPrefix: `${options.node}/${options.incarnation}`,
      lost: (rec) => this.wake(rec).handle({ type: 'lease-lost' }),
    };
  }

  /** Guards on this node, parked ones included. */
  get size(): number {
    return this.#running.length + this.#parked;
  }

  /** A new guard for `owner`, in `initial`; `hb` is the heartbeat its value will carry. */
  create(name: string, owner: OwnerRef, hb: number, initial: GuardState): GuardRecord {
    const o = this.#o;
    const rec = new GuardRecord({ name, counter: this.#next++, owner, hb }, this.#host);
    rec.acquisition = { startedAt: this.#c.clock.now() };
    const first = this.#firstWave(this.#c.membership.ids());
    rec.guard = new Guard(this.#guard, this.#context(rec, first), initial, this.#c.callbacks, rec);
    this.#addRunning(rec);
    if (owner.node === o.node) this.#byOwner.add(rec);
    return rec;
  }

  /** The record of running guard `guard`. */
  of(guard: Guard): GuardRecord | undefined {
    const rec = guard.tag;
    return rec instanceof GuardRecord && rec.guard === guard && rec.runningAt >= 0 ? rec : undefined;
  }

  /** The record of the running guard with id `gid` (a walk over the running guards: for rare requests). */
  running(gid: string): GuardRecord | undefined {
    return this.#running.find((r) => r.guard?.ctx.gid === gid);
  }

  /** The record's running guard; for a parked record, a new one in `monitoring` with the record's grant. */
  wake(rec: GuardRecord): Guard {
    if (rec.guard !== undefined) return rec.guard;
    const state: GuardState = { phase: 'monitoring', b: rec.b, value: rec.value, seq: rec.seq };
    const guard = new Guard(this.#guard, this.#context(rec), state, this.#c.callbacks, rec);
    rec.guard = guard;
    this.#addRunning(rec);
    this.#parked--;
    return guard;
  }

  /**
   * Parks `guard` (idle in `monitoring`) when its record holds the name: from now on the record stands in
   * for it. A guard whose record is not (or no longer) the holding keeps running.
   */
  park(guard: Guard): void {
    const rec = this.of(guard);
    if (rec === undefined || !rec.granted || this.#c.renewer.get(rec.name) !== rec) return;
    guard.park();
    rec.guard = undefined;
    this.#removeRunning(rec);
    this.#parked++;
  }

  /** Forgets the stopped guard `guard`; returns its record. */
  ended(guard: Guard): GuardRecord | undefined {
    const rec = this.of(guard);
    if (rec === undefined) return undefined;
    this.#removeRunning(rec);
    this.#byOwner.remove(rec);
    return rec;
  }

  /** The records of local owner `id`. */
  ofOwner(id: number): GuardRecord[] {
    return this.#byOwner.of(id);
  }

  /** Every record: running guards and parked ones. */
  all(): GuardRecord[] {
    const all = [...this.#running];
    for (const rec of this.#c.renewer.holdings()) if (rec.guard === undefined) all.push(rec);
    return all;
  }

  #addRunning(rec: GuardRecord): void {
    rec.runningAt = this.#running.length;
    this.#running.push(rec);
  }

  #removeRunning(rec: GuardRecord): void {
    const i = rec.runningAt;
    if (this.#running[i] !== rec) return;
    const last = this.#running.pop() as GuardRecord;
    if (last !== rec) {
      this.#running[i] = last;
      last.runningAt = i;
    }
    rec.runningAt = -1;
  }

  /**
   * `ctx` with the current member list, when the list changed since `ctx` was made (else undefined): a
   * guard between attempts, holding its name or waiting for a handoff asks the current list from then
   * on (acceptors refuse a guard that asks an older one).
   */
  #latest(ctx: GuardContext): GuardContext | undefined {
    const list = this.#c.membership.list();
    if (ctx.mv === undefined || ctx.mv === list.version) return undefined;
    const members = this.#c.membership.ids();
    if (ctx.first === undefined) return { ...ctx, members, mv: list.version };
    return { ...ctx, members, mv: list.version, first: this.#firstWave(members) };
  }

  /** The members a one-round-trip attempt asks first (this node and enough reachable peers, in turn). */
  #firstWave(members: readonly string[]): readonly string[] {
    return firstWave(members, this.#o.node, this.#c.reachable, this.#o.turn()).first;
  }

  /**
   * The guard's fixed facts; the member list is the current one (membership replaces it, never edits it).
   * `first`: the members a new guard asks first (a woken one holds its name already and asks nobody first).
   */
  #context(rec: GuardRecord, first?: readonly string[]): GuardContext {
    const o = this.#o;
    const members = this.#c.membership.ids();
    const mv = this.#c.membership.list().version;
    const termFloor = o.termFloor();
    return first === undefined
      ? { name: rec.name, gid: rec.gid, node: o.node, owner: rec.owner, members, mv, hb: rec.hb, phaseTimeout: o.phaseTimeout, termFloor }
      : { name: rec.name, gid: rec.gid, node: o.node, owner: rec.owner, members, mv, hb: rec.hb, phaseTimeout: o.phaseTimeout, termFloor, first };
  }
}
