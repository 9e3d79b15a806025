/**
 * Codec fuzz: decodeFrame must never throw, and a frame it accepts must hold only well-formed
 * messages. Frames come from a seeded generator (mulberry32) in six kinds: random bytes, random
 * msgpack token streams (every extension msgpackr knows, record definitions, non-string map keys),
 * random JS values packed by msgpackr (`__proto__` keys included), byte-level mutations of valid
 * frames, object-level mutations of valid frames re-encoded, and random valid frames (which must be
 * accepted and round-trip).
 *
 * Every accepted frame is checked by oracles independent of the codec's own validator: isMessage
 * holds for each message, every object in it (bodies aside) is a plain object or array, and
 * re-encoding it decodes to an equal frame. Object.prototype and Array.prototype are checked for
 * pollution, and a canary frame for state leaking from one decode into the next.
 *
 * Reproduce a failure with `FUZZ_SEED=<seed> node --conditions=source --import tsx <this file>`;
 * `FUZZ_SCALE=10` runs ten times as many frames.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Packr } from 'msgpackr';
import { decodeFrame, encodeFrame, isMessage, MESSAGE_TYPES } from '../../lib/protocol/codec.js';
import {
  PROTOCOL_VERSION, type Ballot, type EntryView, type Frame, type Message, type MessageType, type OwnerRef, type Value,
} from '../../lib/protocol/messages.js';

// ---- seeded randomness -----------------------------------------------------------------------------

function parseSeed(s: string | undefined): number | undefined {
  if (s === undefined || s === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n >>> 0 : undefined;
}
const SEED = parseSeed(process.env['FUZZ_SEED']) ?? 0x9e3779b9;
const SCALE = Math.max(0.01, Number(process.env['FUZZ_SCALE'] ?? '1') || 1);
const SEED_HEX = `0x${SEED.toString(16).padStart(8, '0')}`;

/** mulberry32: tiny, fast, good enough to drive a fuzzer; same seed, same frames. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

// ---- vocabulary ------------------------------------------------------------------------------------

const FIELD_NAMES = [
  'type', 'rid', 'name', 'ok', 'entry', 'b', 'mode', 'from', 'why', 'floor', 'v', 'seq', 'expectPromise',
  'expectBallot', 'hb', 'count', 'digest', 'part', 'parts', 'entries', 'refused', 'owner', 'alive', 'holds',
  'empty', 'guard', 'token', 'err', 'op', 'to', 'body', 'call', 'members', 'config', 't', 'g', 'node', 'inc',
  'id', 'gnode', 'handoffTo', 'promise', 'ballot', 'value', 'expired', 'endpoint', 'key', 'version', 'by',
];
const PROTO_NAMES = [
  '__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__',
  '__lookupSetter__', 'isPrototypeOf', 'toLocaleString', 'length',
];
const ENUMS = [
  'free', 'takeover', 'handoff', 'update', 'unregister', 'ballot', 'held', 'recovering', 'not-alive',
  'not-found', 'not-registered', 'no-consensus', 'timeout', 'stopped', 'busy', 'failed',
];
const STRINGS = [...MESSAGE_TYPES, ...FIELD_NAMES, ...PROTO_NAMES, ...ENUMS, '', 'n1', 'n1/1/1', '€', '😀', '\u0000'];
const NUMBERS = [
  0, 1, -1, 2, 3, 63, 64, 100, 127, 128, 255, 256, 1000, 8048, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1,
  2 ** 32, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 0.5, -0, NaN, Infinity, -Infinity, 1e308, 4096, 4097, 100_000,
];
const EXT_TYPES = [0x00, 0x42, 0x62, 0x65, 0x69, 0x70, 0x72, 0x73, 0x74, 0x78, 0xff, 0x01, 0x7f, 0x80];

// ---- random valid messages -------------------------------------------------------------------------

function count(r: Rng): number {
  return r.pick([0, 1, 2, 63, 64, 127, 128, 255, 256, 65536, 2 ** 32, Number.MAX_SAFE_INTEGER, r.int(1e6)]);
}
function text(r: Rng, max: number): string {
  const chars = ['a', 'Z', '0', ':', '/', ' ', 'é', '€', '😀', '中', '\u0000', '\u00ff'];
  let s = '';
  const n = 1 + r.int(max);
  for (let i = 0; i < n; i++) s += r.pick(chars);
  return s;
}
function id(r: Rng): string {
  return r.chance(0.05) ? 'i'.repeat(256) : text(r, 12);
}
function name(r: Rng): string {
  if (r.chance(0.03)) return '€'.repeat(341) + 'a'; // 1024 bytes, the limit
  return text(r, 24);
}
function ballot(r: Rng): Ballot {
  return { t: count(r), g: id(r) };
}
function owner(r: Rng): OwnerRef {
  return { node: id(r), inc: count(r), id: count(r) };
}
function val(r: Rng): Value {
  const v = { owner: owner(r), gnode: id(r), hb: 1 + r.int(10_000) };
  return r.chance(0.3) ? { ...v, handoffTo: id(r) } : v;
}
function opt<K extends string, V>(r: Rng, key: K, make: () => V): { [k in K]?: V } {
  return (r.chance(0.5) ? { [key]: make() } : {}) as { [k in K]?: V };
}
function entry(r: Rng): EntryView {
  return {
    ...opt(r, 'promise', () => ballot(r)), ...opt(r, 'ballot', () => ballot(r)),
    value: r.chance(0.3) ? null : val(r), seq: count(r), expired: r.chance(0.5),
  };
}
function why(r: Rng): 'ballot' | 'held' | 'recovering' | 'stale' {
  return r.pick(['ballot', 'held', 'recovering', 'stale'] as const);
}
function err(r: Rng): 'not-alive' | 'busy' | 'failed' | 'timeout' {
  return r.pick(['not-alive', 'busy', 'failed', 'timeout'] as const);
}
function body(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 4 : 6)) {
    case 0: return r.pick(NUMBERS.filter(Number.isFinite));
    case 1: return text(r, 10);
    case 2: return r.chance(0.5) ? null : r.chance(0.5);
    case 3: return Buffer.from(r.bytes(r.int(8)));
    case 4: return Array.from({ length: r.int(4) }, () => body(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(4); i > 0; i--) o[r.pick(FIELD_NAMES)] = body(r, depth + 1);
      return o;
    }
  }
}

/** A member list with distinct ids. */
function memberList(r: Rng): { version: number; members: { id: string; endpoint: string }[] } {
  const ids = new Set<string>();
  for (let i = r.int(4); i > 0; i--) ids.add(id(r));
  return { version: count(r), members: [...ids].map((x) => ({ id: x, endpoint: text(r, 20) })) };
}

