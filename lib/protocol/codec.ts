/**
 * Frame encoding (msgpack) and strict decoding. Decoding checks every field of every message: types,
 * sizes, known message types and the protocol version. Anything off makes the whole frame invalid:
 * {@link decodeFrame} returns a {@link DecodeFailure} and the caller drops and counts it, so a bad frame
 * can never reach the protocol or change state.
 */
import { Packr } from 'msgpackr';
import {
  PROTOCOL_VERSION, type Ballot, type ConfigEntry, type EntryView, type Frame, type MemberInfo,
  type Message, type OwnerRef, type SyncEntry, type Value,
} from './messages.js';

/** Limits checked while decoding. */
export const LIMITS = {
  /** Longest name, in UTF-8 bytes. */
  nameBytes: 1024,
  /** Longest node id or guard id, in characters. */
  idChars: 256,
  /** Most messages in one frame. */
  messagesPerFrame: 100_000,
  /** Most entries in one sync part. */
  syncEntries: 4096,
  /** Largest frame, in bytes. */
  frameBytes: 16 * 1024 * 1024,
  /** Most members and config entries in a gossip message. */
  members: 1024,
  configEntries: 256,
} as const;

// No structured clone: a frame must not be able to build cyclic values (re-encoding them would recurse forever).
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true, structuredClone: false });

/** Why a frame was rejected. */
export interface DecodeFailure {
  readonly ok: false;
  readonly reason: 'malformed' | 'version' | 'too-large' | 'invalid';
}
export type DecodeResult = { readonly ok: true; readonly frame: Frame } | DecodeFailure;

/** Encodes a frame to bytes. */
export function encodeFrame(frame: Frame): Buffer {
  return packr.pack([frame.version, frame.sender, frame.inc, frame.messages]);
}

/** Decodes and validates a frame; never throws. */
export function decodeFrame(bytes: Uint8Array): DecodeResult {
  if (bytes.byteLength > LIMITS.frameBytes) return { ok: false, reason: 'too-large' };
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (!Array.isArray(raw) || raw.length !== 4) return { ok: false, reason: 'malformed' };
  const [version, sender, inc, messages] = raw as unknown[];
  if (version !== PROTOCOL_VERSION) return { ok: false, reason: 'version' };
  if (!isId(sender) || !isCount(inc) || !Array.isArray(messages) || messages.length > LIMITS.messagesPerFrame) {
    return { ok: false, reason: 'invalid' };
  }
  for (const m of messages) if (!isMessage(m)) return { ok: false, reason: 'invalid' };
  return { ok: true, frame: { version, sender, inc, messages: messages as Message[] } };
}

// ---- field checks ---------------------------------------------------------------------------------

type Rec = Record<string, unknown>;

