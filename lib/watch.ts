/**
 * Ownership watches. A grant is reported once it is decided: when the granting node's notice arrives
 * (it sends one to every member when a majority has accepted), or when the node's own acceptor has seen
 * the value renewed (only decided values are renewed; a commit alone may be a loser's, taken back). So a
 * watch on any node sees the same changes, each once, in token order per name, even on a node whose
 * acceptor missed or refused the commit.
 *
 * Kinds: 'registered' (a new grant), 'handoff' (a grant that took over a handoff marker), 'unregistered'
 * (the owner released it), 'expired' (3 heartbeats without renewal, seen by this acceptor's clock),
 * 'owner-down' (the owner's node stopped answering; the name stays held until its lease runs out),
 * 'lost' (this node's own owner lost its lease). A watch starts with a snapshot of current owners
 * (`snapshot: true`).
 */
import { EventEmitter } from 'eventemitter3';
import type { AcceptedChange, LiveEntry } from './acceptor/acceptor.js';
import type { Clock, TimerHandle } from './clock.js';
import type { Ballot, OwnerRef, Value } from './protocol/messages.js';

/** One ownership change. */
export interface OwnershipChange {
  readonly name: string;
  readonly kind: 'registered' | 'handoff' | 'unregistered' | 'owner-down' | 'expired' | 'lost';
  /** The owner the change is about (the new one for grants, the previous one otherwise). */
  readonly owner: OwnerRef;
  /** The node running the owner's guard. */
  readonly node: string;
  readonly token: number;
  /** True for the entries of the initial snapshot. */
  readonly snapshot: boolean;
}

/** What a watch matches: one name, or every name starting with a prefix (`'jobs/*'`, or `'*'` for all). */
export type WatchTarget = string;

interface Current { owner: OwnerRef; node: string; ballot: Ballot; token: number; ended: boolean; down: boolean }

export interface WatchHubParts {
  readonly clock: Clock;
  /** Live values of the local acceptor. */
  readonly live: (prefix: string) => LiveEntry[];
  readonly stateOf: (name: string, ballot: Ballot) => 'live' | 'expired' | 'other';
  /** How often to look for expired values (a heartbeat). */
  readonly scanEvery: () => number;
}

/** A subscription: an async iterator of changes, and an emitter ('change'). Close it when done. */
export class Watch extends EventEmitter<{ change: [OwnershipChange] }> implements AsyncIterable<OwnershipChange> {
  readonly target: WatchTarget;
  readonly #queue: OwnershipChange[] = [];
  readonly #waiters: ((r: IteratorResult<OwnershipChange>) => void)[] = [];
  readonly #onClose: (w: Watch) => void;
  #snapshot: OwnershipChange[] = [];
  #closed = false;

  /** @internal */
  constructor(target: WatchTarget, onClose: (w: Watch) => void) {
    super();
    this.target = target;
    this.#onClose = onClose;
  }

  /** Whether `name` is one this watch follows. */
  matches(name: string): boolean {
    if (this.target === '*') return true;
    return this.target.endsWith('*') ? name.startsWith(this.target.slice(0, -1)) : name === this.target;
  }

  /**
   * @internal The snapshot is delivered on the next microtask, so a listener attached right after
   * watch() gets it too; any change that comes first waits behind it.
   */
  preload(snapshot: OwnershipChange[]): void {
    this.#snapshot = snapshot;
    queueMicrotask(() => this.#flushSnapshot());
  }

  #flushSnapshot(): void {
    const s = this.#snapshot;
    this.#snapshot = [];
    for (const c of s) this.#deliver(c);
  }