/** A random valid message of the given type (optional fields present or not). */
function validMessage(r: Rng, type: MessageType): Message {
  const rid = count(r);
  switch (type) {
    case 'read': return { type, rid, name: name(r) };
    case 'readR': return { type, rid, name: name(r), ok: r.chance(0.5), ...opt(r, 'entry', () => entry(r)) };
    case 'prep': {
      const mode = r.pick(['free', 'takeover', 'handoff'] as const);
      // A value (with the list version its guard asks) rides only on a 'free' prepare.
      const carried = mode === 'free' ? { ...opt(r, 'v', () => val(r)), ...opt(r, 'mv', () => count(r)) } : {};
      return { type, rid, name: name(r), b: ballot(r), mode, ...opt(r, 'from', () => ballot(r)), ...carried };
    }
    case 'prepR': return { type, rid, name: name(r), b: ballot(r), ok: r.chance(0.5), ...opt(r, 'why', () => why(r)), ...opt(r, 'entry', () => entry(r)), floor: count(r) };
    case 'com': return { type, rid, name: name(r), b: ballot(r), v: r.chance(0.3) ? null : val(r), seq: count(r), ...opt(r, 'mv', () => count(r)) };
    case 'comR': return { type, rid, name: name(r), b: ballot(r), seq: count(r), ok: r.chance(0.5), ...opt(r, 'why', () => why(r)), ...opt(r, 'entry', () => entry(r)) };
    case 'abandon': return { type, name: name(r), b: ballot(r) };
    case 'renew': return { type, rid, hb: 1 + r.int(10_000), count: count(r), digest: count(r), ...opt(r, 'mv', () => count(r)), ...opt(r, 'lv', () => count(r)) };
    case 'renewR': return { type, rid, ok: r.chance(0.5), count: count(r), digest: count(r), ...opt(r, 'why', () => why(r)) };
    case 'sync': {
      const parts = 1 + r.int(4);
      return {
        type, rid, hb: 1 + r.int(10_000), part: r.int(parts), parts,
        entries: Array.from({ length: r.int(4) }, () => [name(r), ballot(r), val(r), count(r)] as const), ...opt(r, 'lv', () => count(r)),
      };
    }
    case 'syncR': return { type, rid, part: count(r), refused: Array.from({ length: r.int(3) }, () => [count(r), entry(r)] as const) };
    case 'probe': return { type, rid, name: name(r), owner: owner(r), b: ballot(r) };
    case 'probeR': return { type, rid, alive: r.chance(0.5), holds: r.chance(0.5) };
    case 'hello': return { type, rid };
    case 'helloR': return { type, rid, complete: r.chance(0.5), voting: r.chance(0.5), ...opt(r, 'entries', () => [[name(r), ballot(r), val(r), count(r)] as const]) };
    case 'hoff': return { type, rid, name: name(r), owner: owner(r), from: ballot(r) };
    case 'hoffR': return { type, rid, ok: r.chance(0.5), ...opt(r, 'guard', () => id(r)), ...opt(r, 'err', () => err(r)) };
    case 'hgo': return { type, rid, name: name(r), guard: id(r), seq: count(r) };
    case 'hgoR': return { type, rid, ok: r.chance(0.5), ...opt(r, 'token', () => count(r)), ...opt(r, 'err', () => err(r)) };
    case 'fwd': return { type, rid, op: r.pick(['update', 'unregister'] as const), name: name(r), b: ballot(r), ...opt(r, 'owner', () => owner(r)) };
    case 'fwdR': return { type, rid, ok: r.chance(0.5), ...opt(r, 'err', () => err(r)) };
    case 'msg': return { type, rid, name: name(r), to: owner(r), body: body(r), call: r.chance(0.5) };
    case 'msgR': return { type, rid, ok: r.chance(0.5), ...opt(r, 'body', () => body(r)), ...opt(r, 'err', () => err(r)) };
    case 'gossip': return {
      type,
      members: memberList(r),
      config: Array.from({ length: r.int(3) }, () => ({ key: text(r, 20), value: r.pick([0, -1, 0.25, 8048, -1e9]), version: count(r), by: id(r) })),
    };
    case 'own': return { type, name: name(r), b: ballot(r), v: val(r), seq: count(r), ...opt(r, 'mv', () => count(r)) };
    case 'ping': return { type, rid };
    case 'pong': return { type, rid };
    case 'mget': return { type, rid };
    case 'ncall': return { type, rid, topic: text(r, 20), body: body(r) };
    case 'ncallR': return { type, rid, ok: r.chance(0.5), ...opt(r, 'body', () => body(r)), ...opt(r, 'err', () => err(r)) };
    case 'status': return { type, rid };
    case 'mgetR': return { type, rid, members: memberList(r) };
    case 'mset': return { type, rid, members: memberList(r) };
    case 'msetR': return { type, rid, version: count(r) };
    case 'join': return { type, rid, id: id(r), endpoint: text(r, 30), shards: 1 + r.int(64) };
    case 'joinR': return { type, rid, ok: r.chance(0.5), ...opt(r, 'members', () => memberList(r)), ...opt(r, 'wasMember', () => r.chance(0.5)), ...opt(r, 'err', () => err(r)) };
    case 'statusR': return { type, rid, node: id(r), members: memberList(r), live: Array.from({ length: r.int(4) }, () => id(r)), held: count(r), voting: r.chance(0.5) };
  }
}
function validFrame(r: Rng): Frame {
  const messages = Array.from({ length: 1 + r.int(4) }, () => validMessage(r, r.pick(MESSAGE_TYPES) as MessageType));
  return { version: PROTOCOL_VERSION, sender: id(r), inc: count(r), messages };
}