function isRec(x: unknown): x is Rec {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !Buffer.isBuffer(x) && !(x instanceof Uint8Array);
}
/** A non-negative safe integer. */
function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}
function isId(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= LIMITS.idChars && x.isWellFormed();
}
function isName(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && Buffer.byteLength(x, 'utf8') <= LIMITS.nameBytes && x.isWellFormed();
}
function isBool(x: unknown): x is boolean {
  return typeof x === 'boolean';
}
function isOpt(x: unknown, check: (y: unknown) => boolean): boolean {
  return x === undefined || check(x);
}
function isBallot(x: unknown): x is Ballot {
  return isRec(x) && isCount(x['t']) && isId(x['g']) && keysWithin(x, BALLOT_KEYS);
}
function isOwner(x: unknown): x is OwnerRef {
  return isRec(x) && isId(x['node']) && isCount(x['inc']) && isCount(x['id']) && keysWithin(x, OWNER_KEYS);
}
function isValue(x: unknown): x is Value {
  return isRec(x) && isOwner(x['owner']) && isId(x['gnode']) && isCount(x['hb']) && x['hb'] > 0
    && isOpt(x['handoffTo'], isId) && isOpt(x['via'], (y) => y === 'handoff') && keysWithin(x, VALUE_KEYS);
}
function isValueOrNull(x: unknown): x is Value | null {
  return x === null || isValue(x);
}
function isEntry(x: unknown): x is EntryView {
  return isRec(x) && isOpt(x['promise'], isBallot) && isOpt(x['ballot'], isBallot) && isValueOrNull(x['value'])
    && isCount(x['seq']) && isBool(x['expired']) && keysWithin(x, ENTRY_KEYS);
}
function isReason(x: unknown): boolean {
  return x === 'ballot' || x === 'held' || x === 'recovering' || x === 'stale';
}
function isErrCode(x: unknown): boolean {
  return typeof x === 'string' && ERROR_CODES.has(x);
}
function isSyncEntry(x: unknown): x is SyncEntry {
  return Array.isArray(x) && x.length === 4 && isName(x[0]) && isBallot(x[1]) && isValue(x[2]) && isCount(x[3]);
}
function isKey(x: unknown): boolean {
  return typeof x === 'string' && x.length === 40 && /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]+$/.test(x);
}
function isMember(x: unknown): x is MemberInfo {
  return isRec(x) && isId(x['id']) && typeof x['endpoint'] === 'string' && x['endpoint'].length <= 1024
    && isOpt(x['publicKey'], isKey) && keysWithin(x, MEMBER_KEYS);
}
function isConfigEntry(x: unknown): x is ConfigEntry {
  return isRec(x) && typeof x['key'] === 'string' && x['key'].length > 0 && x['key'].length <= 64
    && typeof x['value'] === 'number' && Number.isFinite(x['value']) && isCount(x['version']) && isId(x['by'])
    && keysWithin(x, CONFIG_KEYS);
}
function keysWithin(x: Rec, allowed: ReadonlySet<string>): boolean {
  for (const k in x) if (!allowed.has(k)) return false;
  return true;
}

const BALLOT_KEYS = new Set(['t', 'g']);
const OWNER_KEYS = new Set(['node', 'inc', 'id']);
const VALUE_KEYS = new Set(['owner', 'gnode', 'hb', 'handoffTo', 'via']);
const ENTRY_KEYS = new Set(['promise', 'ballot', 'value', 'seq', 'expired']);
const MEMBER_KEYS = new Set(['id', 'endpoint', 'publicKey']);
const CONFIG_KEYS = new Set(['key', 'value', 'version', 'by']);
const ERROR_CODES = new Set(['not-alive', 'not-found', 'not-registered', 'no-consensus', 'timeout', 'stopped', 'busy', 'failed', 'refused']);

/** Per message type: the allowed keys and a check of their values. */
// A prototype-free table: a message type such as 'constructor' must find nothing.
const SCHEMAS: Record<string, { keys: ReadonlySet<string>; check: (m: Rec) => boolean }> = Object.create(null);
function schema(type: string, keys: string[], check: (m: Rec) => boolean): void {
  SCHEMAS[type] = { keys: new Set(['type', ...keys]), check };
}

schema('read', ['rid', 'name'], (m) => isCount(m['rid']) && isName(m['name']));
schema('readR', ['rid', 'name', 'ok', 'entry'], (m) => isCount(m['rid']) && isName(m['name']) && isBool(m['ok']) && isOpt(m['entry'], isEntry));
schema('prep', ['rid', 'name', 'b', 'mode', 'from', 'v', 'mv'], (m) => isCount(m['rid']) && isName(m['name']) && isBallot(m['b'])
  && (m['mode'] === 'free' || m['mode'] === 'takeover' || m['mode'] === 'handoff') && isOpt(m['from'], isBallot)
  && isOpt(m['v'], isValue) && (m['v'] === undefined || m['mode'] === 'free') && isOpt(m['mv'], isCount));
schema('prepR', ['rid', 'name', 'b', 'ok', 'why', 'entry', 'acc', 'floor'], (m) => isCount(m['rid']) && isName(m['name'])
  && isBallot(m['b']) && isBool(m['ok']) && isOpt(m['why'], isReason) && isOpt(m['entry'], isEntry) && isOpt(m['acc'], isBool)
  && isCount(m['floor']));
