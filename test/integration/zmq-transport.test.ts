/**
 * ZmqTransport over real sockets (loopback and ipc only) and real processes.
 *
 * Every test body runs under `timed` (uvu has no per-test timeout); every wait is a bounded poll; every
 * transport is stopped and every child process killed by pid in a `finally`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as zmq from 'zeromq';
import { SystemClock } from '../../lib/clock.js';
import { InvalidArgumentError, StoppedError } from '../../lib/errors.js';
import { encodeFrame } from '../../lib/protocol/codec.js';
import { PROTOCOL_VERSION, type Message } from '../../lib/protocol/messages.js';
import {
  ZmqTransport, generateCurveKeyPair, type CurveKeyPair, type ZmqTransportOptions,
} from '../../lib/transport/zmq.js';
import { pollingEvery, timed } from './fixtures/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/zmq-node.ts', import.meta.url));

/** Pings quiet enough never to fire during a test, so frame counts are exact. */
const QUIET = { interval: 60_000, timeout: 120_000 } as const;
/** Pings fast enough to see a peer go down within ~1.5 s, slow enough not to flap on a loaded machine. */
const FAST = { interval: 250, timeout: 1000 } as const;
/** Scheduling slack allowed on top of a protocol bound (two loaded cores, child processes). */
const SLACK = 400;

// --- helpers ------------------------------------------------------------------------------------------

/** Polls every 10 ms: several tests measure when a peer was seen down or a frame arrived. */
const until = pollingEvery(10);

interface Seen {
  readonly from: string;
  readonly inc: number;
  readonly messages: readonly Message[];
}
interface LiveChange {
  readonly peer: string;
  readonly up: boolean;
  readonly at: number;
}
interface Node {
  readonly t: ZmqTransport;
  readonly frames: Seen[];
  readonly live: LiveChange[];
}

const clock = new SystemClock();
const nodes: Node[] = [];

async function startNode(options: ZmqTransportOptions): Promise<Node> {
  const n: Node = { t: new ZmqTransport({ clock }, options), frames: [], live: [] };
  nodes.push(n);
  await n.t.start(
    (from, inc, messages) => n.frames.push({ from, inc, messages }),
    (peer, up) => n.live.push({ peer, up, at: performance.now() }),
  );
  return n;
}

/** Stops every transport a test started (and only those). */
async function stopNodes(): Promise<void> {
  for (const n of nodes.splice(0)) await n.t.stop();
}

/** Sends `hello` from a to b until one arrives (a DEALER with immediate:true drops until connected). */
async function link(a: Node, b: Node): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!b.frames.some((f) => f.from === a.t.id)) {
    if (performance.now() > deadline) throw new Error(`no link ${a.t.id} -> ${b.t.id}`);
    a.t.send(b.t.id, { type: 'hello', rid: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Let hellos still in flight land, so later counts start from a quiet link.
  await until(() => b.t.stats().framesReceived === a.t.stats().framesSent, 2000, 'quiet link');
}

function frameBytes(sender: string, messages: readonly Message[]): Buffer {
  return encodeFrame({ version: PROTOCOL_VERSION, sender, inc: 1, messages });
}

function ipcPath(tag: string): string {
  return join(tmpdir(), `pes-zmq-${process.pid}-${tag}.sock`);
}

/** A raw DEALER (no pes code), as a misbehaving or hostile peer would use. */
function rawDealer(routingId: string, endpoint: string, curve?: { key: CurveKeyPair; server: string }): zmq.Dealer {
  const d = new zmq.Dealer({
    routingId,
    linger: 0,
    ...(curve === undefined ? {} : {
      curvePublicKey: curve.key.publicKey, curveSecretKey: curve.key.secretKey, curveServerKey: curve.server,
    }),
  });
  d.connect(endpoint);
  return d;
}

interface Child {
  readonly proc: ChildProcess;
  readonly events: Record<string, unknown>[];
  exitedAt: number | undefined;
  command(cmd: Record<string, unknown>): void;
  waitFor(pred: (e: Record<string, unknown>) => boolean, ms: number, what: string): Promise<Record<string, unknown>>;
}

const children: Child[] = [];

/** Spawns the fixture: a ZmqTransport in its own process, talking JSON lines. */
function spawnNode(config: Record<string, unknown>): Child {
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', FIXTURE, JSON.stringify(config)], {
    cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'],
  });
  const child: Child = {
    proc,
    events: [],
    exitedAt: undefined,
    command: (cmd) => proc.stdin?.write(`${JSON.stringify(cmd)}\n`),
    waitFor: async (pred, ms, what) => {
      await until(() => child.events.some(pred), ms, what);
      const found = child.events.find(pred);
      if (found === undefined) throw new Error(what);
      return found;
    },
  };
  let buffered = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    buffered += chunk;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      if (line.trim() !== '') child.events.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  proc.on('exit', () => {
    child.exitedAt = performance.now();
  });
  children.push(child);
  return child;
}

