/**
 * Codec: every message type round-trips, and every way a frame can be wrong is rejected with the
 * right reason, without throwing. The cases are generated from one valid sample per message type, so
 * a field added to a schema without a sample here fails the coverage test first.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Packr } from 'msgpackr';
import { decodeFrame, encodeFrame, isMessage, LIMITS, MESSAGE_TYPES, type DecodeResult } from '../../lib/protocol/codec.js';
import {
  PROTOCOL_VERSION, type Ballot, type EntryView, type Frame, type Message, type MessageType, type OwnerRef, type Value,
} from '../../lib/protocol/messages.js';

// ---- samples ---------------------------------------------------------------------------------------

const b1: Ballot = { t: 7, g: 'n1/1/3' };
const b2: Ballot = { t: 6, g: 'n2/4/1' };
const owner: OwnerRef = { node: 'n1', inc: 1, id: 42 };
const value: Value = { owner, gnode: 'n1', hb: 8048, handoffTo: 'n3/2/9' };
const entry: EntryView = { promise: b1, ballot: b2, value, seq: 4, expired: false };
const NAME = 'queue:billing';

/** One valid message per type, with every optional field present. */
const SAMPLES: { readonly [K in MessageType]: Extract<Message, { type: K }> } = {
  read: { type: 'read', rid: 1, name: NAME },
  readR: { type: 'readR', rid: 1, name: NAME, ok: true, entry },
  prep: { type: 'prep', rid: 2, name: NAME, b: b1, mode: 'handoff', from: b2 },
  prepR: { type: 'prepR', rid: 2, name: NAME, b: b1, ok: false, why: 'stale', entry, floor: 3 },
  com: { type: 'com', rid: 3, name: NAME, b: b1, v: value, seq: 1, mv: 4 },
  comR: { type: 'comR', rid: 3, name: NAME, b: b1, seq: 1, ok: false, why: 'ballot', entry },
  abandon: { type: 'abandon', name: NAME, b: b1 },
  renew: { type: 'renew', rid: 5, hb: 8048, count: 100_000, digest: 0xdeadbeef, mv: 4, lv: 5 },
  renewR: { type: 'renewR', rid: 5, ok: false, count: 99_999, digest: 12, why: 'recovering' },
  sync: { type: 'sync', rid: 6, hb: 8048, part: 0, parts: 2, entries: [[NAME, b1, value, 3], ['other', b2, { owner, gnode: 'n2', hb: 1000 }, 0]], lv: 5 },
  syncR: { type: 'syncR', rid: 6, part: 1, refused: [[0, entry], [1, { value: null, seq: 0, expired: true }]] },
  probe: { type: 'probe', rid: 7, name: NAME, owner, b: b1 },
  probeR: { type: 'probeR', rid: 7, alive: true, holds: false },
  hello: { type: 'hello', rid: 8 },
  helloR: { type: 'helloR', rid: 8, complete: true, voting: false, entries: [[NAME, b1, value, 3]] },
  hoff: { type: 'hoff', rid: 9, name: NAME, owner, from: b1 },
  hoffR: { type: 'hoffR', rid: 9, ok: false, guard: 'n2/4/2', err: 'busy' },
  hgo: { type: 'hgo', rid: 10, name: NAME, guard: 'n2/4/2', seq: 5 },
  hgoR: { type: 'hgoR', rid: 10, ok: true, token: 8, err: 'timeout' },
  fwd: { type: 'fwd', rid: 11, op: 'update', name: NAME, b: b1, owner },
  fwdR: { type: 'fwdR', rid: 11, ok: false, err: 'not-registered' },
  msg: { type: 'msg', rid: 12, name: NAME, to: owner, body: { job: [1, 'two', null, true, 2.5], bin: Buffer.from([1, 2, 3]) }, call: true },
  msgR: { type: 'msgR', rid: 12, ok: true, body: ['result', { n: -1 }], err: 'failed' },
  gossip: {
    type: 'gossip',
    members: { version: 3, members: [{ id: 'n1', endpoint: 'tcp://127.0.0.1:5001' }, { id: 'n2', endpoint: '' }] },
    config: [{ key: 'heartbeat', value: 8048, version: 2, by: 'n1' }, { key: 'drift', value: 0.05, version: 1, by: 'n2' }],
  },
  own: { type: 'own', name: NAME, b: b1, v: { owner, gnode: 'n1', hb: 1000, via: 'handoff' }, seq: 1, mv: 4 },
  ping: { type: 'ping', rid: 13 },
  pong: { type: 'pong', rid: 13 },
  mget: { type: 'mget', rid: 14 },
  mgetR: { type: 'mgetR', rid: 14, members: { version: 2, members: [{ id: 'n1', endpoint: 'tcp://127.0.0.1:5001' }] } },
  mset: { type: 'mset', rid: 15, members: { version: 3, members: [{ id: 'n1', endpoint: 'tcp://127.0.0.1:5001' }, { id: 'n2', endpoint: 'ipc:///tmp/n2' }] } },
  msetR: { type: 'msetR', rid: 15, version: 3 },
  join: { type: 'join', rid: 16, id: 'n4', endpoint: 'tcp://127.0.0.1:5004', publicKey: 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7', shards: 16 },
  joinR: { type: 'joinR', rid: 16, ok: false, members: { version: 1, members: [] }, wasMember: true, err: 'refused', shards: 16 },
  status: { type: 'status', rid: 17 },
  ncall: { type: 'ncall', rid: 18, topic: 'singleton', body: { op: 'receive', name: 'x', state: [1, 2] } },
  ncallR: { type: 'ncallR', rid: 18, ok: true, body: { ref: { node: 'n1', inc: 1, id: 2 } }, err: 'failed' },
  statusR: { type: 'statusR', rid: 17, node: 'n1', members: { version: 1, members: [{ id: 'n1', endpoint: 'x' }] }, live: ['n1'], held: 12, voting: true },
};

/** Top-level keys a message may omit; `body` is `unknown`, so absent is allowed too. */
const OPTIONAL: { readonly [K in MessageType]?: readonly string[] } = {
  readR: ['entry'], prep: ['from'], prepR: ['why', 'entry'], com: ['mv'], comR: ['why', 'entry'], renew: ['mv', 'lv'], sync: ['lv'], own: ['mv'],
  renewR: ['why'], hoffR: ['guard', 'err'],
  helloR: ['entries'], hgoR: ['token', 'err'], fwd: ['owner'], fwdR: ['err'], msg: ['body'], msgR: ['body', 'err'],
  join: ['publicKey'], joinR: ['members', 'wasMember', 'err', 'shards'], ncall: ['body'], ncallR: ['body', 'err'],
};
/** Keys nested records may omit: Value.handoffTo, EntryView.promise and EntryView.ballot. */
const NESTED_OPTIONAL = new Set(['handoffTo', 'via', 'promise', 'ballot']);
/** Fields whose content is opaque to the codec. */
const OPAQUE = new Set(['body']);

const ALL = Object.values(SAMPLES) as Message[];

// ---- helpers ---------------------------------------------------------------------------------------

/** Packs anything with the codec's own settings, for frames `encodeFrame` would not build. */
const raw = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true });