// ---- random values, token streams and mutations ----------------------------------------------------

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true });

/** Sets an own enumerable key, even `__proto__` (plain assignment would change the prototype). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 7 : 10)) {
    case 0: return r.pick(NUMBERS);
    case 1: return r.chance(0.7) ? r.pick(STRINGS) : text(r, 40);
    case 2: return r.pick([true, false, null, undefined]);
    case 3: return Buffer.from(r.bytes(r.int(6)));
    case 4: return r.pick([0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n]);
    case 5: return r.pick([ballot(r), owner(r), val(r), entry(r)]);
    case 6: return validMessage(r, r.pick(MESSAGE_TYPES) as MessageType);
    case 7: return Array.from({ length: r.int(5) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(5); i > 0; i--) setOwn(o, r.chance(0.8) ? r.pick(STRINGS) : text(r, 6), randomValue(r, depth + 1));
      return o;
    }
  }
}
function randomValueFrame(r: Rng): Uint8Array | undefined {
  const v = r.chance(0.3)
    ? randomValue(r)
    : [
      r.chance(0.8) ? PROTOCOL_VERSION : randomValue(r, 3),
      r.chance(0.8) ? id(r) : randomValue(r, 3),
      r.chance(0.8) ? count(r) : randomValue(r, 3),
      r.chance(0.9) ? Array.from({ length: r.int(4) }, () => randomValue(r, 1)) : randomValue(r, 2),
    ];
  try {
    return packr.pack(v);
  } catch {
    return undefined; // e.g. a BigInt msgpack cannot hold
  }
}

/** Appends raw msgpack tokens: everything the format and msgpackr's extensions allow, and some lies. */
class Tokens {
  readonly out: number[] = [];
  constructor(readonly r: Rng) {}
  u(n: number, width: 1 | 2 | 4): void {
    for (let i = width - 1; i >= 0; i--) this.out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
  }
  raw(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]!);
  }
  str(s: string): void {
    const b = Buffer.from(s);
    if (b.length < 32) this.out.push(0xa0 | b.length);
    else if (b.length < 256) this.raw([0xd9, b.length]);
    else { this.out.push(0xda); this.u(b.length, 2); }
    this.raw(b);
  }
  ext(type: number, payload: Uint8Array): void {
    const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
    const f = fixed[payload.length];
    if (f !== undefined && this.r.chance(0.7)) this.raw([f, type]);
    else { this.raw([0xc7, payload.length, type]); }
    this.raw(payload);
  }
  value(depth: number): void {
    const r = this.r;
    switch (r.int(depth > 4 ? 9 : 12)) {
      case 0: this.out.push(r.int(0x80)); return; // 0x40..0x7f are record references once defined
      case 1: this.out.push(0xe0 + r.int(32)); return;
      case 2: this.out.push(r.pick([0xc0, 0xc2, 0xc3, 0xc1])); return;
      case 3: {
        const [head, width] = r.pick([[0xcc, 1], [0xcd, 2], [0xce, 4], [0xcf, 8], [0xd0, 1], [0xd1, 2], [0xd2, 4], [0xd3, 8], [0xca, 4], [0xcb, 8]] as const);
        this.out.push(head);
        this.raw(r.bytes(width));
        return;
      }
      case 4:
        if (r.chance(0.7)) this.str(r.pick(STRINGS));
        else { const b = r.bytes(r.int(40)); this.raw([0xd9, b.length]); this.raw(b); } // not always UTF-8
        return;
      case 5: { const b = r.bytes(r.int(10)); this.raw([r.pick([0xc4, 0xc4, 0xc5]), ...(r.chance(0.5) ? [b.length] : [0, b.length])].slice(0, 3)); this.raw(b); return; }
      case 6: {
        const type = r.pick(EXT_TYPES);
        if (type === 0x69 || type === 0x70) { this.ext(type, Uint8Array.of(0, 0, 0, r.int(3))); if (type === 0x69) this.value(depth + 1); return; }
        if (type === 0x72) { // record definition: slot, key list, then the record's values
          this.raw([0xd4, 0x72, 0x40 + r.int(64)]);
          const keys = Array.from({ length: r.int(4) }, () => r.pick(STRINGS));
          this.out.push(0x90 | keys.length);
          for (const k of keys) this.str(k);
          for (let i = 0; i < keys.length; i++) this.value(depth + 1);
          return;
        }
        this.ext(type, r.bytes(r.pick([1, 2, 4, 8, 12, 16, r.int(20)])));
        if (type === 0x65 || type === 0x73 || type === 0x78) this.value(depth + 1); // these read the next value
        return;
      }
      case 7: { // a header that claims more than follows
        this.raw([r.pick([0xdc, 0xde, 0xda, 0xc5]), 0xff, 0xff]);
        this.raw(r.bytes(r.int(4)));
        return;
      }
      case 8: { // a nest deeper than any real frame
        const n = r.int(200);
        for (let i = 0; i < n; i++) this.out.push(0x91);
        this.out.push(0xc0);
        return;
      }
      case 9: case 10: {
        const n = r.int(5);
        if (r.chance(0.8)) this.out.push(0x90 | n); else { this.out.push(0xdc); this.u(n, 2); }
        for (let i = 0; i < n; i++) this.value(depth + 1);
        return;
      }
      default: this.map(depth, r.int(5));
    }
  }
  map(depth: number, n: number, type?: string): void {
    const r = this.r;
    const total = n + (type === undefined ? 0 : 1);
    if (r.chance(0.8)) this.out.push(0x80 | total); else { this.out.push(0xde); this.u(total, 2); }
    if (type !== undefined) { this.str('type'); this.str(type); }
    for (let i = 0; i < n; i++) {
      if (r.chance(0.85)) this.str(r.pick(r.chance(0.8) ? FIELD_NAMES : PROTO_NAMES));
      else this.value(depth + 3); // non-string keys
      this.value(depth + 1);
    }
  }
}
function tokenFrame(r: Rng): Uint8Array {
  const t = new Tokens(r);
  if (r.chance(0.25)) t.value(0);
  else {
    t.out.push(0x94, PROTOCOL_VERSION);
    t.str(id(r));
    t.out.push(r.int(0x80));
    const n = r.int(4);
    t.out.push(0x90 | n);
    for (let i = 0; i < n; i++) t.map(1, r.int(7), r.chance(0.9) ? r.pick(MESSAGE_TYPES) : r.pick(PROTO_NAMES));
  }
  return Uint8Array.from(t.out);
}