  /** @internal */
  push(change: OwnershipChange): void {
    if (this.#snapshot.length > 0) this.#flushSnapshot();
    this.#deliver(change);
  }

  #deliver(change: OwnershipChange): void {
    if (this.#closed) return;
    this.emit('change', change);
    const w = this.#waiters.shift();
    if (w !== undefined) w({ done: false, value: change });
    else this.#queue.push(change);
  }

  [Symbol.asyncIterator](): AsyncIterator<OwnershipChange> {
    return {
      next: () => {
        const queued = this.#queue.shift();
        if (queued !== undefined) return Promise.resolve({ done: false, value: queued });
        if (this.#closed) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => this.#waiters.push(resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** Ends the watch: pending iterations finish, no more events. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w({ done: true, value: undefined });
    this.removeAllListeners();
    this.#onClose(this);
  }
}

/** The node's watch hub: turns acceptor changes, expiries and node failures into ownership changes. */
export class WatchHub {
  readonly #p: WatchHubParts;
  readonly #watches = new Set<Watch>();
  /** Per name: the current owner as this node knows it (only while some watch exists). */
  readonly #current = new Map<string, Current>();
  #scan: TimerHandle | undefined;

  constructor(parts: WatchHubParts) {
    this.#p = parts;
  }

  /** A new watch; its first events are the current owners (snapshot). */
  watch(target: WatchTarget): Watch {
    const w = new Watch(target, (x) => {
      this.#watches.delete(x);
      if (this.#watches.size === 0) this.#stopScan();
    });
    this.#watches.add(w);
    const prefix = target === '*' ? '' : target.endsWith('*') ? target.slice(0, -1) : target;
    const snapshot: OwnershipChange[] = [];
    for (const e of this.#p.live(prefix).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (!w.matches(e.name) || !e.confirmed) continue;
      const known = this.#current.get(e.name);
      if (known === undefined || known.token < e.ballot.t) {
        this.#current.set(e.name, { owner: e.value.owner, node: e.value.gnode, ballot: e.ballot, token: e.ballot.t, ended: false, down: false });
      }
      snapshot.push({ name: e.name, kind: 'registered', owner: e.value.owner, node: e.value.gnode, token: e.ballot.t, snapshot: true });
    }
    w.preload(snapshot);
    this.#startScan();
    return w;
  }

  /** The local acceptor accepted a value change: only a release of a reported grant is news from here. */
  onAccepted(c: AcceptedChange): void {
    if (this.#watches.size === 0 || c.value !== null) return;
    const cur = this.#current.get(c.name);
    // A tombstone ends the grant it names; one for an older grant (or one never reported) is not news.
    if (cur !== undefined && !cur.ended && cur.token === c.ballot.t) {
      cur.ended = true;
      this.#emit({ name: c.name, kind: 'unregistered', owner: cur.owner, node: cur.node, token: cur.token, snapshot: false });
    }
  }

  /** The owner released the grant `ballot` (its node says so: unregister, exit or stop). */
  onReleased(name: string, ballot: Ballot): void {
    const cur = this.#current.get(name);
    if (cur === undefined || cur.ended || cur.token !== ballot.t) return;
    cur.ended = true;
    this.#emit({ name, kind: 'unregistered', owner: cur.owner, node: cur.node, token: cur.token, snapshot: false });
  }

  /** A grant is decided (a majority accepted it). */
  onDecided(name: string, ballot: Ballot, value: Value): void {
    if (this.#watches.size === 0 || value.handoffTo !== undefined) return;
    const cur = this.#current.get(name);
    if (cur !== undefined && cur.token >= ballot.t) return;
    // A new grant is decided only once the previous one ended: if no end was reported here (this node's
    // acceptor had not seen it run out yet), it expired; a handoff grant itself says how it ended.
    if (cur !== undefined && !cur.ended && value.via !== 'handoff') {
      cur.ended = true;
      this.#emit({ name, kind: 'expired', owner: cur.owner, node: cur.node, token: cur.token, snapshot: false });
    }
    this.#current.set(name, { owner: value.owner, node: value.gnode, ballot, token: ballot.t, ended: false, down: false });
    const kind = value.via === 'handoff' ? 'handoff' : 'registered';
    this.#emit({ name, kind, owner: value.owner, node: value.gnode, token: ballot.t, snapshot: false });
  }

  /** A peer stopped answering: its owners may be gone (their names stay held until the lease ends). */
  onNodeDown(node: string): void {
    for (const [name, cur] of this.#current) {
      if (cur.ended || cur.down || cur.owner.node !== node) continue;
      cur.down = true;
      this.#emit({ name, kind: 'owner-down', owner: cur.owner, node: cur.node, token: cur.token, snapshot: false });
    }
  }

  /** A local owner lost its lease. */
  onLost(name: string, owner: OwnerRef, node: string, token: number): void {
    const cur = this.#current.get(name);
    if (cur === undefined || cur.token !== token || cur.ended) return;
    cur.ended = true;
    this.#emit({ name, kind: 'lost', owner, node, token, snapshot: false });
  }

  #emit(change: OwnershipChange): void {
    for (const w of this.#watches) if (w.matches(change.name)) w.push(change);
  }

  #startScan(): void {
    if (this.#scan !== undefined) return;
    this.#scan = this.#p.clock.setTimeout(() => {
      this.#scan = undefined;
      this.#expireScan();
      if (this.#watches.size > 0) this.#startScan();
    }, this.#p.scanEvery());
  }

  #stopScan(): void {
    this.#p.clock.clearTimeout(this.#scan);
    this.#scan = undefined;
    this.#current.clear();
  }

  /**
   * Grants this acceptor has seen renewed but no notice reported (a lost notice) are reported now; values
   * that went 3 heartbeats without renewal here are reported once as expired.
   */
  #expireScan(): void {
    const prefixes = new Set<string>();
    for (const w of this.#watches) prefixes.add(w.target === '*' ? '' : w.target.endsWith('*') ? w.target.slice(0, -1) : w.target);
    for (const prefix of prefixes) {
      for (const e of this.#p.live(prefix)) {
        if (e.confirmed && [...this.#watches].some((w) => w.matches(e.name))) this.onDecided(e.name, e.ballot, e.value);
      }
    }
    for (const [name, cur] of this.#current) {
      if (cur.ended) continue;
      // Only this acceptor's own copy running out counts; a lagging copy says nothing.
      if (this.#p.stateOf(name, cur.ballot) !== 'expired') continue;
      cur.ended = true;
      this.#emit({ name, kind: 'expired', owner: cur.owner, node: cur.node, token: cur.token, snapshot: false });
    }
  }

  /** Closes every watch (node stop). */
  stop(): void {
    for (const w of [...this.#watches]) w.close();
    this.#stopScan();
  }
}