/** Kills, by pid, every child a test spawned that is still running (SIGKILL works on a stopped one too). */
function killChildren(): void {
  for (const c of children.splice(0)) {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null || c.proc.pid === undefined) continue;
    try {
      process.kill(c.proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function cleanup(): Promise<void> {
  killChildren();
  await stopNodes();
}

// --- endpoints and framing ----------------------------------------------------------------------------

test('zmq endpoint: tcp port 0 -> resolved to the bound loopback port after start', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: QUIET });
    const m = /^tcp:\/\/127\.0\.0\.1:(\d+)$/.exec(a.t.endpoint);
    assert.ok(m, a.t.endpoint);
    assert.ok(Number(m[1]) > 0);
    const b = new ZmqTransport({ clock }, { id: 'b' });
    assert.is(b.endpoint, 'tcp://127.0.0.1:0'); // the default, until started
  } finally {
    await cleanup();
  }
}));

test('zmq endpoint: ipc -> frames delivered', timed(5000, async () => {
  const pa = ipcPath('a');
  const pb = ipcPath('b');
  try {
    const a = await startNode({ id: 'a', endpoint: `ipc://${pa}`, ping: QUIET });
    const b = await startNode({ id: 'b', endpoint: `ipc://${pb}`, ping: QUIET });
    assert.is(b.t.endpoint, `ipc://${pb}`);
    a.t.addPeer({ id: 'b', endpoint: b.t.endpoint });
    await link(a, b);
    assert.equal(b.frames[0]?.messages, [{ type: 'hello', rid: 1 }]);
    assert.is(b.frames[0]?.inc, a.t.incarnation);
  } finally {
    await cleanup();
    rmSync(pa, { force: true });
    rmSync(pb, { force: true });
  }
}));

test('zmq batching: N sends in one turn -> one frame with N messages in order', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: QUIET });
    const b = await startNode({ id: 'b', ping: QUIET });
    a.t.addPeer({ id: 'b', endpoint: b.t.endpoint });
    await link(a, b);
    const sentBefore = a.t.stats();
    const recvBefore = b.t.stats();
    const seenBefore = b.frames.length;
    const N = 50;
    for (let i = 1; i <= N; i++) a.t.send('b', { type: 'hello', rid: i });
    await until(() => b.frames.length > seenBefore, 2000, 'the batch');
    const sent = a.t.stats();
    const recv = b.t.stats();
    assert.is(sent.framesSent - sentBefore.framesSent, 1);
    assert.is(sent.messagesSent - sentBefore.messagesSent, N);
    assert.is(recv.framesReceived - recvBefore.framesReceived, 1);
    assert.is(recv.messagesReceived - recvBefore.messagesReceived, N);
    const batch = b.frames[seenBefore];
    assert.is(batch?.from, 'a');
    assert.equal(batch?.messages.map((m) => (m.type === 'hello' ? m.rid : -1)), Array.from({ length: N }, (_, i) => i + 1));
  } finally {
    await cleanup();
  }
}));

test('zmq lazy: lazy sends wait for the next eager send to the same peer and go first in its frame; alone they go within a few ms', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: QUIET });
    const b = await startNode({ id: 'b', ping: QUIET });
    a.t.addPeer({ id: 'b', endpoint: b.t.endpoint });
    await link(a, b);
    const seenBefore = b.frames.length;
    const framesBefore = a.t.stats().framesSent;
    a.t.send('b', { type: 'hello', rid: 1 }, true);
    a.t.send('b', { type: 'hello', rid: 2 }, true);
    await new Promise((resolve) => setImmediate(resolve));
    a.t.send('b', { type: 'hello', rid: 3 });
    await until(() => b.frames.length > seenBefore, 2000, 'the frame');
    assert.is(a.t.stats().framesSent - framesBefore, 1, 'one frame for the two lazy messages and the eager one');
    assert.equal(b.frames[seenBefore]?.messages.map((m) => (m.type === 'hello' ? m.rid : -1)), [1, 2, 3]);
    // Alone, a lazy message still leaves soon.
    const t0 = performance.now();
    a.t.send('b', { type: 'hello', rid: 4 }, true);
    await until(() => b.frames.length > seenBefore + 1, 2000, 'the lazy message alone');
    assert.equal(b.frames[seenBefore + 1]?.messages.map((m) => (m.type === 'hello' ? m.rid : -1)), [4]);
    assert.ok(performance.now() - t0 < 1000, 'not held indefinitely');
  } finally {
    await cleanup();
  }
}));

