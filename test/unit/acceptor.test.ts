/**
 * Acceptor: the per-node vote. Every rule of DESIGN.md "The protocol" and issue 2 "Acceptor semantics"
 * is driven here message by message against one acceptor on a ManualClock, asserting replies (ok, why,
 * the entry view) and what a later request sees, never message text.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Acceptor, type AcceptorSettings } from '../../lib/acceptor/acceptor.js';
import { entryHash, xorDigest } from '../../lib/acceptor/digest.js';
import { ManualClock } from '../../lib/clock.js';
import type {
  Ballot, CommitReply, EntryView, OwnerRef, PrepareMode, PrepareReply, ReadReply, RenewReply, SyncEntry, SyncReply, Value,
} from '../../lib/protocol/messages.js';

// ---- helpers ---------------------------------------------------------------------------------------

const HB = 1000;
const NAME = 'queue:billing';

interface Rig {
  readonly clock: ManualClock;
  readonly a: Acceptor;
  readonly settings: { -readonly [K in keyof AcceptorSettings]: AcceptorSettings[K] };
}

function rig(opts: { termFloor?: number; voting?: boolean; shards?: number; settings?: Partial<AcceptorSettings> } = {}): Rig {
  const clock = new ManualClock();
  const settings = { deleteTimeThreshold: 10_000, deleteLimit: 100, promiseTtl: 3000, ...opts.settings };
  const a = new Acceptor(
    { clock, settings: () => settings },
    { shards: opts.shards ?? 4, termFloor: opts.termFloor ?? 0, voting: opts.voting ?? true },
  );
  return { clock, a, settings };
}

let rid = 0;
const nextRid = (): number => ++rid;

const ballot = (t: number, g: string): Ballot => ({ t, g });
const ownerOf = (node: string, id = 1): OwnerRef => ({ node, inc: 1, id });
function value(gnode = 'A', hb = HB, handoffTo?: string): Value {
  return handoffTo === undefined ? { owner: ownerOf(gnode), gnode, hb } : { owner: ownerOf(gnode), gnode, hb, handoffTo };
}

function prep(a: Acceptor, name: string, b: Ballot, mode: PrepareMode = 'free', from?: Ballot): PrepareReply {
  return from === undefined
    ? a.prepare({ type: 'prep', rid: nextRid(), name, b, mode })
    : a.prepare({ type: 'prep', rid: nextRid(), name, b, mode, from });
}

function com(a: Acceptor, name: string, b: Ballot, v: Value | null, seq = 1): CommitReply {
  return a.commit({ type: 'com', rid: nextRid(), name, b, v, seq });
}

function read(a: Acceptor, name: string): ReadReply {
  return a.read({ type: 'read', rid: nextRid(), name });
}

function view(a: Acceptor, name: string): EntryView {
  const r = read(a, name);
  assert.ok(r.ok, 'read answered');
  assert.ok(r.entry !== undefined, `entry for ${name} exists`);
  return r.entry;
}

function renew(a: Acceptor, from: string, count: number, digest: number, hb = HB): RenewReply {
  return a.renew(from, { type: 'renew', rid: nextRid(), hb, count, digest });
}

function sync(a: Acceptor, from: string, entries: SyncEntry[], part = 0, parts = 1, hb = HB): SyncReply {
  const r = a.sync(from, { type: 'sync', rid: nextRid(), hb, part, parts, entries });
  assert.ok(r !== undefined, 'a sync without a member-list version is answered');
  return r;
}

/** prepare + commit, both must succeed. */
function grant(a: Acceptor, name: string, b: Ballot, v: Value | null, seq = 1): void {
  const p = prep(a, name, b);
  assert.ok(p.ok, `prepare ${name} ${b.t}/${b.g}`);
  const c = com(a, name, b, v, seq);
  assert.ok(c.ok, `commit ${name} ${b.t}/${b.g}`);
}

/** `NAME` held at b1 = 1/n1 with `v`, and a takeover promised above it at b2 = 2/n2 (not committed). */
function pendingTakeover(a: Acceptor, v: Value = value('A')): { readonly b1: Ballot; readonly b2: Ballot; readonly v: Value } {
  const b1 = ballot(1, 'n1');
  const b2 = ballot(2, 'n2');
  grant(a, NAME, b1, v);
  assert.ok(prep(a, NAME, b2, 'takeover', b1).ok);
  return { b1, b2, v };
}

/** One cleanup pass per shard (a pass cleans one shard): every entry is looked at once. Returns how many went. */
function sweep(a: Acceptor, shards = 4): number {
  let removed = 0;
  for (let pass = 0; pass < shards; pass++) removed += a.cleanup();
  return removed;
}

/** The digest a node's renewal must carry to cover exactly these entries. */
function digestOf(entries: readonly (readonly [string, Ballot, number])[]): { count: number; digest: number } {
  let digest = 0;
  for (const [name, b, seq] of entries) digest = xorDigest(digest, entryHash(name, b, seq));
  return { count: entries.length, digest };
}

// ---- prepare ---------------------------------------------------------------------------------------

test('prepare: empty acceptor -> promise with the promised ballot in the view', () => {
  const { a } = rig();
  const b = ballot(1, 'n1/1/1');
  const r = prep(a, NAME, b);
  assert.is(r.ok, true);
  assert.is(r.type, 'prepR');
  assert.equal(r.b, b);
  assert.equal(r.entry?.promise, b);
  assert.is(r.entry?.ballot, undefined);
  assert.is(r.entry?.value, null);
  assert.equal(view(a, NAME).promise, b);
});

test('prepare: higher term (even with a lower guard id) -> promise', () => {
  const { a } = rig();
  assert.ok(prep(a, NAME, ballot(1, 'z')).ok);
  const r = prep(a, NAME, ballot(2, 'a'));
  assert.is(r.ok, true);
  assert.equal(view(a, NAME).promise, ballot(2, 'a'));
});

/**
 * Prepares whose term does not rise above what the acceptor holds (`held`: promised, or accepted by a
 * prepare and commit of `b`): each asked ballot is refused `ballot` with the held one in the view, the
 * refusals promise nothing, and a term above the held one is promised afterwards.
 */
