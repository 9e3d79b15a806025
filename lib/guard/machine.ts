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
 *
 * This file dispatches events by phase and runs the holding phases (monitoring, handoff, stopping); the
 * acquiring phases are in acquire.ts, the states, events and effects in states.ts.
 */
import { compareBallots } from '../protocol/ballot.js';
import type { HandoffGoReply, HandoffReply, Value } from '../protocol/messages.js';
import { acquiringInterrupt, onCommit, onPrepare, onRegCheck, prepare } from './acquire.js';
import {
  commitMsg, fromMember, quorum, stopping, type GuardContext, type GuardEffect, type GuardEvent, type GuardFailure, type GuardState, type Result,
} from './states.js';

export {
  initialState, ownValue, quorum, waitingState,
  type GuardContext, type GuardEffect, type GuardEvent, type GuardFailure, type GuardState, type Outgoing, type Result,
} from './states.js';

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
      { type: 'send', to: ctx.members, msg: commitMsg(ctx, s.b, marker, s.seq + 1) },
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
