/**
 * The public types of `pes/plugins/consumer` (re-exported there, where the policy they follow is
 * documented), and the resolved options the consumer's parts share.
 */
import type { Registration } from '../../lib/registration.js';
import type { OwnershipChange } from '../../lib/watch.js';

/** What a job handler receives besides the job. */
export interface JobContext {
  /** The consumer's (singleton's) name. */
  readonly name: string;
  /** This node's id. */
  readonly node: string;
  /** Fencing token of this node's ownership: pass it to whatever the handler writes. */
  readonly token: number;
  /**
   * Aborted when this job must stop: at once when ownership is lost, or at `drainTimeout` after a
   * graceful stop (handoff, drain, close). Handlers should stop work when it aborts.
   */
  readonly signal: AbortSignal;
  /** The registration behind this ownership (`registration.assertValid()` before a critical write). */
  readonly registration: Registration;
}

/** Handles one job. Resolve when done; a rejection counts as a failure (see the module policy). */
export type JobHandler<J> = (job: J, ctx: JobContext) => unknown;

/** What a source is given each time this node starts consuming. */
export interface SourceContext {
  readonly name: string;
  readonly node: string;
  readonly token: number;
  /** Aborted when consumption stops: stop delivering jobs (end the iteration). */
  readonly signal: AbortSignal;
}

/** An async-iterable source: called afresh each time this node becomes the owner. */
export type IterableSource<J> = (ctx: SourceContext) => AsyncIterable<J>;

/** A push source: the consumer starts it when this node becomes the owner and stops it when it stops being it. */
export interface PushSource<J> {
  /**
   * Begin delivering jobs with `push`. `push(job)` resolves `true` once the handler started, or `false`
   * when consumption is stopping (the job then goes to `onReturn`): await it for backpressure.
   */
  start(push: (job: J) => Promise<boolean>, ctx: SourceContext): void | Promise<void>;
  /** Stop delivering jobs. Called once per start, when consumption stops (or the source is reopened). */
  stop(): void | Promise<void>;
}

/** Any job source the consumer accepts. */
export type JobSource<J> = IterableSource<J> | PushSource<J>;

/** Why a job was returned to the source. */
export type ReturnReason = 'timeout' | 'interrupted' | 'not-started';

/** Passed to `onReturn` with each returned job. */
export interface ReturnInfo {
  readonly reason: ReturnReason;
  /** Fencing token of the ownership that took the job. */
  readonly token: number;
  readonly node: string;
}

/** Passed to `onError`. */
export interface ConsumerErrorInfo<J> {
  /** `handler`: the handler rejected on its own; `source`: the source failed; `return`: `onReturn` threw. */
  readonly phase: 'handler' | 'source' | 'return';
  /** The job concerned, for `handler` and `return`. */
  readonly job?: J;
  readonly token: number;
  readonly node: string;
}

/** Options of {@link consumer}. */
export interface ConsumerOptions<J> {
  /** Most handler calls in flight at once on the owner (default 1). */
  readonly concurrency?: number;
  /** How long, ms, in-flight handlers may run on after ownership ends before their jobs are returned (default 30000). */
  readonly drainTimeout?: number;
  /** Receives jobs that were taken but not handled (see the module policy): requeue them here. */
  readonly onReturn?: (job: J, info: ReturnInfo) => void | Promise<void>;
  /** Receives handler failures, source failures and `onReturn` failures. Never throws into the consumer. */
  readonly onError?: (error: unknown, info: ConsumerErrorInfo<J>) => void;
  /** Delay, ms, before a failed source is opened again (default 1000). */
  readonly retryDelay?: number;
  /** The owner's node stopped answering (singleton hook). */
  readonly onOwnerDown?: (change: OwnershipChange) => void;
  /** The consumer moved to another owner by handoff (singleton hook). */
  readonly onHandoff?: (change: OwnershipChange) => void;
  /** This node lost the consumer because its lease could not be renewed (singleton hook). */
  readonly onLost?: (change: OwnershipChange) => void;
}

/** Counters of one consumer on one node. */
export interface ConsumerStats {
  /** Times this node became the owner. */
  runs: number;
  /** Jobs received from the source. */
  received: number;
  handled: number;
  failed: number;
  returned: number;
}

/**
 * Options with their defaults applied (what the consumer validated at construction).
 * @internal
 */
export type ResolvedOptions<J> = Required<Pick<ConsumerOptions<J>, 'concurrency' | 'drainTimeout' | 'retryDelay'>> & ConsumerOptions<J>;