function frameOf(messages: readonly unknown[]): Frame {
  return { version: PROTOCOL_VERSION, sender: 'n1', inc: 1, messages: messages as Message[] };
}
function decodeMessages(messages: readonly unknown[]): DecodeResult {
  return decodeFrame(encodeFrame(frameOf(messages)));
}
function reasonOf(r: DecodeResult): string {
  return r.ok ? 'ok' : r.reason;
}
/** Deep copy that keeps Buffers (structuredClone turns them into plain Uint8Arrays). */
function clone<T>(x: T): T {
  if (Buffer.isBuffer(x)) return Buffer.from(x) as T;
  if (Array.isArray(x)) return x.map(clone) as T;
  if (typeof x === 'object' && x !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = clone(v);
    return out as T;
  }
  return x;
}

type Path = readonly (string | number)[];
interface Site { readonly path: Path; readonly value: unknown; readonly parentIsArray: boolean }

/** Every field and element of a message, depth first, skipping opaque contents. */
function sites(x: unknown, path: Path = [], parentIsArray = false): Site[] {
  const out: Site[] = path.length > 0 ? [{ path, value: x, parentIsArray }] : [];
  if (typeof path[path.length - 1] === 'string' && OPAQUE.has(path[path.length - 1] as string)) return out;
  if (Array.isArray(x)) x.forEach((v, i) => out.push(...sites(v, [...path, i], true)));
  else if (typeof x === 'object' && x !== null && !Buffer.isBuffer(x)) {
    for (const [k, v] of Object.entries(x)) out.push(...sites(v, [...path, k], false));
  }
  return out;
}
function parentOf(root: unknown, path: Path): Record<string | number, unknown> {
  let cur = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  return cur;
}
function withSet(msg: Message, path: Path, v: unknown): unknown {
  const copy = clone(msg);
  parentOf(copy, path)[path[path.length - 1]!] = v;
  return copy;
}
function without(msg: Message, path: Path): unknown {
  const copy = clone(msg);
  delete parentOf(copy, path)[path[path.length - 1]!];
  return copy;
}
/** Values of a different JSON type than `v` (never `null` for objects: `Value | null` fields take it). */
function wrongTypes(v: unknown): unknown[] {
  if (typeof v === 'number') return [String(v), true, null, [v]];
  if (typeof v === 'string') return [7, true, null, [v], { s: v }];
  if (typeof v === 'boolean') return [0, 1, 'true', null];
  if (v === null) return ['null', 0, false, []];
  if (Array.isArray(v)) return [{}, 'x', 7];
  return [[], 'x', 7, true, Buffer.from('x')];
}
const show = (p: Path): string => p.join('.');

