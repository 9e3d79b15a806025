/**
 * Frame sizing: a turn's messages are cut into frames by estimated size, in order, none lost, and the
 * estimate bounds what a frame really encodes to (so a sync of many names never makes a frame of MBs).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame } from '../../lib/protocol/codec.js';
import { PROTOCOL_VERSION, type EntryView, type Message, type SyncEntry } from '../../lib/protocol/messages.js';
import { SOFT_FRAME_BYTES, estimatedBytes, splitBySize } from '../../lib/transport/frame-size.js';

const entry = (i: number): SyncEntry => [
  `some/rather/long/name/of/a/job/${i}`,
  { t: 1_764_000_000_000_000 + i, g: `node-with-a-long-id/1764000000000/${i}` },
  { owner: { node: 'node-with-a-long-id', inc: 1_764_000_000_000, id: i }, gnode: 'node-with-a-long-id', hb: 8048, via: 'handoff' },
  i,
];
const sync = (part: number, n: number): Message => ({ type: 'sync', rid: 1, hb: 8048, part, parts: 40, entries: Array.from({ length: n }, (_, i) => entry(part * n + i)) });
const view = (i: number): EntryView => ({
  promise: entry(i)[1], ballot: entry(i)[1], value: entry(i)[2], seq: i, expired: false,
});
const syncR = (n: number): Message => ({ type: 'syncR', rid: 2, part: 0, refused: Array.from({ length: n }, (_, i) => [i, view(i)] as const) });
const helloR = (n: number): Message => ({ type: 'helloR', rid: 3, complete: true, voting: true, entries: Array.from({ length: n }, (_, i) => entry(i)) });
const prep = (i: number): Message => ({ type: 'prep', rid: i, name: `name/${i}`, b: { t: 1_764_000_000_000_000 + i, g: `n/1764000000000/${i}` }, mode: 'free' });

test('frames: small messages of a turn stay in one frame', () => {
  const msgs = Array.from({ length: 500 }, (_, i) => prep(i));
  const frames = splitBySize(msgs);
  assert.is(frames.length, 1);
  assert.is(frames[0], msgs);
  assert.equal(splitBySize([]), []);
});

test('frames: a full sync is cut into frames near the soft size, in order, nothing lost or repeated', () => {
  const msgs: Message[] = [prep(0), ...Array.from({ length: 33 }, (_, p) => sync(p, 1024)), prep(1), syncR(900), helloR(1000), syncR(10)];
  const frames = splitBySize(msgs);
  assert.ok(frames.length > 10);
  assert.equal(frames.flat(), msgs);
  for (const f of frames) {
    const bytes = encodeFrame({ version: PROTOCOL_VERSION, sender: 'node-with-a-long-id', inc: 1, messages: f }).byteLength;
    assert.ok(bytes <= SOFT_FRAME_BYTES, `frame of ${f.length} messages encodes to ${bytes} bytes`);
    const estimate = f.reduce((n, m) => n + estimatedBytes(m), 0);
    assert.ok(bytes <= estimate, `the estimate ${estimate} bounds the encoding ${bytes}`);
  }
});

test('frames: one message above the soft size travels alone', () => {
  const big = sync(0, 4096);
  const frames = splitBySize([prep(0), big, prep(1)]);
  assert.equal(frames, [[prep(0)], [big], [prep(1)]]);
});

test.run();