const notAbove: readonly { readonly title: string; readonly held: 'promised' | 'accepted'; readonly b: Ballot; readonly asks: readonly Ballot[] }[] = [
  {
    title: 'same term as the promise, even with a higher guard id -> refused ballot (the term must rise)',
    held: 'promised', b: ballot(3, 'n2'), asks: [ballot(3, 'n1'), ballot(3, 'n3')],
  },
  { title: 'same term as the accepted ballot, higher guard id -> refused ballot', held: 'accepted', b: ballot(3, 'n2'), asks: [ballot(3, 'n9')] },
  { title: 'equal ballot -> refused ballot with the entry view', held: 'promised', b: ballot(4, 'n1'), asks: [ballot(4, 'n1')] },
  { title: 'lower term with a higher guard id -> refused ballot, promise unchanged', held: 'promised', b: ballot(5, 'a'), asks: [ballot(4, 'zzz')] },
  {
    title: 'below an accepted (tombstoned) ballot -> refused ballot with ballot in the view',
    held: 'accepted', b: ballot(6, 'n1'), asks: [ballot(5, 'n9')],
  },
];

for (const c of notAbove) {
  test(`prepare: ${c.title}`, () => {
    const { a } = rig();
    if (c.held === 'promised') assert.ok(prep(a, NAME, c.b).ok);
    else grant(a, NAME, c.b, null);
    for (const asked of c.asks) {
      const r = prep(a, NAME, asked);
      assert.is(r.ok, false, `${asked.t}/${asked.g}`);
      assert.is(r.why, 'ballot');
      assert.equal(c.held === 'promised' ? r.entry?.promise : r.entry?.ballot, c.b);
      assert.is(r.entry?.expired, false);
    }
    assert.equal(view(a, NAME).promise, c.b);
    assert.is(prep(a, NAME, ballot(c.b.t + 1, 'n1')).ok, true);
  });
}

test('prepare: term below the term floor -> refused ballot with the floor; at the floor -> promise', () => {
  const { a } = rig({ termFloor: 10 });
  const r = prep(a, NAME, ballot(9, 'n1'));
  assert.is(r.ok, false);
  assert.is(r.why, 'ballot');
  assert.is(r.floor, 10);
  assert.is(a.floor, 10);
  const ok = prep(a, NAME, ballot(10, 'n1'));
  assert.is(ok.ok, true);
  assert.is(ok.floor, 10);
});

test('prepare: live committed value, mode free -> refused held with value and ballot in the view', () => {
  const { a } = rig();
  const b = ballot(1, 'n1');
  const v = value('A');
  grant(a, NAME, b, v);
  const r = prep(a, NAME, ballot(2, 'n2'));
  assert.is(r.ok, false);
  assert.is(r.why, 'held');
  assert.equal(r.entry?.ballot, b);
  assert.equal(r.entry?.value, v);
  assert.is(r.entry?.seq, 1);
  assert.is(r.entry?.expired, false);
  // A refusal promises nothing.
  assert.equal(view(a, NAME).promise, b);
});

test('prepare: value just under 3 heartbeats old -> still held; past 3 heartbeats -> promise with expired:true', async () => {
  const { a, clock } = rig();
  const b = ballot(1, 'n1');
  grant(a, NAME, b, value('A'));
  await clock.advance(3 * HB - 1);
  const held = prep(a, NAME, ballot(2, 'n2'));
  assert.is(held.ok, false);
  assert.is(held.why, 'held');
  assert.is(view(a, NAME).expired, false);
  await clock.advance(2);
  assert.is(view(a, NAME).expired, true);
  const r = prep(a, NAME, ballot(2, 'n2'));
  assert.is(r.ok, true);
  assert.is(r.entry?.expired, true);
  assert.equal(r.entry?.ballot, b);
  assert.equal(r.entry?.promise, ballot(2, 'n2'));
});

test('prepare: expiry follows the value hb, not a fixed period', async () => {
  const { a, clock } = rig();
  grant(a, NAME, ballot(1, 'n1'), value('A', 5000));
  await clock.advance(3 * HB + 1);
  assert.is(prep(a, NAME, ballot(2, 'n2')).why, 'held');
  await clock.advance(15_000);
  assert.is(prep(a, NAME, ballot(3, 'n2')).ok, true);
});

test('prepare: a re-commit of the same ballot restarts the 3 heartbeats', async () => {
  const { a, clock } = rig();
  const b = ballot(1, 'n1');
  grant(a, NAME, b, value('A'));
  await clock.advance(2 * HB);
  assert.ok(com(a, NAME, b, value('A')).ok);
  await clock.advance(2 * HB);
  assert.is(prep(a, NAME, ballot(2, 'n2')).why, 'held');
  await clock.advance(HB + 1);
  assert.is(prep(a, NAME, ballot(2, 'n2')).ok, true);
});

/**
 * Prepares over a live value accepted at `accepted` (a handoff marker when `value.handoffTo` is set):
 * only a takeover from exactly the accepted ballot, or a handoff from it by the guard the marker names,
 * is promised; every other one is refused `held` and promises nothing.
 */