/** A name of exactly `bytes` UTF-8 bytes built from `char`, padded with ASCII. */
function nameOfBytes(char: string, bytes: number): string {
  const w = Buffer.byteLength(char);
  return char.repeat(Math.floor(bytes / w)) + 'a'.repeat(bytes % w);
}

// ---- round trips -----------------------------------------------------------------------------------

test('codec: samples -> cover exactly the known message types', () => {
  assert.equal(Object.keys(SAMPLES).sort(), [...MESSAGE_TYPES].sort());
});

test('codec: each message type alone -> round-trips unchanged', () => {
  for (const m of ALL) {
    const r = decodeMessages([m]);
    assert.ok(r.ok, `${m.type}: ${reasonOf(r)}`);
    assert.equal(r.frame, frameOf([m]), m.type);
  }
});

test('codec: all message types in one frame -> round-trip in order', () => {
  const f: Frame = { version: PROTOCOL_VERSION, sender: 'node-a', inc: 2 ** 40, messages: ALL };
  const r = decodeFrame(encodeFrame(f));
  assert.ok(r.ok);
  assert.equal(r.frame, f);
});

test('codec: optional fields absent -> round-trip unchanged', () => {
  for (const m of ALL) {
    const opt = OPTIONAL[m.type] ?? [];
    const bare = clone(m) as unknown as Record<string, unknown>;
    for (const k of opt) delete bare[k];
    const r = decodeMessages([bare]);
    assert.ok(r.ok, `${m.type} without ${opt.join(',')}: ${reasonOf(r)}`);
    assert.equal(r.frame.messages[0], bare, m.type);
  }
});

test('codec: empty message list -> accepted', () => {
  const r = decodeMessages([]);
  assert.ok(r.ok);
  assert.equal(r.frame.messages, []);
});

test('codec: boundary values (id of 256 chars, name of 1024 bytes, max safe integer) -> accepted', () => {
  const id = 'x'.repeat(LIMITS.idChars);
  const big = Number.MAX_SAFE_INTEGER;
  const msgs: Message[] = [
    { type: 'read', rid: big, name: nameOfBytes('€', LIMITS.nameBytes) },
    { type: 'read', rid: 0, name: nameOfBytes('😀', LIMITS.nameBytes) },
    { type: 'abandon', name: 'x', b: { t: big, g: id } },
    { type: 'com', rid: 1, name: NAME, b: b1, v: { owner: { node: id, inc: big, id: 0 }, gnode: id, hb: 1 }, seq: big },
  ];
  const f: Frame = { version: PROTOCOL_VERSION, sender: id, inc: big, messages: msgs };
  const r = decodeFrame(encodeFrame(f));
  assert.ok(r.ok, reasonOf(r));
  assert.equal(r.frame, f);
});

