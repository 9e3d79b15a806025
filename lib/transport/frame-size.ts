/**
 * Keeps frames small. A peer's messages of one turn travel as one frame, and a turn that lists every
 * held name (a sync: thousands of entries) made frames of several MB. Each such frame makes the encoder
 * grow its buffer to four times that and libzmq allocate as much on receipt; once freed, blocks that size
 * raise the C allocator's mmap threshold, and every later buffer comes from its heap, which then cannot
 * shrink: about 15 MB of resident memory per node at 100k names. So a turn's messages are split into
 * frames of about {@link SOFT_FRAME_BYTES}, by an estimate of their encoded size made before encoding.
 */
import type { Ballot, EntryView, Message, SyncEntry, Value } from '../protocol/messages.js';

/** Frames are cut near this size (one message larger than it still travels alone). */
export const SOFT_FRAME_BYTES = 256 * 1024;

/** Bytes of a message's fixed fields (type, rid, short keys and numbers). */
const BASE = 96;

// Upper bounds of msgpack sizes for ASCII text (keys, headers, 9-byte numbers), from string lengths:
// cheap to add up, no encoding needed.
function ballotBytes(b: Ballot | undefined): number {
  return b === undefined ? 0 : 24 + b.g.length;
}
function valueBytes(v: Value | null): number {
  return v === null ? 1 : 64 + v.owner.node.length + v.gnode.length + (v.handoffTo?.length ?? 0) + 14;
}
function entryBytes(e: SyncEntry): number {
  return 16 + e[0].length + ballotBytes(e[1]) + valueBytes(e[2]);
}
function viewBytes(e: EntryView): number {
  return 48 + ballotBytes(e.promise) + ballotBytes(e.ballot) + valueBytes(e.value);
}
function sum<T>(xs: readonly T[] | undefined, f: (x: T) => number): number {
  let n = 0;
  for (const x of xs ?? []) n += f(x);
  return n;
}

/** About how many bytes `m` encodes to (an upper bound for ASCII text; owner message bodies count as small). */
export function estimatedBytes(m: Message): number {
  switch (m.type) {
    case 'sync': return BASE + sum(m.entries, entryBytes);
    case 'syncR': return BASE + sum(m.refused, (r) => 8 + viewBytes(r[1]));
    case 'helloR': return BASE + sum(m.entries, entryBytes);
    case 'gossip': return BASE + 160 * m.members.members.length + 64 * m.config.length;
    case 'mgetR':
    case 'mset': return BASE + 160 * m.members.members.length;
    case 'statusR': return BASE + 160 * m.members.members.length + 48 * m.live.length;
    default: return BASE;
  }
}

/** `messages` in order, cut into runs whose estimated size stays within `maxBytes` (each run has one message at least). */
export function splitBySize(messages: readonly Message[], maxBytes = SOFT_FRAME_BYTES): (readonly Message[])[] {
  const out: (readonly Message[])[] = [];
  let start = 0;
  let size = 0;
  for (let i = 0; i < messages.length; i++) {
    const bytes = estimatedBytes(messages[i] as Message);
    if (i > start && size + bytes > maxBytes) {
      out.push(messages.slice(start, i));
      start = i;
      size = 0;
    }
    size += bytes;
  }
  if (start === 0) return messages.length === 0 ? [] : [messages];
  out.push(messages.slice(start));
  return out;
}
