/**
 * Quorum reads for `whereis` and `lookup`: the answer a majority agrees on decides. A live value (not
 * expired by the acceptor's own clock) is identified by its ballot and seq; absent, tombstoned and expired
 * values all count as "free". Members that are recovering do not vote. Each member's vote counts once (a
 * duplicated reply is not a second vote).
 *
 * A read first asks just a majority: this node and enough reachable peers (taken in turn, so the load
 * spreads). It asks the other members as soon as one of those answers differently, refuses, or has not
 * answered within a short wait; so a read costs one message per peer it needs, not one per member,
 * and a disagreement costs a round trip, not a timeout. Without a majority agreement the read retries a
 * few times (values settle within a round trip) and then rejects with NoConsensusError; it never guesses.
 */
import type { Clock } from './clock.js';
import { NoConsensusError } from './errors.js';
import { firstWave } from './first-wave.js';
import type { Ballot, Message, Value } from './protocol/messages.js';
import type { Rpc } from './rpc.js';

/** What a majority agreed on. */
export type ReadResult =
  | { readonly kind: 'free' }
  | { readonly kind: 'held'; readonly b: Ballot; readonly value: Value; readonly seq: number };

export interface ReadComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly members: () => readonly string[];
  /** This node's id: its own acceptor answers without a network hop, so it is always asked first. */
  readonly self?: string;
  /** Whether a peer is reachable now; unreachable ones are not asked first. Default: all are. */
  readonly reachable?: (node: string) => boolean;
  /** Rotates which peers are asked first (any integer; consecutive reads should pass different ones). */
  readonly turn?: () => number;
}

const ATTEMPTS = 4;

/** The longest a {@link quorumRead} can take before it settles by itself, in ms. */
export function readDuration(phaseTimeout: number): number {
  let ms = 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) ms += phaseTimeout + 2 ** attempt;
  return ms;
}

/** Reads `name` from a majority. Rejects with NoConsensusError when no majority agrees. */
export async function quorumRead(c: ReadComponents, name: string, phaseTimeout: number): Promise<ReadResult> {
  let last = { answered: 0, needed: 0 };
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const r = await readOnce(c, name, phaseTimeout, attempt === 0);
    if (r.result !== undefined) return r.result;
    last = r;
    // Give an in-flight commit or renewal a moment to land before asking again.
    await new Promise<void>((resolve) => c.clock.setTimeout(resolve, 2 ** attempt));
  }
  throw new NoConsensusError(name, last.answered, last.needed);
}

function readOnce(
  c: ReadComponents, name: string, phaseTimeout: number, staged: boolean,
): Promise<{ result?: ReadResult; answered: number; needed: number }> {
  const members = c.members();
  const needed = Math.floor(members.length / 2) + 1;
  // A retry asks everyone at once: the first try already found the majority disagreeing.
  const { first, rest } = staged ? firstWave(members, c.self, c.reachable, c.turn?.() ?? 0) : { first: members, rest: [] };
  return new Promise((resolve) => {
    const votes = new Map<string, { count: number; result: ReadResult }>();
    const heard = new Set<string>();
    let answered = 0;
    let widened = rest.length === 0;
    // One timer: first the wait before asking the rest, then what is left of the phase timeout.
    const widenAfter = Math.max(1, phaseTimeout / 10);
    const widen = (): void => {
      if (widened) return;
      widened = true;
      for (const m of rest) c.rpc.send(m, { type: 'read', rid, name });
    };
    const finish = (result?: ReadResult): void => {
      c.rpc.close(rid);
      c.clock.clearTimeout(timer);
      resolve(result === undefined ? { answered, needed } : { result, answered, needed });
    };
    const rid = c.rpc.open((from, msg: Message) => {
      if (msg.type !== 'readR' || !members.includes(from) || heard.has(from)) return;
      heard.add(from);
      if (msg.ok) {
        answered++;
        const e = msg.entry;
        const live = e !== undefined && e.value !== null && e.ballot !== undefined && !e.expired;
        const key = live ? `${e.ballot!.t}/${e.ballot!.g}/${e.seq}` : 'free';
        const result: ReadResult = live ? { kind: 'held', b: e.ballot!, value: e.value!, seq: e.seq } : { kind: 'free' };
        const v = votes.get(key) ?? { count: 0, result };
        v.count++;
        votes.set(key, v);
        if (v.count >= needed) return finish(v.result);
        // Two different answers (or one refusal) among the first asked: only the others can decide.
        if (votes.size > 1) widen();
      } else {
        widen();
      }
      if (heard.size >= members.length) finish();
    });
    let timer = widened
      ? c.clock.setTimeout(() => finish(), phaseTimeout)
      : c.clock.setTimeout(() => {
        widen();
        timer = c.clock.setTimeout(() => finish(), phaseTimeout - widenAfter);
      }, widenAfter);
    for (const m of first) c.rpc.send(m, { type: 'read', rid, name });
  });
}