const B1 = ballot(1, 'A/1/1');
const MARKED = value('A', HB, 'B/1/7');
const overLive: readonly {
  readonly title: string; readonly accepted: Ballot; readonly value: Value; readonly b: Ballot; readonly mode: PrepareMode; readonly from?: Ballot;
  readonly promised: boolean;
}[] = [
  { title: 'takeover from exactly the accepted ballot -> promise over a live value', accepted: ballot(1, 'n1'), value: value('A'), b: ballot(2, 'n2'), mode: 'takeover', from: ballot(1, 'n1'), promised: true },
  { title: 'takeover from another ballot -> refused held', accepted: ballot(3, 'n1'), value: value('A'), b: ballot(4, 'n2'), mode: 'takeover', from: ballot(2, 'n1'), promised: false },
  { title: 'takeover without from -> refused held', accepted: ballot(3, 'n1'), value: value('A'), b: ballot(4, 'n2'), mode: 'takeover', promised: false },
  { title: 'takeover from a ballot above the accepted one -> refused held', accepted: ballot(3, 'n1'), value: value('A'), b: ballot(5, 'n2'), mode: 'takeover', from: ballot(4, 'n1'), promised: false },
  { title: 'handoff from the accepted ballot to the marked guard -> promise', accepted: B1, value: MARKED, b: ballot(2, 'B/1/7'), mode: 'handoff', from: B1, promised: true },
  { title: 'handoff by a guard other than handoffTo -> refused held', accepted: B1, value: MARKED, b: ballot(2, 'C/1/1'), mode: 'handoff', from: B1, promised: false },
  { title: 'handoff from another ballot than the accepted one -> refused held', accepted: B1, value: MARKED, b: ballot(2, 'B/1/7'), mode: 'handoff', from: ballot(0, 'A/1/1'), promised: false },
  { title: 'handoff on an unmarked value -> refused held', accepted: B1, value: value('A'), b: ballot(2, 'B/1/7'), mode: 'handoff', from: B1, promised: false },
  { title: 'free mode on a handoff marker -> refused held (a marker is live like any value)', accepted: B1, value: MARKED, b: ballot(2, 'B/1/7'), mode: 'free', promised: false },
];

for (const c of overLive) {
  test(`prepare: ${c.title}`, () => {
    const { a } = rig();
    grant(a, NAME, c.accepted, c.value);
    const r = prep(a, NAME, c.b, c.mode, c.from);
    if (c.promised) {
      assert.is(r.ok, true);
      assert.equal(view(a, NAME).promise, c.b);
    } else {
      assert.is(r.ok, false);
      assert.is(r.why, 'held');
      assert.equal(view(a, NAME).promise, c.accepted);
    }
  });
}

// ---- commit ----------------------------------------------------------------------------------------

test('commit: exact promised ballot -> ack, value installed', () => {
  const { a } = rig();
  const b = ballot(1, 'n1');
  assert.ok(prep(a, NAME, b).ok);
  const v = value('A');
  const r = com(a, NAME, b, v);
  assert.is(r.ok, true);
  assert.equal(r.b, b);
  assert.is(r.seq, 1);
  const e = view(a, NAME);
  assert.equal(e.ballot, b);
  assert.equal(e.promise, b);
  assert.equal(e.value, v);
  assert.is(e.seq, 1);
});

test('commit: no entry -> nack ballot', () => {
  const { a } = rig();
  const r = com(a, NAME, ballot(1, 'n1'), value('A'));
  assert.is(r.ok, false);
  assert.is(r.why, 'ballot');
  assert.is(read(a, NAME).entry, undefined);
});

test('commit: a lower or higher ballot than the promise -> nack with the entry view, nothing installed', () => {
  const { a } = rig();
  const b = ballot(5, 'n2');
  assert.ok(prep(a, NAME, b).ok);
  for (const other of [ballot(4, 'n1'), ballot(5, 'n1'), ballot(5, 'n3'), ballot(6, 'n1')]) {
    const r = com(a, NAME, other, value('A'));
    assert.is(r.ok, false);
    assert.is(r.why, 'ballot');
    assert.equal(r.entry?.promise, b);
    assert.is(r.entry?.ballot, undefined);
    assert.equal(r.b, other);
  }
  assert.is(view(a, NAME).value, null);
});

test('commit: old ballot after a higher promise -> nack with the promise, value kept', () => {
  const { a } = rig();
  const { b1, b2, v } = pendingTakeover(a);
  const r = com(a, NAME, b1, v);
  assert.is(r.ok, false);
  assert.equal(r.entry?.promise, b2);
  assert.equal(r.entry?.ballot, b1);
});

test('commit: older seq under the same ballot -> nack, the newer value stays', () => {
  const { a } = rig();
  const b = ballot(1, 'A/1/1');
  grant(a, NAME, b, value('A'));
  const marker = value('A', HB, 'B/1/2');
  assert.ok(com(a, NAME, b, marker, 2).ok);
  const late = com(a, NAME, b, value('A'), 1);
  assert.is(late.ok, false);
  assert.is(late.entry?.seq, 2);
  const e = view(a, NAME);
  assert.is(e.seq, 2);
  assert.equal(e.value, marker);
  // The same seq again is a renewal, and is accepted.
  assert.ok(com(a, NAME, b, marker, 2).ok);
});

test('commit: tombstone -> name free at once for a new prepare', () => {
  const { a } = rig();
  const b1 = ballot(1, 'n1');
  grant(a, NAME, b1, value('A'));
  assert.ok(com(a, NAME, b1, null, 2).ok);
  const e = view(a, NAME);
  assert.is(e.value, null);
  assert.is(e.expired, false);
  assert.equal(e.ballot, b1);
  const r = prep(a, NAME, ballot(2, 'n2'));
  assert.is(r.ok, true);
  assert.equal(r.entry?.ballot, b1);
});

// ---- read ------------------------------------------------------------------------------------------

test('read: absent name -> ok without entry', () => {
  const { a } = rig();
  const r = read(a, NAME);
  assert.is(r.ok, true);
  assert.is(r.type, 'readR');
  assert.is(r.name, NAME);
  assert.is(r.entry, undefined);
});

test('read: held name -> promise, ballot, value, seq and expired', async () => {
  const { a, clock } = rig();
  const b1 = ballot(2, 'n1');
  const v = value('A');
  grant(a, NAME, b1, v);
  assert.ok(com(a, NAME, b1, v, 3).ok);
  const b2 = ballot(3, 'n2');
  assert.ok(prep(a, NAME, b2, 'takeover', b1).ok);
  assert.equal(view(a, NAME), { promise: b2, ballot: b1, value: v, seq: 3, expired: false });
  await clock.advance(3 * HB + 1);
  assert.is(view(a, NAME).expired, true);
});

// ---- recovering acceptor ---------------------------------------------------------------------------

test('voting: recovering acceptor -> read ok:false, prepare refused recovering', () => {
  const { a } = rig({ voting: false });
  assert.is(a.voting, false);
  const r = read(a, NAME);
  assert.is(r.ok, false);
  assert.is(r.entry, undefined);
  const p = prep(a, NAME, ballot(1, 'n1'));
  assert.is(p.ok, false);
  assert.is(p.why, 'recovering');
  assert.is(a.size, 0);
});