schema('com', ['rid', 'name', 'b', 'v', 'seq', 'mv'], (m) => isCount(m['rid']) && isName(m['name']) && isBallot(m['b'])
  && isValueOrNull(m['v']) && isCount(m['seq']) && isOpt(m['mv'], isCount));
schema('comR', ['rid', 'name', 'b', 'seq', 'ok', 'why', 'entry'], (m) => isCount(m['rid']) && isName(m['name'])
  && isBallot(m['b']) && isCount(m['seq']) && isBool(m['ok']) && isOpt(m['why'], isReason) && isOpt(m['entry'], isEntry));
schema('abandon', ['name', 'b'], (m) => isName(m['name']) && isBallot(m['b']));
schema('renew', ['rid', 'hb', 'count', 'digest', 'mv', 'lv'], (m) => isCount(m['rid']) && isCount(m['hb']) && m['hb'] > 0
  && isCount(m['count']) && isCount(m['digest']) && isOpt(m['mv'], isCount) && isOpt(m['lv'], isCount));
schema('renewR', ['rid', 'ok', 'count', 'digest', 'why'], (m) => isCount(m['rid']) && isBool(m['ok'])
  && isCount(m['count']) && isCount(m['digest']) && isOpt(m['why'], isReason));
schema('sync', ['rid', 'hb', 'part', 'parts', 'entries', 'lv'], (m) => isCount(m['rid']) && isCount(m['hb']) && m['hb'] > 0
  && isCount(m['part']) && isCount(m['parts']) && m['part'] < m['parts'] && Array.isArray(m['entries'])
  && m['entries'].length <= LIMITS.syncEntries && m['entries'].every(isSyncEntry) && isOpt(m['lv'], isCount));
schema('syncR', ['rid', 'part', 'refused'], (m) => isCount(m['rid']) && isCount(m['part']) && Array.isArray(m['refused'])
  && m['refused'].length <= LIMITS.syncEntries
  && m['refused'].every((r) => Array.isArray(r) && r.length === 2 && isCount(r[0]) && isEntry(r[1])));
schema('probe', ['rid', 'name', 'owner', 'b'], (m) => isCount(m['rid']) && isName(m['name']) && isOwner(m['owner']) && isBallot(m['b']));
schema('probeR', ['rid', 'alive', 'holds'], (m) => isCount(m['rid']) && isBool(m['alive']) && isBool(m['holds']));
schema('hello', ['rid'], (m) => isCount(m['rid']));
schema('helloR', ['rid', 'complete', 'entries', 'unconfirmed', 'voting'], (m) => isCount(m['rid']) && isBool(m['complete']) && isBool(m['voting'])
  && isOpt(m['entries'], (e) => Array.isArray(e) && e.length <= LIMITS.syncEntries && e.every(isSyncEntry))
  && isOpt(m['unconfirmed'], (u) => Array.isArray(u) && u.length <= LIMITS.syncEntries && u.every(isCount)));
schema('hoff', ['rid', 'name', 'owner', 'from'], (m) => isCount(m['rid']) && isName(m['name']) && isOwner(m['owner']) && isBallot(m['from']));
schema('hoffR', ['rid', 'ok', 'guard', 'err'], (m) => isCount(m['rid']) && isBool(m['ok']) && isOpt(m['guard'], isId) && isOpt(m['err'], isErrCode));
schema('hgo', ['rid', 'name', 'guard', 'seq'], (m) => isCount(m['rid']) && isName(m['name']) && isId(m['guard']) && isCount(m['seq']));
schema('hgoR', ['rid', 'ok', 'token', 'err'], (m) => isCount(m['rid']) && isBool(m['ok']) && isOpt(m['token'], isCount) && isOpt(m['err'], isErrCode));
schema('fwd', ['rid', 'op', 'name', 'b', 'owner'], (m) => isCount(m['rid']) && (m['op'] === 'update' || m['op'] === 'unregister')
  && isName(m['name']) && isBallot(m['b']) && isOpt(m['owner'], isOwner));