test('zmq send: to itself -> delivered through the codec, counted both ways', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: QUIET });
    a.t.send('a', { type: 'hello', rid: 7 });
    a.t.send('a', { type: 'hello', rid: 8 });
    await until(() => a.frames.length === 1, 1000, 'self delivery');
    assert.equal(a.frames[0]?.messages, [{ type: 'hello', rid: 7 }, { type: 'hello', rid: 8 }]);
    assert.is(a.t.stats().framesSent, 1);
    assert.is(a.t.stats().framesReceived, 1);
    assert.ok(a.t.reachable('a'));
  } finally {
    await cleanup();
  }
}));

test('zmq send: unknown or removed peer -> dropped and counted, never throws', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: QUIET });
    a.t.send('nobody', { type: 'hello', rid: 1 });
    a.t.addPeer({ id: 'b', endpoint: 'tcp://127.0.0.1:1' });
    a.t.removePeer('b');
    a.t.send('b', { type: 'hello', rid: 2 });
    a.t.send('b', { type: 'hello', rid: 3 });
    await until(() => a.t.stats().dropped === 3, 1000, 'drops counted');
    assert.is(a.t.stats().framesSent, 0);
  } finally {
    await cleanup();
  }
}));

test('zmq send: first message right after addPeer -> delivered once the connection is up', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: QUIET });
    const b = await startNode({ id: 'b', ping: QUIET });
    a.t.addPeer({ id: 'b', endpoint: b.t.endpoint });
    a.t.send('b', { type: 'hello', rid: 1 }); // no connection exists yet: it must wait, not be dropped
    await until(() => b.frames.length === 1, 3000, 'the first frame');
    assert.equal(b.frames[0]?.messages, [{ type: 'hello', rid: 1 }]);
    assert.is(a.t.stats().dropped, 0);
  } finally {
    await cleanup();
  }
}));

test('zmq send: peer never reachable -> queue bounded, the rest dropped after ping.timeout', timed(5000, async () => {
  try {
    // Port 1 on loopback: nothing listens, the DEALER never completes a connection.
    const a = await startNode({ id: 'a', ping: FAST, limits: { queueFrames: 4 } });
    a.t.addPeer({ id: 'b', endpoint: 'tcp://127.0.0.1:1' });
    for (let i = 0; i < 10; i++) {
      a.t.send('b', { type: 'hello', rid: i });
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(a.t.stats().dropped >= 6); // beyond the 4 queued frames: dropped at once
    await until(() => a.t.stats().dropped >= 10, FAST.timeout + FAST.interval + SLACK, 'queued frames expire');
    assert.is(a.t.stats().framesSent, 0);
  } finally {
    await cleanup();
  }
}));

// --- hostile input -----------------------------------------------------------------------------------

test('zmq receive: undecodable bytes from a raw DEALER -> badFrames counted, never delivered', timed(5000, async () => {
  let raw: zmq.Dealer | undefined;
  try {
    const b = await startNode({ id: 'b', ping: QUIET });
    raw = rawDealer('rogue', b.t.endpoint);
    await raw.send(Buffer.from([0xc1, 0xff, 0x00, 0x13])); // 0xc1 is never valid msgpack
    await raw.send(frameBytes('rogue', [{ type: 'hello', rid: -1 } as unknown as Message])); // fails validation
    await raw.send(['two', 'parts']); // not one frame per ZeroMQ message
    // Same connection, so in order: once this valid frame arrives, the bad ones have been judged.
    await raw.send(frameBytes('rogue', [{ type: 'hello', rid: 42 }]));
    await until(() => b.frames.length === 1, 2000, 'the valid frame');
    assert.is(b.t.stats().badFrames, 3);
    assert.is(b.t.stats().framesReceived, 1);
    assert.equal(b.frames[0]?.messages, [{ type: 'hello', rid: 42 }]);
  } finally {
    raw?.close();
    await cleanup();
  }
}));

test('zmq receive: frame sender differs from the routing id -> badFrames counted, never delivered', timed(5000, async () => {
  let raw: zmq.Dealer | undefined;
  try {
    const b = await startNode({ id: 'b', ping: QUIET });
    raw = rawDealer('mallory', b.t.endpoint);
    await raw.send(frameBytes('a', [{ type: 'hello', rid: 1 }])); // claims to be node a
    await raw.send(frameBytes('mallory', [{ type: 'hello', rid: 2 }]));
    await until(() => b.frames.length === 1, 2000, 'the honest frame');
    assert.is(b.t.stats().badFrames, 1);
    assert.is(b.frames[0]?.from, 'mallory');
    assert.not.ok(b.frames.some((f) => f.from === 'a'));
  } finally {
    raw?.close();
    await cleanup();
  }
}));

// --- liveness ----------------------------------------------------------------------------------------

test('zmq liveness: pings between peers -> up reported, ping/pong never delivered', timed(8000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: FAST });
    const b = await startNode({ id: 'b', ping: FAST });
    assert.not.ok(a.t.reachable('b')); // unknown peers start unreachable
    a.t.addPeer({ id: 'b', endpoint: b.t.endpoint });
    b.t.addPeer({ id: 'a', endpoint: a.t.endpoint });
    await until(() => a.t.reachable('b') && b.t.reachable('a'), 3000, 'both up');
    await until(() => a.t.stats().framesReceived >= 3, 3000, 'a few pings');
    assert.equal([a.live.at(-1)?.peer, a.live.at(-1)?.up], ['b', true]);
    assert.is(a.frames.length, 0);
    assert.is(b.frames.length, 0);
  } finally {
    await cleanup();
  }
}));