test('voting: recovering acceptor -> still takes a sync from a guard\'s node; startVoting -> reads show it', () => {
  const { a } = rig({ voting: false });
  const b = ballot(4, 'n1');
  const v = value('A');
  assert.equal(sync(a, 'A', [[NAME, b, v, 1]]).refused, []);
  assert.is(read(a, NAME).ok, false);
  a.startVoting();
  assert.is(a.voting, true);
  assert.equal(view(a, NAME), { promise: b, ballot: b, value: v, seq: 1, expired: false });
  assert.is(prep(a, NAME, ballot(5, 'n2')).why, 'held');
});

// ---- abandon and promise expiry --------------------------------------------------------------------

test('abandon: promise above the accepted ballot -> promise falls back to the accepted ballot', () => {
  const { a } = rig();
  const { b1, b2, v } = pendingTakeover(a);
  a.abandon({ type: 'abandon', name: NAME, b: b2 });
  assert.equal(view(a, NAME).promise, b1);
  // The guard holding b1 can commit again.
  assert.ok(com(a, NAME, b1, v).ok);
});

test('abandon: prepare-only entry -> the promise is withdrawn; terms up to the abandoned one stay refused, the reply names the next', () => {
  const { a } = rig();
  assert.ok(prep(a, NAME, ballot(5, 'n2')).ok);
  a.abandon({ type: 'abandon', name: NAME, b: ballot(5, 'n2') });
  assert.is(view(a, NAME).promise, undefined);
  const low = prep(a, NAME, ballot(3, 'n1'));
  assert.is(low.ok, false);
  assert.is(low.floor, 6);
  assert.is(prep(a, NAME, ballot(5, 'n2')).ok, false, 'the abandoned ballot itself, arriving late');
  assert.is(prep(a, NAME, ballot(6, 'n1')).ok, true);
});

test('abandon: before its prepare arrived -> the late prepare installs nothing', () => {
  const { a } = rig();
  a.abandon({ type: 'abandon', name: NAME, b: ballot(5, 'n2') });
  const late = a.prepare({ type: 'prep', rid: 1, name: NAME, b: ballot(5, 'n2'), mode: 'free', v: value('A') });
  assert.is(late.ok, false);
  assert.is(view(a, NAME).value, null);
  assert.is(view(a, NAME).promise, undefined);
});

test('abandon: another ballot than the promise, or the accepted ballot -> nothing changes', () => {
  const { a } = rig();
  const { b1, b2 } = pendingTakeover(a);
  a.abandon({ type: 'abandon', name: NAME, b: ballot(2, 'n1') });
  assert.equal(view(a, NAME).promise, b2);
  a.abandon({ type: 'abandon', name: 'other', b: b2 });
  assert.equal(view(a, NAME).promise, b2);

  const { a: a2 } = rig();
  grant(a2, NAME, b1, value('A'));
  a2.abandon({ type: 'abandon', name: NAME, b: b1 });
  assert.equal(view(a2, NAME).promise, b1);
  assert.equal(view(a2, NAME).ballot, b1);
});

test('promiseTtl: promise not followed by commit in time -> the older accepted ballot commits again', async () => {
  const { a, clock } = rig({ settings: { promiseTtl: 3000 } });
  const { b1, v } = pendingTakeover(a, value('A', 10_000));
  await clock.advance(2999);
  assert.is(com(a, NAME, b1, v).ok, false, 'promise still in force');
  await clock.advance(1);
  const r = com(a, NAME, b1, v);
  assert.is(r.ok, true, 'a leftover promise must not block the guard that holds the name');
});

test('promiseTtl: promise past its ttl -> read shows the accepted ballot as the promise', async () => {
  const { a, clock } = rig({ settings: { promiseTtl: 3000 } });
  const { b1 } = pendingTakeover(a, value('A', 10_000));
  await clock.advance(3000);
  assert.equal(view(a, NAME).promise, b1);
});

test('promiseTtl: expired promise -> withdrawn, and a lower term is refused with the floor above it', async () => {
  const { a, clock } = rig({ settings: { promiseTtl: 3000 } });
  assert.ok(prep(a, NAME, ballot(7, 'n2')).ok);
  await clock.advance(3000);
  assert.is(view(a, NAME).promise, undefined);
  const r = prep(a, NAME, ballot(6, 'n1'));
  assert.is(r.ok, false);
  assert.is(r.floor, 8);
  assert.is(prep(a, NAME, ballot(8, 'n1')).ok, true);
});

test('promiseTtl: a commit that follows its promise in time -> accepted', async () => {
  const { a, clock } = rig({ settings: { promiseTtl: 3000 } });
  const b = ballot(1, 'n1');
  assert.ok(prep(a, NAME, b).ok);
  await clock.advance(2999);
  assert.ok(com(a, NAME, b, value('A')).ok);
});

// ---- batched renewals ------------------------------------------------------------------------------

test('renew: count and digest of the node\'s entries -> ack echoing them', () => {
  const { a } = rig();
  const b1 = ballot(1, 'A/1/1');
  const b2 = ballot(1, 'A/1/2');
  grant(a, 'n1', b1, value('A'));
  grant(a, 'n2', b2, value('A'), 2);
  grant(a, 'n3', ballot(1, 'B/1/1'), value('B'));
  const want = digestOf([['n1', b1, 1], ['n2', b2, 2]]);
  const r = renew(a, 'A', want.count, want.digest);
  assert.is(r.ok, true);
  assert.is(r.type, 'renewR');
  assert.is(r.count, 2);
  assert.is(r.digest, want.digest);
});