function byteMutation(r: Rng): Uint8Array {
  let b = Uint8Array.from(encodeFrame(validFrame(r)));
  for (let ops = 1 + r.int(3); ops > 0; ops--) {
    const at = r.int(b.length + 1);
    switch (r.int(6)) {
      case 0: { // bit flips
        for (let k = 1 + r.int(4); k > 0 && b.length > 0; k--) { const i = r.int(b.length); b[i] = b[i]! ^ (1 << r.int(8)); }
        break;
      }
      case 1: b = b.slice(0, r.int(b.length + 1)); break; // truncation
      case 2: { // insertion
        const ins = r.chance(0.5) ? r.bytes(1 + r.int(4)) : Uint8Array.of(r.pick([0xc1, 0xd4, 0x72, 0x69, 0x70, 0x91, 0xdd, 0xff, 0x00, 0x80, 0x40]));
        b = Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at)]);
        break;
      }
      case 3: b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + 1 + r.int(4)))]); break; // deletion
      case 4: if (at < b.length) b[at] = r.pick([0x00, 0x7f, 0x80, 0xff, 0xc0, 0xc2, 0xc3, 0xd4, 0xcb, 0xa0, 0x90]); break; // interesting byte
      default: { // duplicate a slice
        const from = r.int(b.length + 1);
        const slice = b.slice(from, from + 1 + r.int(16));
        b = Uint8Array.from([...b.subarray(0, at), ...slice, ...b.subarray(at)]);
      }
    }
  }
  return b;
}