/** Node 'a' here and node 'c' in a child process, each a peer of the other, with 'a' seeing 'c' up. */
async function nodeWithChild(): Promise<{ a: Node; child: Child; pid: number }> {
  const a = await startNode({ id: 'a', ping: FAST });
  const child = spawnNode({ id: 'c', ping: FAST, peers: [{ id: 'a', endpoint: a.t.endpoint }] });
  const ready = await child.waitFor((e) => e['ev'] === 'ready', 30_000, 'child ready');
  a.t.addPeer({ id: 'c', endpoint: String(ready['endpoint']) });
  await until(() => a.t.reachable('c'), 3000, 'child up');
  const pid = child.proc.pid;
  if (pid === undefined) throw new Error('no pid');
  return { a, child, pid };
}

/** 'a' reports 'c' down, and no later than ping timeout + interval (+ slack) after `since`. */
async function expectDownInTime(a: Node, since: number, what: string): Promise<void> {
  const bound = FAST.timeout + FAST.interval + SLACK;
  await until(() => !a.t.reachable('c'), bound, what);
  const down = a.live.at(-1);
  assert.equal([down?.peer, down?.up], ['c', false]);
  assert.ok((down?.at ?? Infinity) - since <= bound);
}

test('zmq liveness: peer process SIGSTOPped -> down within timeout + interval; SIGCONT -> up', timed(45_000, async () => {
  try {
    const { a, child, pid } = await nodeWithChild();
    await child.waitFor((e) => e['ev'] === 'live' && e['peer'] === 'a' && e['up'] === true, 3000, 'child sees a');
    const mark = a.live.length;

    process.kill(pid, 'SIGSTOP');
    await expectDownInTime(a, performance.now(), 'down after SIGSTOP');

    process.kill(pid, 'SIGCONT');
    await until(() => a.t.reachable('c'), 3000, 'up after SIGCONT');
    assert.equal(a.live.slice(mark).map((l) => [l.peer, l.up]), [['c', false], ['c', true]]);
    assert.is(a.frames.length, 0); // the child sent only pings and pongs
  } finally {
    await cleanup();
  }
}));

test('zmq liveness: peer process killed -> down within timeout + interval', timed(45_000, async () => {
  try {
    const { a, pid } = await nodeWithChild();
    process.kill(pid, 'SIGKILL');
    await expectDownInTime(a, performance.now(), 'down after kill');
  } finally {
    await cleanup();
  }
}));