test('renew: mismatch -> nack carrying the acceptor\'s own count and digest', () => {
  const { a } = rig();
  const b1 = ballot(1, 'A/1/1');
  grant(a, 'n1', b1, value('A'));
  const want = digestOf([['n1', b1, 1]]);
  const wrongCount = renew(a, 'A', 2, want.digest);
  assert.is(wrongCount.ok, false);
  assert.is(wrongCount.count, 1);
  assert.is(wrongCount.digest, want.digest);
  const wrongDigest = renew(a, 'A', 1, xorDigest(want.digest, 12345));
  assert.is(wrongDigest.ok, false);
  assert.is(wrongDigest.count, 1);
  assert.is(wrongDigest.digest, want.digest);
  // Another seq is another entry.
  const staleSeq = digestOf([['n1', b1, 2]]);
  assert.is(renew(a, 'A', staleSeq.count, staleSeq.digest).ok, false);
});

test('renew: tombstoned entries leave the node\'s set', () => {
  const { a } = rig();
  const b1 = ballot(1, 'A/1/1');
  grant(a, 'n1', b1, value('A'));
  grant(a, 'n2', ballot(1, 'A/1/2'), value('A'));
  assert.ok(com(a, 'n2', ballot(1, 'A/1/2'), null, 2).ok);
  const want = digestOf([['n1', b1, 1]]);
  assert.is(renew(a, 'A', want.count, want.digest).ok, true);
});

test('renew: ack -> every entry of that node stays live 3 heartbeats from the renewal', async () => {
  const { a, clock } = rig();
  const b1 = ballot(1, 'A/1/1');
  const b2 = ballot(1, 'A/1/2');
  grant(a, 'n1', b1, value('A'));
  grant(a, 'n2', b2, value('A'));
  const want = digestOf([['n1', b1, 1], ['n2', b2, 1]]);
  await clock.advance(2500);
  assert.is(renew(a, 'A', want.count, want.digest).ok, true);
  await clock.advance(2000); // t = 4500: past 3 hb of the commits, within 3 hb of the renewal
  for (const n of ['n1', 'n2']) {
    assert.is(view(a, n).expired, false, `${n} live`);
    assert.is(prep(a, n, ballot(2, 'C/1/1')).why, 'held');
  }
  await clock.advance(1001); // t = 5501
  for (const n of ['n1', 'n2']) {
    assert.is(view(a, n).expired, true, `${n} expired`);
    assert.is(prep(a, n, ballot(2, 'C/1/1')).ok, true);
  }
});

test('renew: the hb carried by the renewal sets the expiry of covered entries', async () => {
  const { a, clock } = rig();
  const b1 = ballot(1, 'A/1/1');
  grant(a, 'n1', b1, value('A', HB));
  const want = digestOf([['n1', b1, 1]]);
  await clock.advance(1);
  assert.ok(renew(a, 'A', want.count, want.digest, 4000).ok);
  await clock.advance(11_999);
  assert.is(view(a, 'n1').expired, false);
  await clock.advance(2);
  assert.is(view(a, 'n1').expired, true);
});

/** Renewals that do not cover an entry of A committed at t = 0: it expires 3 heartbeats after its commit. */
const notCovering: readonly { readonly title: string; readonly from: string; readonly count: number; readonly digest: number; readonly ok: boolean }[] = [
  { title: 'nack -> entries are not renewed', from: 'A', count: 5, digest: 5, ok: false },
  { title: 'another node\'s renewal -> does not cover this node\'s entries', from: 'B', count: 0, digest: 0, ok: true },
];

for (const c of notCovering) {
  test(`renew: ${c.title}`, async () => {
    const { a, clock } = rig();
    grant(a, 'n1', ballot(1, 'A/1/1'), value('A'));
    await clock.advance(2500);
    assert.is(renew(a, c.from, c.count, c.digest).ok, c.ok);
    await clock.advance(501);
    assert.is(view(a, 'n1').expired, true);
  });
}

test('renew: a handoff marker (handoffTo set) -> left out of the sender\'s count and digest', () => {
  const { a } = rig();
  const b1 = ballot(1, 'A/1/1');
  grant(a, 'n1', b1, value('A', HB, 'B/1/9'));
  const r = renew(a, 'A', 0, 0);
  assert.is(r.count, 0, 'marker must not count among the renewed entries of A');
  assert.is(r.ok, true);
});

test('renew: a handoff marker (handoffTo set) -> expires 3 heartbeats after its own commit despite renewals', async () => {
  const { a, clock } = rig();
  const b1 = ballot(1, 'A/1/1');
  grant(a, 'n1', b1, value('A', HB, 'B/1/9'));
  await clock.advance(2500);
  // Renew with whatever the acceptor itself reports for A, so the renewal is acked.
  const first = renew(a, 'A', -1, -1);
  const r = renew(a, 'A', first.count, first.digest);
  assert.is(r.ok, true);
  await clock.advance(501);
  assert.is(view(a, 'n1').expired, true, 'renewals must not cover a handoff marker');
});

// ---- sync ------------------------------------------------------------------------------------------

test('sync: part 0 -> detaches every entry of the sender, then installs and renews listed ones', async () => {
  const { a, clock } = rig();
  const b1 = ballot(1, 'A/1/1');
  const b2 = ballot(1, 'A/1/2');
  const b4 = ballot(1, 'A/1/4');
  grant(a, 'n1', b1, value('A'));
  grant(a, 'n2', b2, value('A'));
  await clock.advance(2000);
  const r = sync(a, 'A', [['n1', b1, value('A'), 1], ['n4', b4, value('A'), 1]]);
  assert.is(r.type, 'syncR');
  assert.is(r.part, 0);
  assert.equal(r.refused, []);
  assert.equal(view(a, 'n4'), { promise: b4, ballot: b4, value: value('A'), seq: 1, expired: false });
  // The node's set is now exactly the listed entries.
  const want = digestOf([['n1', b1, 1], ['n4', b4, 1]]);
  const rn = renew(a, 'A', want.count, want.digest);
  assert.is(rn.ok, true);
  // n2 is no longer renewed: it expires 3 hb after its commit; n1 lives on from the sync.
  await clock.advance(1001); // t = 3001
  assert.is(view(a, 'n2').expired, true);
  assert.is(view(a, 'n1').expired, false);
});