type Node = Record<string | number, unknown>;
/** Containers (objects and arrays) inside a frame, with their keys; where field-level edits happen. */
function containers(x: unknown, out: Node[] = []): Node[] {
  if (Array.isArray(x) || (typeof x === 'object' && x !== null && !ArrayBuffer.isView(x))) {
    out.push(x as Node);
    for (const v of Object.values(x)) containers(v, out);
  }
  return out;
}
function objectMutation(r: Rng): Uint8Array | undefined {
  const f = validFrame(r);
  const root: unknown[] = [f.version, f.sender, f.inc, f.messages.map((m) => structuredClone(m))];
  for (let ops = 1 + r.int(3); ops > 0; ops--) {
    const all = containers(root);
    const c = r.pick(all);
    const keys = Object.keys(c);
    const k = keys.length > 0 ? r.pick(keys) : '0';
    switch (r.int(8)) {
      case 0: delete c[k]; break;
      case 1: c[k] = randomValue(r, 2); break;
      case 2: c[k] = r.pick(NUMBERS); break;
      case 3: if (!Array.isArray(c)) setOwn(c as Record<string, unknown>, r.pick([...FIELD_NAMES, ...PROTO_NAMES]), randomValue(r, 3)); break;
      case 4: { // swap two fields of one record
        const k2 = keys.length > 0 ? r.pick(keys) : '0';
        const t = c[k]; c[k] = c[k2]; c[k2] = t;
        break;
      }
      case 5: { // move a field value across records
        const d = r.pick(all);
        const dk = Object.keys(d);
        if (dk.length > 0) { const k2 = r.pick(dk); const t = c[k]; c[k] = d[k2]; d[k2] = t; }
        break;
      }
      case 6: { // retype a message
        const ms = root[3]; // an earlier edit may have replaced the list
        const m: unknown = Array.isArray(ms) && ms.length > 0 ? r.pick(ms) : undefined;
        if (typeof m === 'object' && m !== null && !Array.isArray(m)) (m as Node)['type'] = r.chance(0.8) ? r.pick(MESSAGE_TYPES) : r.pick(PROTO_NAMES);
        break;
      }
      default: c[k] = r.pick(STRINGS);
    }
  }
  try {
    return packr.pack(root);
  } catch {
    return undefined;
  }
}