test('codec: isMessage on every sample -> true', () => {
  for (const m of ALL) assert.ok(isMessage(m), m.type);
});

// ---- field-level rejections ------------------------------------------------------------------------

test('codec: any required field removed -> invalid', () => {
  let n = 0;
  for (const m of ALL) {
    for (const s of sites(m)) {
      if (s.parentIsArray) continue; // tuples: see the arity test; lists may shrink
      const key = s.path[s.path.length - 1] as string;
      const optional = s.path.length === 1 ? (OPTIONAL[m.type] ?? []).includes(key) : NESTED_OPTIONAL.has(key);
      const r = decodeMessages([without(m, s.path)]);
      assert.is(reasonOf(r), optional ? 'ok' : 'invalid', `${m.type} without ${show(s.path)}`);
      n++;
    }
  }
  assert.ok(n > 150, `only ${n} cases`);
});

test('codec: any field of the wrong type -> invalid', () => {
  let n = 0;
  for (const m of ALL) {
    for (const s of sites(m)) {
      if (OPAQUE.has(String(s.path[s.path.length - 1]))) continue;
      for (const bad of wrongTypes(s.value)) {
        const r = decodeMessages([withSet(m, s.path, bad)]);
        assert.is(reasonOf(r), 'invalid', `${m.type}.${show(s.path)} = ${JSON.stringify(bad)}`);
        n++;
      }
    }
  }
  assert.ok(n > 800, `only ${n} cases`);
});

test('codec: an extra key on the message or any nested record -> invalid', () => {
  for (const m of ALL) {
    for (const extra of ['extra', 'constructor', '__proto__', 'toString', 'TYPE']) {
      const top = clone(m) as unknown as Record<string, unknown>;
      Object.defineProperty(top, extra, { value: 1, enumerable: true, writable: true, configurable: true });
      assert.is(reasonOf(decodeMessages([top])), 'invalid', `${m.type} + ${extra}`);
    }
    for (const s of sites(m)) {
      if (typeof s.value !== 'object' || s.value === null || Array.isArray(s.value) || Buffer.isBuffer(s.value)) continue;
      if (OPAQUE.has(String(s.path[s.path.length - 1]))) continue;
      const v = clone(s.value) as Record<string, unknown>;
      v['extra'] = 1;
      assert.is(reasonOf(decodeMessages([withSet(m, s.path, v)])), 'invalid', `${m.type}.${show(s.path)} + extra`);
    }
  }
});

test('codec: name of 1025 UTF-8 bytes in multi-byte chars -> invalid', () => {
  const over = [nameOfBytes('é', 1025), nameOfBytes('€', 1025), nameOfBytes('😀', 1025)];
  for (const name of over) assert.is(Buffer.byteLength(name), LIMITS.nameBytes + 1);
  // 513 chars (2 bytes each, 1025 bytes): a check counting chars would let it through.
  assert.ok(over[0]!.length < LIMITS.nameBytes);
  let n = 0;
  for (const m of ALL) {
    for (const s of sites(m)) {
      const isNameField = s.path[s.path.length - 1] === 'name' || (m.type === 'sync' && s.path.length === 3 && s.path[2] === 0);
      if (!isNameField) continue;
      for (const name of over) {
        assert.is(reasonOf(decodeMessages([withSet(m, s.path, name)])), 'invalid', `${m.type}.${show(s.path)}`);
        n++;
      }
    }
  }
  assert.ok(n >= 3 * 15, `only ${n} name fields`);
});

test('codec: empty name, empty id or id of 257 chars -> invalid', () => {
  const long = 'g'.repeat(LIMITS.idChars + 1);
  const cases: unknown[] = [
    { type: 'read', rid: 1, name: '' },
    { type: 'abandon', name: NAME, b: { t: 1, g: '' } },
    { type: 'abandon', name: NAME, b: { t: 1, g: long } },
    { type: 'probe', rid: 1, name: NAME, owner: { node: long, inc: 0, id: 0 }, b: b1 },
    { type: 'hgo', rid: 1, name: NAME, guard: '', seq: 0 },
    { type: 'hoffR', rid: 1, ok: true, guard: long },
    { type: 'gossip', members: { version: 1, members: [{ id: '', endpoint: 'x' }] }, config: [] },
    { type: 'gossip', members: { version: 1, members: [] }, config: [{ key: 'k', value: 1, version: 1, by: long }] },
  ];
  for (const c of cases) assert.is(reasonOf(decodeMessages([c])), 'invalid', JSON.stringify(c).slice(0, 80));
});