test('sync: later parts -> do not detach what part 0 installed', () => {
  const { a } = rig();
  const b1 = ballot(1, 'A/1/1');
  const b2 = ballot(1, 'A/1/2');
  sync(a, 'A', [['n1', b1, value('A'), 1]], 0, 2);
  sync(a, 'A', [['n2', b2, value('A'), 1]], 1, 2);
  const want = digestOf([['n1', b1, 1], ['n2', b2, 1]]);
  assert.is(renew(a, 'A', want.count, want.digest).ok, true);
});

test('sync: a higher accepted ballot here -> refused with index and view; a rival promise alone -> overridden', () => {
  const { a } = rig();
  const high = ballot(9, 'C/1/1');
  assert.ok(prep(a, 'n1', high).ok);
  const newer = ballot(5, 'C/1/2');
  grant(a, 'n2', newer, value('C'));
  const mine = ballot(2, 'A/1/1');
  const r = sync(a, 'A', [['ok', mine, value('A'), 1], ['n1', mine, value('A'), 1], ['n2', mine, value('A'), 1]]);
  assert.equal(r.refused.map(([i]) => i), [2]);
  assert.equal(r.refused[0]?.[1].ballot, newer);
  assert.equal(view(a, 'n2').value, value('C'));
  assert.equal(view(a, 'n1').ballot, mine, 'the lease holder repaired over a rival promise');
  assert.equal(view(a, 'n1').promise, mine);
  assert.is(com(a, 'n1', high, value('C')).ok, false, 'the rival can no longer commit here');
  assert.equal(view(a, 'ok').ballot, mine);
});

test('sync: older seq under the same ballot -> refused', () => {
  const { a } = rig();
  const b = ballot(2, 'A/1/1');
  grant(a, 'n1', b, value('A'), 3);
  const r = sync(a, 'A', [['n1', b, value('A'), 2]]);
  assert.equal(r.refused.map(([i]) => i), [0]);
  assert.is(view(a, 'n1').seq, 3);
});

test('sync: value whose gnode is not the sender -> refused with index and view, nothing installed', () => {
  const { a } = rig();
  const b = ballot(1, 'B/1/1');
  grant(a, 'n1', b, value('B'));
  const r = sync(a, 'A', [['n1', ballot(2, 'B/1/1'), value('B'), 1]]);
  assert.is(r.refused.length, 1);
  assert.is(r.refused[0]?.[0], 0);
  assert.equal(r.refused[0]?.[1].ballot, b);
  assert.equal(view(a, 'n1').ballot, b);
});

// ---- cleanup ---------------------------------------------------------------------------------------

test('cleanup: tombstone older than deleteTimeThreshold -> removed; not a moment earlier', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000 } });
  grant(a, NAME, ballot(4, 'n1'), null);
  await clock.advance(10_000);
  assert.is(sweep(a), 0);
  assert.is(a.size, 1);
  await clock.advance(1);
  assert.is(sweep(a), 1);
  assert.is(a.size, 0);
  assert.is(read(a, NAME).entry, undefined);
});

test('cleanup: expired value -> removed deleteTimeThreshold after it expired, live values never', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000 } });
  grant(a, 'old', ballot(1, 'A/1/1'), value('A'));
  const live = ballot(1, 'B/1/1');
  grant(a, 'live', live, value('B'));
  await clock.advance(3 * HB + 10_000 - 1);
  assert.ok(com(a, 'live', live, value('B')).ok);
  assert.is(sweep(a), 0, 'expired only 9999 ms ago');
  await clock.advance(2);
  assert.ok(com(a, 'live', live, value('B')).ok);
  assert.is(sweep(a), 1);
  assert.is(read(a, 'old').entry, undefined);
  assert.equal(view(a, 'live').ballot, live);
});

test('cleanup: at most deleteLimit entries per pass', async () => {
  const { a, clock, settings } = rig({ shards: 1, settings: { deleteLimit: 2 } });
  for (let i = 0; i < 5; i++) grant(a, `t${i}`, ballot(1, 'n1'), null);
  await clock.advance(20_000);
  assert.is(a.cleanup(), 2);
  assert.is(a.size, 3);
  assert.is(a.cleanup(), 2);
  assert.is(a.cleanup(), 1);
  assert.is(a.cleanup(), 0);
  assert.is(a.size, 0);
  // The limit is read on every pass.
  for (let i = 0; i < 5; i++) grant(a, `u${i}`, ballot(5, 'n1'), null);
  await clock.advance(20_000);
  settings.deleteLimit = 4;
  assert.is(a.cleanup(), 4);
});

test('cleanup: every pass stays within deleteLimit across shards, and repeated passes empty them all', async () => {
  const { a, clock } = rig({ shards: 4, settings: { deleteLimit: 3 } });
  for (let i = 0; i < 40; i++) grant(a, `name-${i}`, ballot(1, 'n1'), null);
  await clock.advance(20_000);
  let total = 0;
  for (let pass = 0; pass < 40 && a.size > 0; pass++) {
    const n = a.cleanup();
    assert.ok(n <= 3, `pass removed ${n}`);
    total += n;
  }
  assert.is(total, 40);
  assert.is(a.size, 0);
});

test('cleanup: entry with a promise in flight above its ballot -> kept, and its commit still lands', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000, promiseTtl: 3000 } });
  const b1 = ballot(1, 'n1');
  grant(a, NAME, b1, null);
  await clock.advance(9000);
  const b2 = ballot(2, 'n2');
  assert.ok(prep(a, NAME, b2).ok);
  await clock.advance(2000); // tombstone 11000 ms old, promise 2000 ms old
  assert.is(sweep(a), 0);
  assert.is(a.size, 1);
  assert.ok(com(a, NAME, b2, value('B')).ok);
});

test('cleanup: promise lapsed (promiseTtl) on an old tombstone -> removed', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000, promiseTtl: 3000 } });
  grant(a, NAME, ballot(1, 'n1'), null);
  await clock.advance(9000);
  assert.ok(prep(a, NAME, ballot(2, 'n2')).ok);
  await clock.advance(3000);
  assert.is(sweep(a), 1);
  assert.is(a.size, 0);
});