test('zmq liveness: peer that never answers -> reported down once, after the timeout', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: FAST });
    const addedAt = performance.now();
    a.t.addPeer({ id: 'ghost', endpoint: 'tcp://127.0.0.1:1' });
    await until(() => a.live.length > 0, FAST.timeout + FAST.interval + SLACK, 'a report');
    assert.equal(a.live.map((l) => [l.peer, l.up]), [['ghost', false]]);
    assert.ok((a.live[0]?.at ?? 0) - addedAt >= FAST.timeout - 50);
    assert.not.ok(a.t.reachable('ghost'));
  } finally {
    await cleanup();
  }
}));

test('zmq liveness: own event loop blocked past the timeout -> no peer reported down', timed(8000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: FAST });
    const b = await startNode({ id: 'b', ping: FAST });
    a.t.addPeer({ id: 'b', endpoint: b.t.endpoint });
    b.t.addPeer({ id: 'a', endpoint: a.t.endpoint });
    await until(() => a.t.reachable('b') && b.t.reachable('a'), 3000, 'both up');
    const marks = [a.live.length, b.live.length] as const;
    // Block this whole process (both nodes) for well over the timeout, as a long GC or sync work would.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, FAST.timeout * 2.5);
    // Each node pings and pongs about once an interval: wait for three intervals' worth of traffic.
    const sent = a.t.stats().messagesSent;
    await until(() => a.t.stats().messagesSent >= sent + 6, 3000, 'traffic after the block');
    assert.equal(a.live.slice(marks[0]), []);
    assert.equal(b.live.slice(marks[1]), []);
  } finally {
    await cleanup();
  }
}));

// --- CURVE -------------------------------------------------------------------------------------------

const keys = { a: generateCurveKeyPair(), b: generateCurveKeyPair(), rogue: generateCurveKeyPair() };
const allow = [keys.a.publicKey, keys.b.publicKey];

async function curvePair(): Promise<[Node, Node]> {
  const a = await startNode({ id: 'a', ping: QUIET, curve: { ...keys.a, allow } });
  const b = await startNode({ id: 'b', ping: QUIET, curve: { ...keys.b, allow } });
  a.t.addPeer({ id: 'b', endpoint: b.t.endpoint, publicKey: keys.b.publicKey });
  b.t.addPeer({ id: 'a', endpoint: a.t.endpoint, publicKey: keys.a.publicKey });
  return [a, b];
}

test('zmq curve: two allow-listed nodes -> frames delivered both ways', timed(8000, async () => {
  try {
    const [a, b] = await curvePair();
    await link(a, b);
    await link(b, a);
    assert.is(a.t.stats().handshakeFailures, 0);
    assert.is(b.t.stats().handshakeFailures, 0);
  } finally {
    await cleanup();
  }
}));

test('zmq curve: DEALER with a key not in the allow-list -> refused, nothing delivered', timed(8000, async () => {
  let raw: zmq.Dealer | undefined;
  try {
    const [a, b] = await curvePair();
    // Knows b's public key and claims to be node a, but holds an unknown key.
    raw = rawDealer('a', b.t.endpoint, { key: keys.rogue, server: keys.b.publicKey });
    void raw.send(frameBytes('a', [{ type: 'hello', rid: 666 }])).catch(() => undefined);
    await until(() => b.t.stats().handshakeFailures >= 1, 3000, 'refused handshake');
    await link(a, b); // the inbox still serves the real a
    assert.not.ok(b.frames.some((f) => f.messages.some((m) => m.type === 'hello' && m.rid === 666)));
    assert.is(b.t.stats().badFrames, 0);
  } finally {
    raw?.close();
    await cleanup();
  }
}));

test('zmq curve: DEALER without CURVE -> refused, nothing delivered', timed(8000, async () => {
  let raw: zmq.Dealer | undefined;
  try {
    const [a, b] = await curvePair();
    raw = rawDealer('a', b.t.endpoint);
    void raw.send(frameBytes('a', [{ type: 'hello', rid: 666 }])).catch(() => undefined);
    await until(() => b.t.stats().handshakeFailures >= 1, 3000, 'refused handshake');
    await link(a, b);
    assert.not.ok(b.frames.some((f) => f.messages.some((m) => m.type === 'hello' && m.rid === 666)));
  } finally {
    raw?.close();
    await cleanup();
  }
}));

test('zmq curve: addPeer without a public key -> InvalidArgumentError naming publicKey', timed(5000, async () => {
  try {
    const a = await startNode({ id: 'a', ping: QUIET, curve: { ...keys.a, allow } });
    try {
      a.t.addPeer({ id: 'b', endpoint: 'tcp://127.0.0.1:1' });
      assert.unreachable('addPeer accepted a peer without a key');
    } catch (err) {
      assert.instance(err, InvalidArgumentError);
      assert.is((err as InvalidArgumentError).argument, 'publicKey');
    }
  } finally {
    await cleanup();
  }
}));

