/**
 * A history of ownership as owners saw it, and the checker of the safety properties pes promises:
 * - at most one owner per (name, token);
 * - tokens strictly rise per name, in the order grants happen;
 * - no two owners' holding intervals of one name overlap (an interval runs from the grant until the
 *   owner is told it ended: its signal aborts);
 * - no acknowledged registration is lost while nothing went wrong: a 'lost' end needs a fault (partition,
 *   loss, crash or restart) in the lease period before it.
 * Times are the cluster's global time, not any node's (drifting) clock; events of one instant are taken
 * in the order the history lists them (the order they happened).
 */

export interface Grant {
  readonly type: 'grant';
  readonly name: string;
  /** A stable id of the owner (node, incarnation, id). */
  readonly owner: string;
  readonly token: number;
  readonly at: number;
}

export interface End {
  readonly type: 'end';
  readonly name: string;
  readonly owner: string;
  readonly token: number;
  readonly at: number;
  readonly reason: string;
}

export type HistoryEvent = Grant | End;

export interface Violation {
  readonly kind: 'two-owners-one-token' | 'token-not-rising' | 'overlap' | 'lost-without-fault' | 'end-without-grant';
  readonly name: string;
  readonly detail: string;
}

export interface CheckOptions {
  /** Whether a fault happened in [from, to] (global time); a 'lost' end needs one. Omit to skip the check. */
  readonly faultBetween?: (from: number, to: number) => boolean;
  /** How far back from a 'lost' end to look for a fault (the lease period, plus a heartbeat). */
  readonly lostWindow?: number;
}

/** Checks a history; returns every violation found (empty when the history is safe). */
export function checkHistory(events: readonly HistoryEvent[], options: CheckOptions = {}): Violation[] {
  const out: Violation[] = [];
  const byName = new Map<string, HistoryEvent[]>();
  for (const e of events) {
    let list = byName.get(e.name);
    if (list === undefined) byName.set(e.name, (list = []));
    list.push(e);
  }
  for (const [name, list] of byName) {
    // Stable by time: events of one instant keep the order in which they happened (the history's order).
    const sorted = [...list].sort((a, b) => a.at - b.at);
    const ownerOfToken = new Map<number, string>();
    let lastToken = -Infinity;
    /** Open intervals: key owner/token -> start. */
    const open = new Map<string, Grant>();
    for (const e of sorted) {
      const key = `${e.owner}#${e.token}`;
      if (e.type === 'grant') {
        const prev = ownerOfToken.get(e.token);
        if (prev !== undefined && prev !== e.owner) {
          out.push({ kind: 'two-owners-one-token', name, detail: `token ${e.token}: ${prev} and ${e.owner}` });
        }
        ownerOfToken.set(e.token, e.owner);
        if (e.token <= lastToken) out.push({ kind: 'token-not-rising', name, detail: `token ${e.token} at ${e.at} after ${lastToken}` });
        lastToken = Math.max(lastToken, e.token);
        for (const other of open.values()) {
          out.push({ kind: 'overlap', name, detail: `${e.owner}#${e.token} granted at ${e.at} while ${other.owner}#${other.token} holds since ${other.at}` });
        }
        open.set(key, e);
      } else {
        const g = open.get(key);
        if (g === undefined) {
          out.push({ kind: 'end-without-grant', name, detail: `${key} ended at ${e.at}` });
          continue;
        }
        open.delete(key);
        if (e.reason === 'lost' && options.faultBetween !== undefined) {
          const from = Math.max(g.at, e.at - (options.lostWindow ?? Infinity));
          if (!options.faultBetween(from, e.at)) {
            out.push({ kind: 'lost-without-fault', name, detail: `${key} lost at ${e.at} with no fault since ${from}` });
          }
        }
      }
    }
  }
  return out;
}

/** Registrations still held at the end of a history: name -> owner. */
export function heldAtEnd(events: readonly HistoryEvent[]): Map<string, { owner: string; token: number }> {
  const open = new Map<string, { owner: string; token: number }>();
  const sorted = [...events].sort((a, b) => a.at - b.at);
  for (const e of sorted) {
    if (e.type === 'grant') open.set(e.name, { owner: e.owner, token: e.token });
    else if (open.get(e.name)?.token === e.token && open.get(e.name)?.owner === e.owner) open.delete(e.name);
  }
  return open;
}
