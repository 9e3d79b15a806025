/**
 * The guard's acquiring phases: prepare (its replies double as the read; a first attempt for a free name
 * carries the value and is granted in one round trip by a majority accepting it), reg_check (ask the
 * holder's node whether a held or expired holder is really alive), commit, and the backoff between
 * attempts. Pure functions of (context, state, event), called by `transition` in machine.ts.
 */
import { compareBallots } from '../protocol/ballot.js';
import type { Ballot, EntryView, OwnerRef, PrepareMode, PrepareReply, Value } from '../protocol/messages.js';
import {
  commitMsg, fromMember, ownValue, quorum, stopping,
  type GuardContext, type GuardEffect, type GuardEvent, type GuardFailure, type GuardState, type Outgoing, type Result,
} from './states.js';

const MAX_ATTEMPTS = 8;

function termsIn(e: EntryView | undefined): number {
  return Math.max(e?.promise?.t ?? 0, e?.ballot?.t ?? 0);
}

/**
 * Sends a prepare. The first attempt to register a free name also carries the value: acceptors with no
 * value for the name accept it at once, and a majority of them grants it without a commit round. Later
 * attempts (a rival was seen) and takeovers use the two phases.
 */
export function prepare(ctx: GuardContext, attempt: number, maxTerm: number, mode: PrepareMode, now: number, from?: Ballot): Result {
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
  if (ctx.mv !== undefined) msg.mv = ctx.mv;
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
    [{ type: 'send', to: ctx.members, msg: commitMsg(ctx, b, value, 1) },
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

/** Owner exit, caller deadline or unregister while still acquiring. */
export function acquiringInterrupt(ctx: GuardContext, s: GuardState & { maxTerm: number }, ev: GuardEvent, pre: GuardEffect[]): Result {
  if (ev.type !== 'deadline' && ev.type !== 'release') return [s, []];
  const failure: GuardFailure = ev.type === 'deadline' ? { kind: 'timeout' } : ev.reason === 'exit' ? { kind: 'not-alive' } : { kind: 'refused' };
  if (s.phase === 'commit') {
    // Part of the cluster may have accepted this value: take it back so no entry is left without a guard.
    return stopping(ctx, s.b, 1, [...pre, { type: 'failed', failure }]);
  }
  return [{ phase: 'stopped' }, [...pre, { type: 'failed', failure }, { type: 'stopped' }]];
}

export function onPrepare(ctx: GuardContext, s: Extract<GuardState, { phase: 'prepare' }>, ev: GuardEvent): Result {
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

export function onRegCheck(ctx: GuardContext, s: Extract<GuardState, { phase: 'reg_check' }>, ev: GuardEvent): Result {
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

export function onCommit(ctx: GuardContext, s: Extract<GuardState, { phase: 'commit' }>, ev: GuardEvent): Result {
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
    { type: 'send', to: ctx.members, msg: commitMsg(ctx, s.b, null, 2) },
  ]);
}