schema('fwdR', ['rid', 'ok', 'err'], (m) => isCount(m['rid']) && isBool(m['ok']) && isOpt(m['err'], isErrCode));
schema('msg', ['rid', 'name', 'to', 'body', 'call'], (m) => isCount(m['rid']) && isName(m['name']) && isOwner(m['to']) && isBool(m['call']));
schema('msgR', ['rid', 'ok', 'body', 'err'], (m) => isCount(m['rid']) && isBool(m['ok']) && isOpt(m['err'], isErrCode));
function isMemberList(ml: unknown): boolean {
  return isRec(ml) && isCount(ml['version']) && Array.isArray(ml['members']) && ml['members'].length <= LIMITS.members
    && ml['members'].every(isMember) && keysWithin(ml, MEMBER_LIST_KEYS)
    && new Set(ml['members'].map((x) => (x as MemberInfo).id)).size === ml['members'].length;
}
const MEMBER_LIST_KEYS = new Set(['version', 'members']);
schema('gossip', ['members', 'config'], (m) => isMemberList(m['members'])
  && Array.isArray(m['config']) && m['config'].length <= LIMITS.configEntries && m['config'].every(isConfigEntry));
schema('mget', ['rid'], (m) => isCount(m['rid']));
schema('mgetR', ['rid', 'members', 'settled'], (m) => isCount(m['rid']) && isMemberList(m['members']) && isOpt(m['settled'], isBool));
schema('mset', ['rid', 'members'], (m) => isCount(m['rid']) && isMemberList(m['members']));
schema('msetR', ['rid', 'version'], (m) => isCount(m['rid']) && isCount(m['version']));
schema('join', ['rid', 'id', 'endpoint', 'publicKey', 'shards'], (m) => isCount(m['rid']) && isId(m['id'])
  && typeof m['endpoint'] === 'string' && m['endpoint'].length > 0 && m['endpoint'].length <= 1024 && isOpt(m['publicKey'], isKey)
  && isCount(m['shards']) && m['shards'] > 0);
schema('joinR', ['rid', 'ok', 'members', 'wasMember', 'err', 'shards'], (m) => isCount(m['rid']) && isBool(m['ok'])
  && isOpt(m['members'], isMemberList) && isOpt(m['wasMember'], isBool) && isOpt(m['err'], isErrCode) && isOpt(m['shards'], isCount));
schema('status', ['rid'], (m) => isCount(m['rid']));
schema('ncall', ['rid', 'topic', 'body'], (m) => isCount(m['rid']) && typeof m['topic'] === 'string' && m['topic'].length > 0 && m['topic'].length <= 64);
schema('ncallR', ['rid', 'ok', 'body', 'err'], (m) => isCount(m['rid']) && isBool(m['ok']) && isOpt(m['err'], isErrCode));
schema('statusR', ['rid', 'node', 'members', 'live', 'held', 'voting'], (m) => isCount(m['rid']) && isId(m['node'])
  && isMemberList(m['members']) && Array.isArray(m['live']) && m['live'].length <= LIMITS.members && m['live'].every(isId)
  && isCount(m['held']) && isBool(m['voting']));
schema('own', ['name', 'b', 'v', 'seq', 'mv'], (m) => isName(m['name']) && isBallot(m['b']) && isValueOrNull(m['v']) && isCount(m['seq'])
  && isOpt(m['mv'], isCount));
schema('ping', ['rid'], (m) => isCount(m['rid']));
schema('pong', ['rid'], (m) => isCount(m['rid']));

/** True when `x` is a well-formed message of a known type. */
export function isMessage(x: unknown): x is Message {
  if (!isRec(x)) return false;
  const type = x['type'];
  if (typeof type !== 'string') return false;
  const s = SCHEMAS[type];
  if (s === undefined) return false;
  try {
    return keysWithin(x, s.keys) && s.check(x);
  } catch {
    return false;
  }
}

/** The message types the codec knows (for tests and fuzzers). */
export const MESSAGE_TYPES: readonly string[] = Object.keys(SCHEMAS);