test('cleanup: deleting an entry whose promise lapsed -> floor rises above the promised term too', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000, promiseTtl: 3000 } });
  grant(a, NAME, ballot(1, 'n1'), null);
  await clock.advance(9000);
  const b2 = ballot(2, 'n2');
  assert.ok(prep(a, NAME, b2).ok);
  await clock.advance(3000);
  sweep(a);
  assert.is(a.size, 0);
  assert.ok(a.floor > b2.t, `floor ${a.floor} must be above the deleted promise term ${b2.t}`);
  assert.is(prep(a, NAME, ballot(2, 'n3')).ok, false);
});

test('cleanup: deleted terms raise the floor -> a later prepare at or below them is refused', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000 } });
  grant(a, 'x', ballot(5, 'n1'), null);
  grant(a, 'y', ballot(7, 'n1'), null);
  assert.is(a.floor, 0);
  await clock.advance(10_001);
  assert.is(sweep(a), 2);
  assert.ok(a.floor > 7);
  for (const t of [5, 7]) {
    const r = prep(a, 'x', ballot(t, 'n9'));
    assert.is(r.ok, false);
    assert.is(r.why, 'ballot');
    assert.ok(r.floor > 7);
  }
  assert.is(prep(a, 'x', ballot(a.floor, 'n9')).ok, true);
});

test('cleanup: prepare-only leftover -> removed after its promise lapses and the threshold passes', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000, promiseTtl: 3000 } });
  assert.ok(prep(a, NAME, ballot(3, 'n1')).ok);
  await clock.advance(10_000);
  assert.is(sweep(a), 0);
  await clock.advance(1);
  assert.is(sweep(a), 1);
  assert.is(a.size, 0);
});

test('cleanup: prepare-only leftover deleted -> floor rises above its promised term', async () => {
  const { a, clock } = rig({ settings: { deleteTimeThreshold: 10_000, promiseTtl: 3000 } });
  assert.ok(prep(a, NAME, ballot(3, 'n1')).ok);
  await clock.advance(10_001);
  sweep(a);
  assert.is(a.size, 0);
  assert.ok(a.floor > 3, `floor ${a.floor} must be above the deleted promise term 3`);
});

// ---- catching up: liveEntries / adopt ------------------------------------------------------------

test('liveEntries: lists live values only; undefined past the limit', async () => {
  const { a, clock } = rig();
  grant(a, 'live', ballot(1, 'n1'), value('A'));
  grant(a, 'gone', ballot(1, 'n1'), value('A'));
  assert.ok(com(a, 'gone', ballot(1, 'n1'), null, 2).ok);
  assert.equal(a.liveEntries(10)?.entries.map((e) => e[0]), ['live']);
  assert.is(a.liveEntries(0), undefined);
  await clock.advance(3 * 1000 + 1);
  assert.equal(a.liveEntries(10)?.entries, [], 'expired values are not live');
});

test('adopt: installs what is missing or older, never over a higher decided ballot; counts repairs', () => {
  const { a } = rig();
  a.learn('mine', ballot(9, 'n1'), value('A'), 1);
  const n = a.adopt([['new', ballot(2, 'n2'), value('B'), 1], ['mine', ballot(3, 'n2'), value('B'), 1]]);
  assert.is(n, 1);
  assert.equal(view(a, 'new').ballot, ballot(2, 'n2'));
  assert.equal(view(a, 'mine').ballot, ballot(9, 'n1'));
  assert.is(a.stats.repairs, 1);
});

test('adopt: a decided value replaces an undecided one of a higher ballot; an undecided one never hides a decided one', () => {
  const { a } = rig();
  // From one member: a value accepted in one round trip by a minority (higher ballot, not confirmed).
  const stray: SyncEntry = [NAME, ballot(20, 'n5/1/3'), value('E'), 1];
  const held: SyncEntry = [NAME, ballot(7, 'n2/1/1'), value('B'), 1];
  a.adopt([stray], new Set([0]));
  assert.equal(view(a, NAME).ballot, ballot(20, 'n5/1/3'));
  a.adopt([held]);
  assert.equal(view(a, NAME).ballot, ballot(7, 'n2/1/1'), 'the decided registration wins');
  assert.equal(a.live().map((e) => e.confirmed), [true]);
  // In the other order the stray does not hide it either.
  const { a: b } = rig();
  b.adopt([held]);
  b.adopt([stray], new Set([0]));
  assert.equal(view(b, NAME).ballot, ballot(7, 'n2/1/1'));
  // A later seq of the same ballot (a handoff marker, never renewed by its node) is still taken.
  b.adopt([[NAME, ballot(7, 'n2/1/1'), value('B', 1000, 'n3/1/9'), 2]], new Set([0]));
  assert.is(view(b, NAME).seq, 2);
  // Two decided values: the higher ballot, as before.
  b.adopt([[NAME, ballot(9, 'n4/1/1'), value('D'), 1]]);
  assert.equal(view(b, NAME).ballot, ballot(9, 'n4/1/1'));
});

test('liveEntries: values not known decided are listed as unconfirmed', () => {
  const { a } = rig();
  grant(a, 'committed', ballot(1, 'n1'), value('A'));
  a.learn('announced', ballot(2, 'n2'), value('B'), 1);
  const live = a.liveEntries(10);
  assert.ok(live !== undefined);
  assert.equal(live.unconfirmed.map((i) => live.entries[i]?.[0]), ['committed']);
});

test('prepare: takeover of a live handoff marker -> refused held; only the named guard may take it', () => {
  const { a } = rig();
  const b1 = ballot(1, 'A/1/1');
  grant(a, NAME, b1, value('A'));
  assert.ok(com(a, NAME, b1, value('A', 1000, 'B/1/2'), 2).ok, 'the marker');
  const rival = prep(a, NAME, ballot(9, 'C/1/1'), 'takeover', b1);
  assert.is(rival.ok, false);
  assert.is(rival.why, 'held');
  assert.ok(prep(a, NAME, ballot(2, 'B/1/2'), 'handoff', b1).ok);
});

