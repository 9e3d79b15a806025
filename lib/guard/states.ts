/**
 * What the guard state machine works on: a guard's fixed facts (its context), the events it is fed,
 * the effects it asks for, its states, and the small helpers every phase shares. No behaviour of its
 * own: the phases live in acquire.ts (getting the name) and machine.ts (holding and handing it off).
 */
import type { Ballot, Message, OwnerRef, PrepareMode, PrepareReply, RequestMsg, Value } from '../protocol/messages.js';
import type { RevokeReason } from '../errors.js';

/** Fixed facts about one guard. */
export interface GuardContext {
  readonly name: string;
  /** Guard id: the `g` of every ballot this guard proposes. */
  readonly gid: string;
  readonly node: string;
  readonly owner: OwnerRef;
  readonly members: readonly string[];
  /** The version of the member list `members` is (sent with every value this guard commits). */
  readonly mv?: number;
  readonly hb: number;
  /** How long to wait for a phase's replies. */
  readonly phaseTimeout: number;
  /** Lowest term this node lets a grant use. */
  readonly termFloor: number;
  /**
   * Members a one-round-trip attempt asks first (this node and enough peers for a majority); the others
   * are asked when these have all answered without a decision, or after a tenth of the phase timeout.
   * They learn the value from the grant notice. Default: every member at once.
   */
  readonly first?: readonly string[];
}

/** Why an acquisition failed. */
export type GuardFailure =
  | { readonly kind: 'already'; readonly owner: OwnerRef }
  | { readonly kind: 'no-consensus'; readonly answered: number; readonly needed: number }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'not-alive' }
  | { readonly kind: 'refused' };

/** A request without its id; the runner stamps the phase's request id. */
export type Outgoing = RequestMsg extends infer M ? (M extends { rid: number } ? Omit<M, 'rid'> : never) : never;

export type GuardEffect =
  | { readonly type: 'send'; readonly to: readonly string[]; readonly msg: Outgoing }
  | { readonly type: 'abandon'; readonly b: Ballot }
  | { readonly type: 'timer'; readonly ms: number; readonly jitter: boolean }
  | { readonly type: 'granted'; readonly b: Ballot; readonly value: Value; readonly seq: number; readonly sentAt: number }
  | { readonly type: 'failed'; readonly failure: GuardFailure }
  | { readonly type: 'release' }
  | { readonly type: 'revoke'; readonly reason: RevokeReason }
  | { readonly type: 'handoff-done'; readonly ok: boolean; readonly failure?: GuardFailure }
  | { readonly type: 'stopped' };

export type GuardEvent =
  | { readonly type: 'start'; readonly now: number }
  | { readonly type: 'reply'; readonly from: string; readonly msg: Message; readonly now: number }
  | { readonly type: 'timeout'; readonly now: number }
  | { readonly type: 'deadline'; readonly now: number }
  | { readonly type: 'lease-lost' }
  | { readonly type: 'release'; readonly reason: 'unregistered' | 'exit' | 'stopped'; readonly now: number }
  | { readonly type: 'handoff'; readonly owner: OwnerRef; readonly now: number }
  | { readonly type: 'go'; readonly seq: number; readonly now: number }
  | { readonly type: 'kill' };

interface Held { readonly b: Ballot; readonly value: Value; readonly seq: number }

export type GuardState =
  | { readonly phase: 'prepare'; readonly attempt: number; readonly maxTerm: number; readonly b: Ballot; readonly mode: PrepareMode;
      readonly from?: Ballot; readonly replies: ReadonlyMap<string, PrepareReply>; readonly probed: boolean;
      /** The value sent with the prepare (one-round-trip attempt), and when it was sent (the lease start). */
      readonly value?: Value; readonly sentAt: number;
      /** Members not asked yet (a one-round-trip attempt asks a majority first). */
      readonly pending?: readonly string[] }
  | { readonly phase: 'reg_check'; readonly attempt: number; readonly maxTerm: number; readonly b: Ballot;
      readonly promised: boolean; readonly holder: { readonly b: Ballot; readonly owner: OwnerRef } }
  | { readonly phase: 'backoff'; readonly attempt: number; readonly maxTerm: number; readonly lastHolder?: OwnerRef;
      /** A handoff receiver retries as one. */
      readonly handoffFrom?: Ballot }
  | { readonly phase: 'commit'; readonly attempt: number; readonly maxTerm: number; readonly b: Ballot; readonly value: Value;
      readonly acks: ReadonlySet<string>; readonly nacks: ReadonlySet<string>; readonly sentAt: number }
  | ({ readonly phase: 'monitoring' } & Held)
  | ({ readonly phase: 'handoff'; readonly step: 'offer' | 'marker' | 'go'; readonly to: OwnerRef; readonly target?: string;
      readonly acks: ReadonlySet<string> } & Held)
  | { readonly phase: 'waiting'; readonly from: Ballot }
  | { readonly phase: 'stopping'; readonly b: Ballot; readonly seq: number; readonly acks: ReadonlySet<string> }
  | { readonly phase: 'stopped' };

/** A transition's outcome: the next state and the effects to perform, in order. */
export type Result = readonly [GuardState, readonly GuardEffect[]];

/** Majority of the member list. */
export function quorum(members: readonly string[]): number {
  return Math.floor(members.length / 2) + 1;
}

/** A new acquiring guard, before `start`. */
export function initialState(): GuardState {
  return { phase: 'backoff', attempt: 0, maxTerm: 0 };
}

/** A guard created to receive a handoff from ballot `from`. */
export function waitingState(from: Ballot): GuardState {
  return { phase: 'waiting', from };
}

/** The value this guard commits for its owner. */
export function ownValue(ctx: GuardContext): Value {
  return { owner: ctx.owner, gnode: ctx.node, hb: ctx.hb };
}

/** The commit of `(b, v, seq)`, stamped with the version of the list whose majority it asks. */
export function commitMsg(ctx: GuardContext, b: Ballot, v: Value | null, seq: number): Outgoing {
  return ctx.mv === undefined ? { type: 'com', name: ctx.name, b, v, seq } : { type: 'com', name: ctx.name, b, v, seq, mv: ctx.mv };
}

/** A reply that counts: from a member of this guard's quorum. */
export function fromMember(ctx: GuardContext, ev: GuardEvent): boolean {
  return ev.type === 'reply' && ctx.members.includes(ev.from);
}

export function stopping(ctx: GuardContext, b: Ballot, seq: number, pre: GuardEffect[]): Result {
  return [
    { phase: 'stopping', b, seq: seq + 1, acks: new Set() },
    [...pre, { type: 'send', to: ctx.members, msg: commitMsg(ctx, b, null, seq + 1) },
     { type: 'timer', ms: ctx.phaseTimeout, jitter: false }],
  ];
}
