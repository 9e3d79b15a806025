/**
 * Local owner handles: the "processes" that hold names. An owner has a cluster-wide `ref`, a liveness
 * flag, an AbortSignal that aborts when it exits or has a name taken from it, and a mailbox: messages
 * sent to a name it holds go to its handler, or queue for {@link Owner.messages} when it has none.
 */
import { LeaseLostError, PesError, type RevokeReason } from './errors.js';
import type { OwnerRef } from './protocol/messages.js';

/** Handles messages for an owner; for `call`, its return value (or promise) is the reply. */
export type OwnerHandler = (message: unknown, meta: { readonly name: string; readonly call: boolean }) => unknown;

/** Why an owner exited. */
export class OwnerExit extends PesError {
  override readonly name = 'OwnerExit';
  readonly reason: unknown;
  constructor(reason: unknown) {
    super('owner exited');
    this.reason = reason;
  }
}

/** A local owner handle. Create with `node.spawn()`. */
export class Owner {
  /** Identifies this owner cluster-wide; plain data, safe to send anywhere. */
  readonly ref: OwnerRef;
  readonly #controller = new AbortController();
  readonly #handler: OwnerHandler | undefined;
  readonly #queue: unknown[] = [];
  readonly #waiters: ((r: IteratorResult<unknown>) => void)[] = [];
  readonly #onExit: (owner: Owner, reason: unknown) => void;
  #alive = true;

  /** @internal */
  constructor(ref: OwnerRef, handler: OwnerHandler | undefined, onExit: (owner: Owner, reason: unknown) => void) {
    this.ref = ref;
    this.#handler = handler;
    this.#onExit = onExit;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Aborted when the owner exits or a name is taken from it (lease lost or handed off). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Ends the owner: its names are unregistered at once and its signal aborts. Idempotent. */
  exit(reason: unknown = 'normal'): void {
    if (!this.#alive) return;
    this.#alive = false;
    if (!this.#controller.signal.aborted) this.#controller.abort(new OwnerExit(reason));
    for (const w of this.#waiters.splice(0)) w({ done: true, value: undefined });
    this.#onExit(this, reason);
  }

  /** Messages that arrive while the owner has no handler, in order; ends when the owner exits. */
  messages(): AsyncIterableIterator<unknown> {
    const self = this;
    return {
      [Symbol.asyncIterator]() { return this; },
      next(): Promise<IteratorResult<unknown>> {
        if (self.#queue.length > 0) return Promise.resolve({ done: false, value: self.#queue.shift() });
        if (!self.#alive) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => self.#waiters.push(resolve));
      },
      return(): Promise<IteratorResult<unknown>> {
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** @internal Delivers a message; returns the handler's result for calls. */
  deliver(message: unknown, name: string, call: boolean): unknown {
    if (this.#handler !== undefined) return this.#handler(message, { name, call });
    const w = this.#waiters.shift();
    if (w !== undefined) w({ done: false, value: message });
    else this.#queue.push(message);
    return undefined;
  }

  /** @internal A name was taken from this owner. */
  revoke(name: string, reason: RevokeReason): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new LeaseLostError(name, reason));
  }
}

/** The owners of one node. */
export class OwnerTable {
  readonly #node: string;
  readonly #inc: number;
  readonly #owners = new Map<number, Owner>();
  #next = 1;
  #onExit: (owner: Owner, reason: unknown) => void = () => {};

  constructor(node: string, incarnation: number) {
    this.#node = node;
    this.#inc = incarnation;
  }

  /** Where exits are reported (the registry unregisters the owner's names). */
  onExit(fn: (owner: Owner, reason: unknown) => void): void {
    this.#onExit = fn;
  }

  spawn(handler?: OwnerHandler): Owner {
    const ref: OwnerRef = { node: this.#node, inc: this.#inc, id: this.#next++ };
    const owner = new Owner(ref, handler, (o, reason) => {
      this.#owners.delete(o.ref.id);
      this.#onExit(o, reason);
    });
    this.#owners.set(ref.id, owner);
    return owner;
  }

  /** The live local owner with this ref, if any. */
  get(ref: OwnerRef): Owner | undefined {
    if (ref.node !== this.#node || ref.inc !== this.#inc) return undefined;
    return this.#owners.get(ref.id);
  }

  isAlive(ref: OwnerRef): boolean {
    return this.get(ref)?.alive === true;
  }

  get size(): number {
    return this.#owners.size;
  }

  /** Ends every owner (node stop). */
  exitAll(reason: unknown): void {
    for (const o of [...this.#owners.values()]) o.exit(reason);
  }
}

/** True when two refs name the same owner. */
export function sameOwner(a: OwnerRef | undefined, b: OwnerRef | undefined): boolean {
  return a !== undefined && b !== undefined && a.node === b.node && a.inc === b.inc && a.id === b.id;
}