test('codec: counts negative, fractional, unsafe, NaN or infinite -> invalid', () => {
  for (const bad of [-1, 0.5, 2 ** 53, -(2 ** 53), NaN, Infinity, -Infinity]) {
    for (const m of ALL) {
      for (const s of sites(m)) {
        if (typeof s.value !== 'number') continue;
        // ConfigEntry.value is any finite number; only its non-finite values are wrong.
        const isConfigValue = m.type === 'gossip' && s.path[0] === 'config' && s.path[2] === 'value';
        if (isConfigValue && Number.isFinite(bad)) continue;
        const r = decodeMessages([withSet(m, s.path, bad)]);
        assert.is(reasonOf(r), 'invalid', `${m.type}.${show(s.path)} = ${bad}`);
      }
    }
  }
});

test('codec: zero heartbeat or part not below parts -> invalid', () => {
  const cases: unknown[] = [
    { ...SAMPLES.renew, hb: 0 },
    { ...SAMPLES.sync, hb: 0 },
    { ...SAMPLES.sync, part: 2, parts: 2 },
    { ...SAMPLES.sync, part: 0, parts: 0, entries: [] },
    { ...SAMPLES.com, v: { ...value, hb: 0 } },
  ];
  for (const c of cases) assert.is(reasonOf(decodeMessages([c])), 'invalid', JSON.stringify(c).slice(0, 80));
});

test('codec: unknown enum values (type, mode, op, why, err) -> invalid', () => {
  const cases: unknown[] = [
    { type: 'nope', rid: 1 },
    { type: 'PING', rid: 1 },
    { type: '', rid: 1 },
    // Retired: a conditional install no node sent (renewals and syncs repair acceptors).
    { type: 'rep', rid: 4, name: NAME, b: { t: 3, g: 'n1' }, v: null, seq: 2 },
    { ...SAMPLES.prep, mode: 'steal' },
    { ...SAMPLES.fwd, op: 'register' },
    { ...SAMPLES.prepR, why: 'because' },
    { ...SAMPLES.renewR, why: '' },
    { ...SAMPLES.fwdR, err: 'oops' },
    { ...SAMPLES.hgoR, err: 'Timeout' },
  ];
  for (const c of cases) assert.is(reasonOf(decodeMessages([c])), 'invalid', JSON.stringify(c));
});

test('codec: message type naming an Object.prototype member -> invalid, no throw', () => {
  for (const type of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
    let outcome: string;
    try {
      outcome = reasonOf(decodeFrame(raw.pack([PROTOCOL_VERSION, 'n1', 1, [{ type, rid: 1 }]])));
    } catch (err) {
      outcome = `threw ${String(err)}`;
    }
    assert.is(outcome, 'invalid', `decodeFrame of a message with type '${type}'`);
    let verdict: string;
    try {
      verdict = String(isMessage({ type }));
    } catch (err) {
      verdict = `threw ${String(err)}`;
    }
    assert.is(verdict, 'false', `isMessage({ type: '${type}' })`);
  }
});

test('codec: tuples of the wrong arity (sync entry, refused entry) -> invalid', () => {
  const e = [NAME, b1, value, 3];
  for (const bad of [e.slice(0, 3), [...e, 0], []]) {
    assert.is(reasonOf(decodeMessages([{ ...SAMPLES.sync, entries: [bad] }])), 'invalid', `sync entry of ${bad.length}`);
  }
  for (const bad of [[0], [0, entry, 1], []]) {
    assert.is(reasonOf(decodeMessages([{ ...SAMPLES.syncR, refused: [bad] }])), 'invalid', `refused of ${bad.length}`);
  }
});

