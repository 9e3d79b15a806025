/**
 * Every error the library throws or rejects with. Each has a stable `name` and typed fields; match on
 * the class (`instanceof`) or on `name`, never on the message.
 */
import type { OwnerRef } from './protocol/messages.js';

/** Base class of every pes error. */
export class PesError extends Error {
  override readonly name: string = 'PesError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A name is not a string of 1..1024 UTF-8 bytes, or an option is out of range. Nothing was changed. */
export class InvalidArgumentError extends PesError {
  override readonly name = 'InvalidArgumentError';
  /** Which argument or option was rejected. */
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(message);
    this.argument = argument;
  }
}

/** The name is held by a live owner. */
export class AlreadyRegisteredError extends PesError {
  override readonly name = 'AlreadyRegisteredError';
  readonly key: string;
  /** The current owner, as the majority reported it. */
  readonly owner: OwnerRef;
  constructor(key: string, owner: OwnerRef) {
    super(`name is already registered: ${key}`);
    this.key = key;
    this.owner = owner;
  }
}

/** No majority of the cluster agreed (too many members unreachable, or contention) within the time allowed. */
export class NoConsensusError extends PesError {
  override readonly name = 'NoConsensusError';
  readonly key: string | undefined;
  /** How many members answered, and how many were needed. */
  readonly answered: number;
  readonly needed: number;
  constructor(key: string | undefined, answered: number, needed: number, options?: { cause?: unknown }) {
    super(`no consensus${key === undefined ? '' : ` for ${key}`}: ${answered} of ${needed} needed`, options);
    this.key = key;
    this.answered = answered;
    this.needed = needed;
  }
}

/** The operation did not finish within its timeout. */
export class TimeoutError extends PesError {
  override readonly name = 'TimeoutError';
  readonly operation: string;
  readonly timeoutMs: number;
  constructor(operation: string, timeoutMs: number) {
    super(`${operation} timed out after ${timeoutMs} ms`);
    this.operation = operation;
    this.timeoutMs = timeoutMs;
  }
}

/** The operation was aborted by the caller's AbortSignal. */
export class AbortedError extends PesError {
  override readonly name = 'AbortedError';
  constructor(options?: { cause?: unknown }) {
    super('operation aborted', options);
  }
}

/** `update` of a name that nobody holds. */
export class NotFoundError extends PesError {
  override readonly name = 'NotFoundError';
  readonly key: string;
  constructor(key: string) {
    super(`name not found: ${key}`);
    this.key = key;
  }
}

/** `send` or `call` to a name nobody holds, or whose owner is gone. */
export class NotRegisteredError extends PesError {
  override readonly name = 'NotRegisteredError';
  readonly key: string;
  constructor(key: string) {
    super(`name not registered: ${key}`);
    this.key = key;
  }
}

/** The owner handle has exited (or belongs to another node where it is not alive). */
export class OwnerNotAliveError extends PesError {
  override readonly name = 'OwnerNotAliveError';
  readonly owner: OwnerRef;
  constructor(owner: OwnerRef) {
    super('owner is not alive');
    this.owner = owner;
  }
}

/** The node was stopped, or is stopping. */
export class StoppedError extends PesError {
  override readonly name = 'StoppedError';
  constructor() {
    super('node is stopped');
  }
}

/** A cluster setting or membership change was refused. */
export class ConfigError extends PesError {
  override readonly name = 'ConfigError';
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.key = key;
  }
}

/** A registration was revoked: its lease could not be renewed, it was handed off, or it was unregistered. */
export class LeaseLostError extends PesError {
  override readonly name = 'LeaseLostError';
  readonly key: string;
  /** Why the owner lost the name. */
  readonly reason: RevokeReason;
  constructor(key: string, reason: RevokeReason) {
    super(`registration of ${key} ended: ${reason}`);
    this.key = key;
    this.reason = reason;
  }
}

/** Why a registration ended, as seen by its owner. */
export type RevokeReason = 'lost' | 'handoff' | 'unregistered' | 'exit' | 'stopped';

/** An owner handler threw while handling a `call`; the original error is the `cause`. */
export class RemoteCallError extends PesError {
  override readonly name = 'RemoteCallError';
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super(`call to ${key} failed`, options);
    this.key = key;
  }
}