// ---- oracles ---------------------------------------------------------------------------------------

interface Failure { count: number; examples: string[] }
const failures = new Map<string, Failure>();
const stats = { frames: 0, accepted: 0, rejected: 0, skipped: 0 };
const perKind = new Map<string, number>();

function fail(kind: string, what: string, bytes: Uint8Array): void {
  const key = `${kind}: ${what}`;
  const f = failures.get(key) ?? { count: 0, examples: [] };
  f.count++;
  if (f.examples.length < 2) f.examples.push(Buffer.from(bytes).toString('hex').slice(0, 400));
  failures.set(key, f);
}

/** Every object reachable from an accepted message (opaque bodies aside) is plain data. */
function plainProblem(x: unknown, path: string): string | undefined {
  if (x === null || x === undefined || typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') return undefined;
  if (Array.isArray(x)) {
    if (Object.getPrototypeOf(x) !== Array.prototype) return `${path}: array with a foreign prototype`;
    for (let i = 0; i < x.length; i++) {
      const p = plainProblem(x[i], `${path}[${i}]`);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  if (typeof x === 'object') {
    if (Object.getPrototypeOf(x) !== Object.prototype) return `${path}: ${Object.prototype.toString.call(x)} is not a plain object`;
    for (const k in x) {
      if (!Object.hasOwn(x, k)) return `${path}.${k}: inherited key`;
      const p = plainProblem((x as Record<string, unknown>)[k], `${path}.${k}`);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  return `${path}: ${typeof x}`;
}
function withoutBodies(frame: Frame): Frame {
  return {
    ...frame,
    messages: frame.messages.map((m) => ('body' in m && (m.type === 'msg' || m.type === 'msgR' || m.type === 'ncall' || m.type === 'ncallR') ? { ...m, body: null } : m)),
  };
}

function check(kind: string, bytes: Uint8Array | undefined, mustAccept = false): void {
  if (bytes === undefined) {
    stats.skipped++;
    return;
  }
  stats.frames++;
  perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
  let r: ReturnType<typeof decodeFrame>;
  try {
    r = decodeFrame(bytes);
  } catch (e) {
    fail(kind, `decodeFrame threw ${String(e).slice(0, 120)}`, bytes);
    return;
  }
  if (!r.ok) {
    stats.rejected++;
    if (mustAccept) fail(kind, `valid frame rejected as ${r.reason}`, bytes);
    return;
  }
  stats.accepted++;
  for (const m of r.frame.messages) {
    let ok: boolean;
    try {
      ok = isMessage(m);
    } catch (e) {
      fail(kind, `isMessage threw on an accepted message: ${String(e).slice(0, 120)}`, bytes);
      return;
    }
    if (!ok) fail(kind, 'accepted a message isMessage rejects', bytes);
  }
  const stripped = withoutBodies(r.frame);
  const problem = plainProblem(stripped, 'frame');
  if (problem !== undefined) {
    fail(kind, `accepted non-plain data (${problem.replace(/\[\d+\]/g, '[]')})`, bytes);
    return;
  }
  try {
    const again = decodeFrame(encodeFrame(stripped));
    if (!again.ok) fail(kind, `re-encoded accepted frame rejected as ${again.reason}`, bytes);
    else assert.equal(again.frame, stripped);
  } catch (e) {
    fail(kind, `accepted frame does not round-trip: ${String(e).split('\n')[0]!.slice(0, 120)}`, bytes);
  }
}

const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join();
const ARRAY_PROTO_KEYS = Object.getOwnPropertyNames(Array.prototype).sort().join();
function pollution(): string | undefined {
  if (Object.getOwnPropertyNames(Object.prototype).sort().join() !== PROTO_KEYS) return 'Object.prototype gained keys';
  if (Object.getOwnPropertyNames(Array.prototype).sort().join() !== ARRAY_PROTO_KEYS) return 'Array.prototype gained keys';
  for (const k in {}) return `{} has enumerable key ${k}`;
  for (const k in []) return `[] has enumerable key ${k}`;
  return undefined;
}
const CANARY: Frame = {
  version: PROTOCOL_VERSION, sender: 'canary', inc: 64,
  messages: [{ type: 'ping', rid: 64 }, { type: 'pong', rid: 127 }, { type: 'hello', rid: 0x50 }],
};
const CANARY_BYTES = encodeFrame(CANARY);

/** Runs `n` frames from `make`, checking pollution and the canary every 512 frames. */
function run(kind: string, seed: number, n: number, make: (r: Rng) => Uint8Array | undefined, mustAccept = false): void {
  const r = new Rng(seed);
  for (let i = 0; i < n; i++) {
    const bytes = make(r);
    check(kind, bytes, mustAccept);
    if ((i & 511) === 511 || i === n - 1) {
      const p = pollution();
      if (p !== undefined) {
        fail(kind, p, bytes ?? new Uint8Array(0));
        return;
      }
      const c = decodeFrame(CANARY_BYTES);
      try {
        assert.ok(c.ok);
        assert.equal(c.frame, CANARY);
      } catch {
        fail(kind, 'state leaked: the canary frame decodes differently after this frame', bytes ?? new Uint8Array(0));
        return;
      }
    }
  }
}

function report(kind: string): void {
  const mine = [...failures].filter(([k]) => k.startsWith(`${kind}: `));
  if (mine.length === 0) return;
  const lines = mine.map(([k, f]) => `  ${f.count} x ${k}\n    e.g. ${f.examples.join('\n    e.g. ')}`);
  assert.unreachable(`fuzz seed ${SEED_HEX} (rerun with FUZZ_SEED=${SEED_HEX}):\n${lines.join('\n')}`);
}

// ---- the runs --------------------------------------------------------------------------------------

const N = (n: number): number => Math.max(1, Math.round(n * SCALE));
const started = process.hrtime.bigint();

test('codec fuzz: random valid frames -> accepted and round-trip', () => {
  run('valid', SEED ^ 0x1, N(20_000), (r) => encodeFrame(validFrame(r)), true);
  report('valid');
});

test('codec fuzz: random bytes -> never throw, nothing invalid accepted', () => {
  run('bytes', SEED ^ 0x2, N(50_000), (r) => r.bytes(r.int(r.chance(0.9) ? 24 : 400)));
  report('bytes');
});

test('codec fuzz: random msgpack token streams -> never throw, nothing invalid accepted', () => {
  run('tokens', SEED ^ 0x3, N(60_000), tokenFrame);
  report('tokens');
});

test('codec fuzz: random packed values with __proto__ keys -> never throw, nothing invalid accepted', () => {
  run('values', SEED ^ 0x4, N(50_000), randomValueFrame);
  report('values');
});

test('codec fuzz: byte mutations of valid frames -> never throw, nothing invalid accepted', () => {
  run('byte-mut', SEED ^ 0x5, N(60_000), byteMutation);
  report('byte-mut');
});

test('codec fuzz: field-level mutations of valid frames -> never throw, nothing invalid accepted', () => {
  run('field-mut', SEED ^ 0x6, N(60_000), objectMutation);
  report('field-mut');
});

test('codec fuzz: all runs -> at least 100,000 frames, prototypes clean', () => {
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const kinds = [...perKind].map(([k, n]) => `${k} ${n}`).join(' | ');
  console.log(
    `\ncodec fuzz | seed ${SEED_HEX} | ${stats.frames} frames (${kinds}) | accepted ${stats.accepted} | ` +
      `rejected ${stats.rejected} | failures ${[...failures.values()].reduce((s, f) => s + f.count, 0)} | ${secs.toFixed(1)} s`,
  );
  assert.is(pollution(), undefined);
  if (SCALE >= 1) assert.ok(stats.frames >= 100_000, `only ${stats.frames} frames`);
});

test.run();