test('codec: lists over their limits (sync entries, refused, members, config) -> invalid', () => {
  const e = [NAME, b1, value, 3] as const;
  const cases: [string, unknown][] = [
    ['entries', { ...SAMPLES.sync, entries: Array.from({ length: LIMITS.syncEntries + 1 }, () => e) }],
    ['refused', { ...SAMPLES.syncR, refused: Array.from({ length: LIMITS.syncEntries + 1 }, (_, i) => [i, entry]) }],
    ['members', { ...SAMPLES.gossip, members: { version: 1, members: Array.from({ length: LIMITS.members + 1 }, (_, i) => ({ id: `n${i}`, endpoint: 'e' })) } }],
    ['config', { ...SAMPLES.gossip, config: Array.from({ length: LIMITS.configEntries + 1 }, (_, i) => ({ key: `k${i}`, value: i, version: 1, by: 'n1' })) }],
  ];
  for (const [what, c] of cases) assert.is(reasonOf(decodeMessages([c])), 'invalid', what);
  // and exactly at the limit they pass
  const atLimit = { ...SAMPLES.sync, entries: Array.from({ length: LIMITS.syncEntries }, () => e) };
  assert.is(reasonOf(decodeMessages([atLimit])), 'ok');
});

test('codec: endpoint over 1024 chars, config key empty or over 64 chars -> invalid', () => {
  const g = SAMPLES.gossip;
  const cases: unknown[] = [
    { ...g, members: { version: 1, members: [{ id: 'n1', endpoint: 'e'.repeat(1025) }] } },
    { ...g, config: [{ key: '', value: 1, version: 1, by: 'n1' }] },
    { ...g, config: [{ key: 'k'.repeat(65), value: 1, version: 1, by: 'n1' }] },
  ];
  for (const c of cases) assert.is(reasonOf(decodeMessages([c])), 'invalid');
});

test('codec: one bad message among good ones -> whole frame invalid', () => {
  assert.is(reasonOf(decodeMessages([...ALL, { type: 'ping' }, ...ALL])), 'invalid');
});

test('codec: message that is not a map (array, string, null, binary) -> invalid', () => {
  for (const m of [[], ['ping', 1], 'ping', null, 7, Buffer.from('ping')]) {
    assert.is(reasonOf(decodeMessages([m])), 'invalid', JSON.stringify(m));
  }
});

test('codec: "__proto__" key on the wire -> invalid, Object.prototype untouched', () => {
  const m = JSON.parse('{"type":"ping","rid":1,"__proto__":{"polluted":true,"rid":2}}') as unknown;
  assert.is(reasonOf(decodeMessages([m])), 'invalid');
  const ballot = JSON.parse('{"__proto__":{"t":1,"g":"x"}}') as unknown;
  assert.is(reasonOf(decodeMessages([{ type: 'abandon', name: NAME, b: ballot }])), 'invalid');
  assert.is(({} as Record<string, unknown>)['polluted'], undefined);
  assert.is(Object.getPrototypeOf(Object.prototype), null);
});

// ---- frame-level rejections ------------------------------------------------------------------------

test('codec: wrong protocol version -> version', () => {
  for (const v of [0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, -1, String(PROTOCOL_VERSION), 1.5, null, true]) {
    assert.is(reasonOf(decodeFrame(raw.pack([v, 'n1', 1, [SAMPLES.ping]]))), 'version', JSON.stringify(v));
  }
});

test('codec: frame of the wrong arity -> malformed', () => {
  const cases = [[], [PROTOCOL_VERSION], [PROTOCOL_VERSION, 'n1', 1], [PROTOCOL_VERSION, 'n1', 1, [], 0]];
  for (const c of cases) assert.is(reasonOf(decodeFrame(raw.pack(c))), 'malformed', JSON.stringify(c));
});

test('codec: frame that is not an array -> malformed', () => {
  const cases: unknown[] = [{ version: 1, sender: 'n1', inc: 1, messages: [] }, 1, 'frame', null, true, Buffer.from([0x94])];
  for (const c of cases) assert.is(reasonOf(decodeFrame(raw.pack(c))), 'malformed', JSON.stringify(c));
});