/** An acceptor whose node's member list is at `version.now`. */
function listRig(): { clock: ManualClock; a: Acceptor; version: { now: number } } {
  const clock = new ManualClock();
  const version = { now: 3 };
  const a = new Acceptor(
    { clock, settings: () => ({ deleteTimeThreshold: 10_000, deleteLimit: 100, promiseTtl: 3000 }), listVersion: () => version.now },
    { shards: 4, termFloor: 0, voting: true },
  );
  return { clock, a, version };
}

function renewUnder(a: Acceptor, from: string, d: { count: number; digest: number }, mv?: number): RenewReply {
  return a.renew(from, mv === undefined
    ? { type: 'renew', rid: nextRid(), hb: HB, count: d.count, digest: d.digest }
    : { type: 'renew', rid: nextRid(), hb: HB, count: d.count, digest: d.digest, mv });
}

test('settling: a value counts for the current member list once its guard or its node vouches for that list', async () => {
  const { clock, a, version } = listRig();
  const b = ballot(1, 'A/1/1');
  assert.ok(prep(a, NAME, b).ok);
  assert.ok(a.commit({ type: 'com', rid: nextRid(), name: NAME, b, v: value('A'), seq: 1, mv: 3 }).ok);
  assert.not.ok(a.unsettled(), 'committed by a guard asking a majority of the current list');
  const d = digestOf([[NAME, b, 1]]);
  await clock.advance(10);
  version.now = 4; // this node adopts a new member list
  assert.ok(a.unsettled(), 'accepted under the previous list only');
  await clock.advance(10);
  assert.ok(renewUnder(a, 'A', d, 3).ok, 'the lease is renewed');
  assert.ok(a.unsettled(), 'a renewal vouching for the old list does not settle it');
  assert.ok(renewUnder(a, 'A', d).ok);
  assert.ok(a.unsettled(), 'nor does one that vouches for no list');
  assert.not.ok(renewUnder(a, 'A', { count: d.count + 1, digest: d.digest }, 4).ok);
  assert.ok(a.unsettled(), 'nor a renewal that disagrees on the set');
  assert.ok(renewUnder(a, 'A', d, 4).ok);
  assert.not.ok(a.unsettled(), 'its node vouched for the current list');
  version.now = 5;
  assert.ok(a.unsettled(), 'a later list needs a later word');
  await clock.advance(4 * HB);
  assert.not.ok(a.unsettled(), 'an expired value needs nothing');
});

test('settling: a grant notice naming an older member list vouches for that list only', async () => {
  const { clock, a, version } = listRig();
  const b = ballot(1, 'A/1/1');
  assert.ok(prep(a, NAME, b).ok);
  assert.ok(a.commit({ type: 'com', rid: nextRid(), name: NAME, b, v: value('A'), seq: 1, mv: 3 }).ok);
  version.now = 4;
  assert.ok(a.unsettled());
  assert.ok(a.learn(NAME, b, value('A'), 1, 3));
  assert.ok(a.unsettled(), 'a notice of a grant by a majority of list 3');
  assert.ok(a.learn(NAME, b, value('A'), 1, 4));
  assert.not.ok(a.unsettled(), 'a notice of a grant by a majority of the current list');
  const other = ballot(2, 'B/1/1');
  assert.ok(a.learn('other', other, value('B'), 1));
  assert.ok(a.unsettled(), 'a notice that names no list vouches for none');
  await clock.advance(4 * HB);
  assert.not.ok(a.unsettled());
});

test('stale: a prepare, commit, renewal or sync from a sender with an older member list is refused and changes nothing', () => {
  const { a, version } = listRig();
  version.now = 4;
  const b = ballot(1, 'A/1/1');
  const p = a.prepare({ type: 'prep', rid: nextRid(), name: NAME, b, mode: 'free', v: value('A'), mv: 3 });
  assert.is(p.ok, false);
  assert.is(p.why, 'stale');
  assert.is(a.stats.nacks, 1, 'counted as a nack');
  assert.is(read(a, NAME).entry, undefined, 'no promise, no value');
  assert.ok(a.prepare({ type: 'prep', rid: nextRid(), name: NAME, b, mode: 'free', mv: 4 }).ok, 'the same ballot under the current list');
  const c = a.commit({ type: 'com', rid: nextRid(), name: NAME, b, v: value('A'), seq: 1, mv: 3 });
  assert.is(c.ok, false);
  assert.is(c.why, 'stale');
  assert.is(a.stats.nacks, 2);
  assert.is(view(a, NAME).value, null, 'the promise stands, nothing accepted');
  assert.ok(a.commit({ type: 'com', rid: nextRid(), name: NAME, b, v: value('A'), seq: 1, mv: 5 }).ok, 'a newer list than this acceptor\'s is fine');
  const d = digestOf([[NAME, b, 1]]);
  const r = a.renew('A', { type: 'renew', rid: nextRid(), hb: HB, count: d.count, digest: d.digest, mv: 4, lv: 3 });
  assert.is(r.ok, false);
  assert.is(r.why, 'stale');
  assert.ok(a.renew('A', { type: 'renew', rid: nextRid(), hb: HB, count: d.count, digest: d.digest, mv: 4, lv: 4 }).ok);
  const s = a.sync('B', { type: 'sync', rid: nextRid(), hb: HB, part: 0, parts: 1, entries: [['other', ballot(2, 'B/1/1'), value('B'), 1]], lv: 2 });
  assert.is(s, undefined, 'no reply');
  assert.is(read(a, 'other').entry, undefined, 'nothing installed');
});

test('settling: a value copied by a sync counts only after its node\'s next agreeing renewal vouches for the list', async () => {
  const { clock, a } = listRig();
  const b = ballot(1, 'A/1/1');
  assert.equal(sync(a, 'A', [[NAME, b, value('A'), 1]]).refused, []);
  assert.ok(a.unsettled(), 'one copy on one acceptor vouches for nothing');
  const d = digestOf([[NAME, b, 1]]);
  assert.ok(renewUnder(a, 'A', d, 3).ok);
  assert.ok(a.unsettled(), 'a renewal at the instant of the copy may have been sent before the node held it');
  await clock.advance(1);
  assert.ok(renewUnder(a, 'A', d, 3).ok);
  assert.not.ok(a.unsettled(), 'renewed after the copy, under the current list');
});

test.run();