// --- options and lifecycle ---------------------------------------------------------------------------

test('zmq options: bad id, endpoint, ping or key -> InvalidArgumentError naming the option', () => {
  const cases: [ZmqTransportOptions, string][] = [
    [{ id: '' }, 'id'],
    [{ id: 'x'.repeat(256) }, 'id'],
    [{ id: 'a', endpoint: 'udp://127.0.0.1:0' }, 'endpoint'],
    [{ id: 'a', ping: { interval: 1000, timeout: 500 } }, 'ping'],
    [{ id: 'a', limits: { queueFrames: 0 } }, 'limits.queueFrames'],
    [{ id: 'a', curve: { publicKey: 'short', secretKey: keys.a.secretKey, allow: [] } }, 'curve'],
  ];
  for (const [options, argument] of cases) {
    try {
      new ZmqTransport({ clock }, options);
      assert.unreachable(`accepted ${argument}`);
    } catch (err) {
      assert.instance(err, InvalidArgumentError);
      assert.is((err as InvalidArgumentError).argument, argument);
    }
  }
});

test('zmq stop: after running with peers -> no pending timers, idempotent, start again rejects', timed(5000, async () => {
  const own = new SystemClock();
  const t = new ZmqTransport({ clock: own }, { id: 'a', ping: FAST });
  const before = own.pendingTimers();
  await t.start(() => undefined, () => undefined);
  t.addPeer({ id: 'b', endpoint: 'tcp://127.0.0.1:1' });
  t.send('b', { type: 'hello', rid: 1 });
  assert.ok(own.pendingTimers() > before);
  await t.stop();
  await t.stop();
  assert.is(own.pendingTimers(), before);
  assert.not.ok(t.reachable('b'));
  t.send('b', { type: 'hello', rid: 2 }); // ignored, never throws
  try {
    await t.start(() => undefined, () => undefined);
    assert.unreachable('restarted');
  } catch (err) {
    assert.instance(err, StoppedError);
  }
}));

test('zmq stop: child queued frames to a SIGSTOPped peer -> exits within 1 s of stop', timed(80_000, async () => {
  try {
    const dead = spawnNode({ id: 'dead', ping: FAST });
    const deadReady = await dead.waitFor((e) => e['ev'] === 'ready', 30_000, 'peer ready');
    // A long timeout, so ZMTP heartbeats cannot cut the dead link (and discard its queue) before the exit.
    const patient = { interval: FAST.interval, timeout: 10_000 };
    const sender = spawnNode({ id: 'sender', ping: patient, peers: [{ id: 'dead', endpoint: deadReady['endpoint'] }] });
    const senderReady = await sender.waitFor((e) => e['ev'] === 'ready', 30_000, 'sender ready');
    dead.command({ cmd: 'addPeer', peer: { id: 'sender', endpoint: senderReady['endpoint'] } });
    // Both directions connected: the sender's frames now go into a live TCP connection.
    await dead.waitFor((e) => e['ev'] === 'live' && e['peer'] === 'sender' && e['up'] === true, 5000, 'peer sees sender');
    await sender.waitFor((e) => e['ev'] === 'live' && e['peer'] === 'dead' && e['up'] === true, 5000, 'sender sees peer');
    const pid = dead.proc.pid;
    if (pid === undefined) throw new Error('no pid');
    process.kill(pid, 'SIGSTOP');

    // 16 x 1 MB: far more than loopback socket buffers hold, so most of it waits in libzmq's queue.
    sender.command({ cmd: 'burst', peer: 'dead', frames: 16, bytes: 1_000_000 });
    const burst = await sender.waitFor((e) => e['ev'] === 'burst', 5000, 'burst queued');
    assert.ok((burst['stats'] as { framesSent: number }).framesSent >= 1);

    const stopAt = performance.now();
    sender.command({ cmd: 'stop' });
    await sender.waitFor((e) => e['ev'] === 'stopped', 2000, 'stopped');
    await until(() => sender.exitedAt !== undefined, 1000, 'sender exit');
    assert.ok((sender.exitedAt ?? Infinity) - stopAt <= 1000);
    assert.is(sender.proc.exitCode, 0);
  } finally {
    await cleanup();
  }
}));

test.run();