test('codec: bytes that are not msgpack (empty, truncated, reserved byte, trailing data) -> malformed', () => {
  const good = encodeFrame(frameOf(ALL));
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['reserved 0xc1', Uint8Array.of(0xc1)],
    ['truncated', good.subarray(0, good.length - 1)],
    ['half', good.subarray(0, good.length >> 1)],
    ['trailing byte', Buffer.concat([good, Uint8Array.of(0)])],
    ['two frames', Buffer.concat([good, good])],
    ['str32 claiming 4 GiB', Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61)],
    ['array32 claiming 4G items', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01)],
  ];
  for (const [what, bytes] of cases) assert.is(reasonOf(decodeFrame(bytes)), 'malformed', what);
});

test('codec: frame over the size limit -> too-large', () => {
  assert.is(reasonOf(decodeFrame(new Uint8Array(LIMITS.frameBytes + 1))), 'too-large');
});

test('codec: bad sender, incarnation or message list -> invalid', () => {
  const cases: unknown[][] = [
    [PROTOCOL_VERSION, '', 1, []],
    [PROTOCOL_VERSION, 's'.repeat(LIMITS.idChars + 1), 1, []],
    [PROTOCOL_VERSION, 7, 1, []],
    [PROTOCOL_VERSION, 'n1', -1, []],
    [PROTOCOL_VERSION, 'n1', 1.5, []],
    [PROTOCOL_VERSION, 'n1', '1', []],
    [PROTOCOL_VERSION, 'n1', 1, {}],
    [PROTOCOL_VERSION, 'n1', 1, 'ping'],
    [PROTOCOL_VERSION, 'n1', 1, null],
  ];
  for (const c of cases) assert.is(reasonOf(decodeFrame(raw.pack(c))), 'invalid', JSON.stringify(c).slice(0, 60));
});

test('codec: more messages than the per-frame limit -> invalid', () => {
  const many = Array.from({ length: LIMITS.messagesPerFrame + 1 }, () => SAMPLES.ping);
  assert.is(reasonOf(decodeMessages(many)), 'invalid');
  assert.is(reasonOf(decodeMessages(many.slice(1))), 'ok');
});

test('codec: nesting deep enough to overflow the stack -> malformed, next frame decodes', () => {
  const head = raw.pack([PROTOCOL_VERSION, 'n1', 1, [{ ...SAMPLES.msg, body: 'B' }]]);
  const at = head.indexOf(Buffer.from([0xa1, 0x42])); // the body string 'B'
  assert.ok(at > 0);
  const deep = Buffer.concat([head.subarray(0, at), Buffer.alloc(1_000_000, 0x91), Uint8Array.of(0xc0), head.subarray(at + 2)]);
  assert.is(reasonOf(decodeFrame(deep)), 'malformed');
  const r = decodeMessages([SAMPLES.ping]);
  assert.ok(r.ok);
  assert.equal(r.frame.messages, [SAMPLES.ping]);
});

test('codec: record definition in one frame -> next frame decodes the same bytes as plain integers', () => {
  // 0xd4 0x72 0x40 defines record slot 0 (bytes 0x40..0x7f are also fixints 64..127).
  const evil = Buffer.from('9401a26e3101' + '91' + 'd47240' + '92a474797065a3726964' + 'a470696e67' + '05', 'hex');
  decodeFrame(evil);
  const f = frameOf([{ type: 'ping', rid: 64 }, { type: 'pong', rid: 127 }]);
  const r = decodeFrame(encodeFrame(f));
  assert.ok(r.ok);
  assert.equal(r.frame, f);
});

test('codec: garbage of every leading byte -> never throws', () => {
  for (let first = 0; first < 256; first++) {
    for (let len = 1; len <= 12; len++) {
      const bytes = new Uint8Array(len).fill(first === 0xff ? 0xfe : 0xff);
      bytes[0] = first;
      let r: DecodeResult;
      try {
        r = decodeFrame(bytes);
      } catch (err) {
        assert.unreachable(`0x${first.toString(16)} x${len} threw ${String(err)}`);
        return;
      }
      assert.ok(!r.ok, `0x${first.toString(16)} x${len} accepted`);
    }
  }
});

test.run();
