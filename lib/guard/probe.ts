/**
 * The answer to a probe: does the guard of `m.owner` on this node hold `m.name` at ballot `m.b`? A
 * rival about to take the name over asks the holder's node this, and takes over only on "no", so every
 * state in which this node's guard has, or is about to have, that very grant must answer "yes".
 */
import { sameOwner } from '../owner.js';
import { compareBallots } from '../protocol/ballot.js';
import type { ProbeMsg } from '../protocol/messages.js';
import type { GuardSet } from './guard-set.js';
import type { GuardRecord } from './record.js';

/** Whether this node holds what `m` asks about; `holder` is the record holding `m.name` here, if any. */
export function holdsProbed(m: ProbeMsg, holder: GuardRecord | undefined, guards: GuardSet, node: string): boolean {
  // Granted, with a valid lease, to that owner under that ballot.
  if (holder?.registration?.valid === true && holder.term === m.b.t && holder.gid === m.b.g && sameOwner(holder.owner, m.owner)) {
    return true;
  }
  // Still acquiring with that very ballot (committing it, or a one-round-trip prepare that carried the
  // value): a majority may have accepted, the acks still on their way, so a grant may come any moment.
  const st = guards.running(m.b.g)?.guard?.state;
  if ((st?.phase === 'commit' || st?.phase === 'prepare' || st?.phase === 'reg_check') && compareBallots(st.b, m.b) === 0) return true;
  // Waiting to take the name over from that ballot for that owner: the probed value is a handoff marker
  // naming an owner here, whose guard gets the name as soon as the marker's "go" arrives. "No" would send
  // the asker into takeovers that the live marker refuses; "yes" makes it give up at once.
  if (m.owner.node !== node) return false;
  return guards.ofOwner(m.owner.id).some((rec) => {
    const w = rec.guard?.state;
    return rec.name === m.name && sameOwner(rec.owner, m.owner) && w?.phase === 'waiting' && compareBallots(w.from, m.b) === 0;
  });
}
