/**
 * The guard state machine, as a pure function: `transition(state, event) -> [state, effects]`.
 * It reads no clock and sends nothing; the runner (guard.ts) feeds it events (replies, timers, owner
 * exits, lease news from the renewer) and performs the effects it returns.
 *
 * Phases: prepare (its replies carry each acceptor's value, so they double as the read; a first attempt
 * for a free name carries the value too, and a majority accepting it grants the name in one round trip)
 * -> reg_check
 * (ask the holder's node whether a held or expired holder is really alive) -> commit -> monitoring
 * (renewals are batched per node by the renewer, which reports a lost lease) -> stopping (tombstone)
 * -> stopped. A handoff moves a held name to a guard on another (or the same) node: offer, marker, go.
 * A guard created to receive a handoff starts in `waiting`.
 */
import { compareBallots } from '../protocol/ballot.js';
import type {
  Ballot, EntryView, HandoffGoReply, HandoffReply, Message, OwnerRef, PrepareMode, PrepareReply, RequestMsg, Value,
} from '../protocol/messages.js';
import type { RevokeReason } from '../errors.js';

/** Fixed facts about one guard. */
export interface GuardContext {
  readonly name: string;
  /** Guard id: the `g` of every ballot this guard proposes. */
  readonly gid: string;
  readonly node: string;
  readonly owner: OwnerRef;
  readonly members: readonly string[];
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

type Result = readonly [GuardState, readonly GuardEffect[]];

const MAX_ATTEMPTS = 8;

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

function termsIn(e: EntryView | undefined): number {
  return Math.max(e?.promise?.t ?? 0, e?.ballot?.t ?? 0);
}

/**
 * Sends a prepare. The first attempt to register a free name also carries the value: acceptors with no
 * value for the name accept it at once, and a majority of them grants it without a commit round. Later
 * attempts (a rival was seen) and takeovers use the two phases.
 */
function prepare(ctx: GuardContext, attempt: number, maxTerm: number, mode: PrepareMode, now: number, from?: Ballot): Result {
  const b: Ballot = { t: Math.max(maxTerm + 1, ctx.termFloor), g: ctx.gid };
  const value = mode === 'free' && attempt === 0 ? ownValue(ctx) : undefined;
  const first = value === undefined || ctx.first === undefined ? ctx.members : ctx.first;
  const pending = first.length < ctx.members.length ? ctx.members.filter((m) => !first.includes(m)) : undefined;
  // Built field by field, not with conditional spreads: this runs once per registration.
  const state: Mutable<Extract<GuardState, { phase: 'prepare' }>> = {
    phase: 'prepare', attempt, maxTerm, b, mode, replies: new Map(), probed: false, sentAt: now,
  };
  if (from !== undefined) state.from = from;
  if (value !== undefined) state.value = value;
  if (pending !== undefined) state.pending = pending;
  const ms = pending === undefined ? ctx.phaseTimeout : Math.max(1, ctx.phaseTimeout / 10);
  return [state, [{ type: 'send', to: first, msg: prepMsg(ctx, state) }, { type: 'timer', ms, jitter: false }]];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The prepare message of a prepare phase (the same one to the members asked first and to the rest). */
function prepMsg(ctx: GuardContext, s: Extract<GuardState, { phase: 'prepare' }>): Outgoing {
  const msg: Mutable<Extract<Outgoing, { type: 'prep' }>> = { type: 'prep', name: ctx.name, b: s.b, mode: s.mode };
  if (s.from !== undefined) msg.from = s.from;
  if (s.value !== undefined) msg.v = s.value;
  return msg;
}

/** Asks the members a one-round-trip attempt has not asked yet, with the same prepare. */
function widen(ctx: GuardContext, s: Extract<GuardState, { phase: 'prepare' }>, replies: ReadonlyMap<string, PrepareReply>, maxTerm: number): Result {
  const { pending, ...rest } = s;
  return [{ ...rest, replies, maxTerm }, [{ type: 'send', to: pending ?? [], msg: prepMsg(ctx, s) }, { type: 'timer', ms: ctx.phaseTimeout, jitter: false }]];
}

function commit(ctx: GuardContext, attempt: number, maxTerm: number, b: Ballot, now: number, mode: PrepareMode = 'free'): Result {
  const value: Value = mode === 'handoff' ? { ...ownValue(ctx), via: 'handoff' } : ownValue(ctx);
  return [
    { phase: 'commit', attempt, maxTerm, b, value, acks: new Set(), nacks: new Set(), sentAt: now },
    [{ type: 'send', to: ctx.members, msg: { type: 'com', name: ctx.name, b, v: value, seq: 1 } },
     { type: 'timer', ms: ctx.phaseTimeout, jitter: false }],
  ];
}

/** Waits before another attempt: exponential in the attempt, weighted by node and name so rivals drift apart. */
function backoff(ctx: GuardContext, attempt: number, maxTerm: number, extra: GuardEffect[], lastHolder?: OwnerRef): Result {
  if (attempt >= MAX_ATTEMPTS) {
    const failure: GuardFailure = lastHolder !== undefined ? { kind: 'already', owner: lastHolder } : { kind: 'no-consensus', answered: 0, needed: quorum(ctx.members) };
    return [{ phase: 'stopped' }, [...extra, { type: 'failed', failure }, { type: 'stopped' }]];
  }
  let h = 0;
  for (const ch of ctx.node + ctx.name) h = (h * 31 + ch.charCodeAt(0)) % 1000;
  const ms = Math.min(ctx.hb, 5 * 2 ** attempt) * (1 + h / 1000);
  const state: GuardState = lastHolder === undefined ? { phase: 'backoff', attempt, maxTerm } : { phase: 'backoff', attempt, maxTerm, lastHolder };
  return [state, [...extra, { type: 'timer', ms, jitter: true }]];
}

function stopping(ctx: GuardContext, b: Ballot, seq: number, pre: GuardEffect[]): Result {
  return [
    { phase: 'stopping', b, seq: seq + 1, acks: new Set() },
    [...pre, { type: 'send', to: ctx.members, msg: { type: 'com', name: ctx.name, b, v: null, seq: seq + 1 } },
     { type: 'timer', ms: ctx.phaseTimeout, jitter: false }],
  ];
}

/** The transition function. */
export function transition(ctx: GuardContext, s: GuardState, ev: GuardEvent): Result {
  if (s.phase === 'stopped') return [s, []];
  if (ev.type === 'kill') return [{ phase: 'stopped' }, [...killEffects(s), { type: 'stopped' }]];
  switch (s.phase) {
    case 'backoff':
      if (ev.type === 'start' || ev.type === 'timeout') {
        return s.handoffFrom === undefined ? prepare(ctx, s.attempt, s.maxTerm, 'free', ev.now) : prepare(ctx, s.attempt, s.maxTerm, 'handoff', ev.now, s.handoffFrom);
      }
      return acquiringInterrupt(ctx, s, ev, []);
    case 'prepare': return onPrepare(ctx, s, ev);
    case 'reg_check': return onRegCheck(ctx, s, ev);
    case 'commit': return onCommit(ctx, s, ev);
    case 'monitoring': return onMonitoring(ctx, s, ev);
    case 'handoff': return onHandoff(ctx, s, ev);
    case 'waiting':
      if (ev.type === 'go') return prepare(ctx, 0, s.from.t, 'handoff', ev.now, s.from);
      if (ev.type === 'timeout' || ev.type === 'deadline' || ev.type === 'release') {
        return [{ phase: 'stopped' }, [{ type: 'failed', failure: { kind: 'timeout' } }, { type: 'stopped' }]];
      }
      return [s, []];
    case 'stopping':
      if (fromMember(ctx, ev) && ev.type === 'reply' && ev.msg.type === 'comR' && compareBallots(ev.msg.b, s.b) === 0 && ev.msg.seq === s.seq && ev.msg.ok) {
        const acks = new Set(s.acks).add(ev.from);
        if (acks.size >= quorum(ctx.members)) return [{ phase: 'stopped' }, [{ type: 'stopped' }]];
        return [{ ...s, acks }, []];
      }
      if (ev.type === 'timeout') return [{ phase: 'stopped' }, [{ type: 'stopped' }]];
      return [s, []];
  }
}

/** What a crash of the guard means for its owner and caller, by phase. */
function killEffects(s: GuardState): GuardEffect[] {
  switch (s.phase) {
    case 'monitoring':
      return [{ type: 'revoke', reason: 'lost' }, { type: 'release' }];
    case 'handoff':
      // After the offer the owner was already revoked for the handoff: nothing more to revoke.
      return s.step === 'offer'
        ? [{ type: 'handoff-done', ok: false, failure: { kind: 'refused' } }, { type: 'revoke', reason: 'lost' }, { type: 'release' }]
        : [{ type: 'handoff-done', ok: false, failure: { kind: 'refused' } }];
    case 'stopping':
    case 'stopped':
      return [];
    default:
      return [{ type: 'failed', failure: { kind: 'refused' } }];
  }
}

/** Owner exit, caller deadline or unregister while still acquiring. */
function acquiringInterrupt(ctx: GuardContext, s: GuardState & { maxTerm: number }, ev: GuardEvent, pre: GuardEffect[]): Result {
  if (ev.type !== 'deadline' && ev.type !== 'release') return [s, []];
  const failure: GuardFailure = ev.type === 'deadline' ? { kind: 'timeout' } : ev.reason === 'exit' ? { kind: 'not-alive' } : { kind: 'refused' };
  if (s.phase === 'commit') {
    // Part of the cluster may have accepted this value: take it back so no entry is left without a guard.
    return stopping(ctx, s.b, 1, [...pre, { type: 'failed', failure }]);
  }
  return [{ phase: 'stopped' }, [...pre, { type: 'failed', failure }, { type: 'stopped' }]];
}

/** A reply that counts: from a member of this guard's quorum. */
function fromMember(ctx: GuardContext, ev: GuardEvent): boolean {
  return ev.type === 'reply' && ctx.members.includes(ev.from);
}

function onPrepare(ctx: GuardContext, s: Extract<GuardState, { phase: 'prepare' }>, ev: GuardEvent): Result {
  if (ev.type === 'deadline' || ev.type === 'release') return acquiringInterrupt(ctx, s, ev, [{ type: 'abandon', b: s.b }]);
  if (ev.type !== 'timeout' && !(fromMember(ctx, ev) && ev.type === 'reply' && ev.msg.type === 'prepR' && compareBallots(ev.msg.b, s.b) === 0)) return [s, []];
  const replies = ev.type === 'reply' ? new Map(s.replies).set(ev.from, ev.msg as PrepareReply) : s.replies;
  // A one-round-trip attempt that asked only a majority and heard nothing decisive in time asks the rest.
  if (s.pending !== undefined && ev.type === 'timeout') return widen(ctx, s, replies, s.maxTerm);
  const need = quorum(ctx.members);
  let maxTerm = s.maxTerm;
  let promises = 0;
  let accepted = 0;
  const held = new Map<string, { count: number; b: Ballot; owner: OwnerRef }>();
  let expired: { b: Ballot; owner: OwnerRef } | undefined;
  for (const r of replies.values()) {
    maxTerm = Math.max(maxTerm, termsIn(r.entry), r.floor - 1);
    if (r.ok) {
      promises++;
      if (r.acc === true) accepted++;
      const e = r.entry;
      if (e?.value != null && e.ballot !== undefined && e.expired && (expired === undefined || compareBallots(e.ballot, expired.b) > 0)) {
        expired = { b: e.ballot, owner: e.value.owner };
      }
    } else if (r.why === 'held' && r.entry?.value != null && r.entry.ballot !== undefined) {
      const key = `${r.entry.ballot.t}/${r.entry.ballot.g}/${r.entry.seq}`;
      const h = held.get(key) ?? { count: 0, b: r.entry.ballot, owner: r.entry.value.owner };
      held.set(key, { ...h, count: h.count + 1 });
    }
  }
  const next = { ...s, replies, maxTerm };
  if (s.value !== undefined && accepted >= need) {
    // A majority accepted the value with the promise: granted in one round trip, the lease from its send.
    return [{ phase: 'monitoring', b: s.b, value: s.value, seq: 1 }, [{ type: 'granted', b: s.b, value: s.value, seq: 1, sentAt: s.sentAt }]];
  }
  if (promises >= need) {
    if (expired !== undefined && s.mode === 'free' && !s.probed) {
      return probe(ctx, { phase: 'reg_check', attempt: s.attempt, maxTerm, b: s.b, promised: true, holder: expired });
    }
    return commit(ctx, s.attempt, maxTerm, s.b, ev.now ?? 0, s.mode);
  }
  const majorityHeld = [...held.values()].find((h) => h.count >= need);
  if (s.mode === 'handoff' && s.from !== undefined && (majorityHeld !== undefined || ev.type === 'timeout' || replies.size >= ctx.members.length)) {
    // The marker naming this guard may still be on its way (a commit overtaken by this prepare): retry.
    const [st, effects] = backoff(ctx, s.attempt + 1, Math.max(maxTerm, s.b.t), [{ type: 'abandon', b: s.b }]);
    return [st.phase === 'backoff' ? { ...st, handoffFrom: s.from } : st, effects];
  }
  if (majorityHeld !== undefined && s.mode === 'takeover') {
    // A takeover the holder's node allowed, yet a majority still holds the name live (a handoff marker,
    // or a renewal on its way): probing again at once would answer the same and loop at network speed.
    // Wait like any lost round, so the attempts stay bounded and the marker or lease has time to settle.
    return backoff(ctx, s.attempt + 1, Math.max(maxTerm, s.b.t), [{ type: 'abandon', b: s.b }], majorityHeld.owner);
  }
  if (majorityHeld !== undefined) {
    return probe(ctx, { phase: 'reg_check', attempt: s.attempt, maxTerm, b: s.b, promised: false, holder: majorityHeld });
  }
  if (ev.type === 'timeout' || replies.size >= ctx.members.length) {
    const someHolder = [...held.values()][0]?.owner;
    return backoff(ctx, s.attempt + 1, Math.max(maxTerm, s.b.t), [{ type: 'abandon', b: s.b }], someHolder);
  }
  // Every member asked first has answered and that did not decide: only the others can decide now.
  if (s.pending !== undefined && replies.size >= ctx.members.length - s.pending.length) return widen(ctx, s, replies, maxTerm);
  return [next, []];
}

function probe(ctx: GuardContext, s: Extract<GuardState, { phase: 'reg_check' }>): Result {
  const { holder } = s;
  return [s, [
    { type: 'send', to: [holder.owner.node], msg: { type: 'probe', name: ctx.name, owner: holder.owner, b: holder.b } },
    { type: 'timer', ms: ctx.phaseTimeout, jitter: false },
  ]];
}

function onRegCheck(ctx: GuardContext, s: Extract<GuardState, { phase: 'reg_check' }>, ev: GuardEvent): Result {
  // Also without a majority of promises: a minority may have promised, or accepted a one-round-trip value.
  const abandon: GuardEffect[] = [{ type: 'abandon', b: s.b }];
  if (ev.type === 'deadline' || ev.type === 'release') return acquiringInterrupt(ctx, s, ev, abandon);
  const answered = ev.type === 'reply' && ev.msg.type === 'probeR';
  if (!answered && ev.type !== 'timeout') return [s, []];
  const holds = answered && ev.msg.type === 'probeR' && ev.msg.holds;
  if (holds) {
    return [{ phase: 'stopped' }, [...abandon, { type: 'failed', failure: { kind: 'already', owner: s.holder.owner } }, { type: 'stopped' }]];
  }
  if (s.promised) return commit(ctx, s.attempt, s.maxTerm, s.b, ev.now);
  // A live majority holds the name: only its own node's word that the holder is gone lets us take it.
  if (!answered) return [{ phase: 'stopped' }, [...abandon, { type: 'failed', failure: { kind: 'already', owner: s.holder.owner } }, { type: 'stopped' }]];
  const [next, effects] = prepare(ctx, s.attempt + 1, Math.max(s.maxTerm, s.b.t), 'takeover', ev.now, s.holder.b);
  return [next, [...abandon, ...effects]];
}

function onCommit(ctx: GuardContext, s: Extract<GuardState, { phase: 'commit' }>, ev: GuardEvent): Result {
  if (ev.type === 'deadline' || ev.type === 'release') return acquiringInterrupt(ctx, s, ev, []);
  const need = quorum(ctx.members);
  if (fromMember(ctx, ev) && ev.type === 'reply' && ev.msg.type === 'comR' && compareBallots(ev.msg.b, s.b) === 0 && ev.msg.seq === 1) {
    const acks = ev.msg.ok ? new Set(s.acks).add(ev.from) : s.acks;
    const nacks = ev.msg.ok ? s.nacks : new Set(s.nacks).add(ev.from);
    const maxTerm = Math.max(s.maxTerm, termsIn(ev.msg.entry));
    if (acks.size >= need) {
      return [{ phase: 'monitoring', b: s.b, value: s.value, seq: 1 },
        [{ type: 'granted', b: s.b, value: s.value, seq: 1, sentAt: s.sentAt }]];
    }
    if (ctx.members.length - nacks.size >= need) return [{ ...s, acks, nacks, maxTerm }, []];
    return failCommit(ctx, { ...s, maxTerm });
  }
  if (ev.type === 'timeout') return failCommit(ctx, s);
  return [s, []];
}

/** The commit lost to a rival or timed out: take back what was accepted, then try again. */
function failCommit(ctx: GuardContext, s: Extract<GuardState, { phase: 'commit' }>): Result {
  return backoff(ctx, s.attempt + 1, Math.max(s.maxTerm, s.b.t), [
    { type: 'send', to: ctx.members, msg: { type: 'com', name: ctx.name, b: s.b, v: null, seq: 2 } },
  ]);
}

function onMonitoring(ctx: GuardContext, s: Extract<GuardState, { phase: 'monitoring' }>, ev: GuardEvent): Result {
  switch (ev.type) {
    case 'lease-lost':
      return [{ phase: 'stopped' }, [{ type: 'revoke', reason: 'lost' }, { type: 'release' }, { type: 'stopped' }]];
    case 'release':
      return stopping(ctx, s.b, s.seq, [{ type: 'revoke', reason: ev.reason }, { type: 'release' }]);
    case 'handoff':
      return [{ phase: 'handoff', step: 'offer', to: ev.owner, acks: new Set(), b: s.b, value: s.value, seq: s.seq }, [
        { type: 'send', to: [ev.owner.node], msg: { type: 'hoff', name: ctx.name, owner: ev.owner, from: s.b } },
        { type: 'timer', ms: ctx.phaseTimeout, jitter: false },
      ]];
    default:
      return [s, []];
  }
}

function onHandoff(ctx: GuardContext, s: Extract<GuardState, { phase: 'handoff' }>, ev: GuardEvent): Result {
  const fail = (failure: GuardFailure, effects: GuardEffect[] = []): Result =>
    [{ phase: 'stopped' }, [...effects, { type: 'handoff-done', ok: false, failure }, { type: 'stopped' }]];
  if (s.step === 'offer') {
    if (ev.type === 'lease-lost' || ev.type === 'release') {
      const [next, effects] = onMonitoring(ctx, { phase: 'monitoring', b: s.b, value: s.value, seq: s.seq }, ev);
      return [next, [{ type: 'handoff-done', ok: false, failure: { kind: 'refused' } }, ...effects]];
    }
    const r = ev.type === 'reply' && ev.msg.type === 'hoffR' ? (ev.msg as HandoffReply) : undefined;
    if (r === undefined && ev.type !== 'timeout') return [s, []];
    if (r === undefined || !r.ok || r.guard === undefined) {
      // The receiver refused (owner not alive) or did not answer: keep the name.
      const failure: GuardFailure = r?.err === 'not-alive' ? { kind: 'not-alive' } : { kind: 'timeout' };
      return [{ phase: 'monitoring', b: s.b, value: s.value, seq: s.seq }, [{ type: 'handoff-done', ok: false, failure }]];
    }
    // Revoke the old owner first, then mark the value for the new guard under our ballot.
    const marker: Value = { owner: s.to, gnode: ctx.node, hb: ctx.hb, handoffTo: r.guard };
    return [{ ...s, step: 'marker', target: r.guard, value: marker, seq: s.seq + 1 }, [
      { type: 'revoke', reason: 'handoff' }, { type: 'release' },
      { type: 'send', to: ctx.members, msg: { type: 'com', name: ctx.name, b: s.b, v: marker, seq: s.seq + 1 } },
      { type: 'timer', ms: ctx.phaseTimeout, jitter: false },
    ]];
  }
  if (s.step === 'marker') {
    if (ev.type === 'timeout') {
      // The marker did not reach a majority: take back what was accepted so the name is free at once.
      const failure: GuardFailure = { kind: 'no-consensus', answered: s.acks.size, needed: quorum(ctx.members) };
      return stopping(ctx, s.b, s.seq, [{ type: 'handoff-done', ok: false, failure }]);
    }
    if (fromMember(ctx, ev) && ev.type === 'reply' && ev.msg.type === 'comR' && compareBallots(ev.msg.b, s.b) === 0 && ev.msg.seq === s.seq && ev.msg.ok) {
      const acks = new Set(s.acks).add(ev.from);
      if (acks.size < quorum(ctx.members)) return [{ ...s, acks }, []];
      return [{ ...s, step: 'go', acks }, [
        { type: 'send', to: [s.to.node], msg: { type: 'hgo', name: ctx.name, guard: s.target ?? '', seq: s.seq } },
        { type: 'timer', ms: ctx.phaseTimeout * 4, jitter: false },
      ]];
    }
    return [s, []];
  }
  const r = ev.type === 'reply' && ev.msg.type === 'hgoR' ? (ev.msg as HandoffGoReply) : undefined;
  if (r === undefined && ev.type !== 'timeout') return [s, []];
  if (r?.ok === true) return [{ phase: 'stopped' }, [{ type: 'handoff-done', ok: true }, { type: 'stopped' }]];
  return fail({ kind: 'no-consensus', answered: 0, needed: quorum(ctx.members) });
}
