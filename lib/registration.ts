/**
 * A granted registration, as its owner sees it: the name, the fencing token, a signal that aborts when
 * the registration ends for any reason, and a synchronous lease check for code that must not act on a
 * name it may no longer hold.
 */
import { LeaseLostError, type RevokeReason } from './errors.js';
import type { OwnerRef } from './protocol/messages.js';

/** What a registration asks of the node that granted it. @internal */
export interface RegistrationHost {
  /** The lease deadline of `r` (local monotonic ms), or undefined once `r` no longer holds its name. */
  leaseUntil(r: Registration): number | undefined;
  now(): number;
  /** Ends `r` (only `r`: a successor holding the name keeps it). */
  unregister(r: Registration): Promise<void>;
}

export class Registration {
  readonly name: string;
  readonly owner: OwnerRef;
  /** Fencing token: strictly rises for this name across owners. Pass it to what you write. */
  readonly token: number;
  // One host for every registration of a node, and the controller made on first use of `signal`: a
  // node may hold 100k registrations whose signals nobody reads.
  readonly #host: RegistrationHost;
  #controller: AbortController | undefined;
  #ended: RevokeReason | undefined;

  /** @internal */
  constructor(fields: { name: string; owner: OwnerRef; token: number }, host: RegistrationHost) {
    this.name = fields.name;
    this.owner = fields.owner;
    this.token = fields.token;
    this.#host = host;
  }

  /** Aborted (with a LeaseLostError as reason) when the registration ends. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#ended !== undefined) this.#controller.abort(new LeaseLostError(this.name, this.#ended));
    }
    return this.#controller.signal;
  }

  /** Why the registration ended, or undefined while it lasts. */
  get ended(): RevokeReason | undefined {
    return this.#ended;
  }

  /**
   * True while the lease is valid right now. Checks the clock itself, so it is right even when the
   * process was paused and the revoking timer has not run yet.
   */
  get valid(): boolean {
    if (this.#ended !== undefined) return false;
    const until = this.#host.leaseUntil(this);
    return until !== undefined && this.#host.now() < until;
  }

  /** Throws LeaseLostError unless the lease is valid right now. */
  assertValid(): void {
    if (!this.valid) throw new LeaseLostError(this.name, this.#ended ?? 'lost');
  }

  /** Ends this registration; a no-op once it has ended (a successor that holds the name keeps it). */
  unregister(): Promise<void> {
    return this.#host.unregister(this);
  }

  /** @internal */
  end(reason: RevokeReason): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    this.#controller?.abort(new LeaseLostError(this.name, reason));
  }
}
