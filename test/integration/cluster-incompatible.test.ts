// timeout: 180
/**
 * Nodes that cannot form one cluster fail clearly, not silently: a joiner with another shard count is
 * refused at once with a ConfigError naming 'shards'; frames of another protocol version are counted as
 * bad and change nothing on a member; a joiner that speaks another version fails its start with a
 * TimeoutError once its joinTimeout has passed, instead of hanging.
 *
 * Real ZeroMQ sockets on tcp loopback, nodes in this process; every test bounded by `timed`, every node
 * stopped and every raw socket closed in a finally.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as zmq from 'zeromq';
import { ConfigError, Pes, TimeoutError, type PesNode } from '../../lib/index.js';
import { decodeFrame, encodeFrame } from '../../lib/protocol/codec.js';
import { PROTOCOL_VERSION, type Message } from '../../lib/protocol/messages.js';
import { freePorts } from './fixtures/cluster-harness.js';
import { OtherVersionTransport } from './fixtures/cluster-v2-transport.js';
import { timed, until } from './fixtures/wait.js';

const HB = 1000;
const settings = { heartbeat: HB };
const OTHER_VERSION = PROTOCOL_VERSION + 1;

/** A two-member cluster on loopback (m1 bound on a known port, m2 joined through it), voting. */
async function twoMembers(started: PesNode[]): Promise<{ m1: PesNode; m2: PesNode; seed: string }> {
  const [port] = await freePorts(1);
  const seed = `tcp://127.0.0.1:${port}`;
  const m1 = await Pes.start({ id: 'm1', endpoint: seed, settings });
  started.push(m1);
  const m2 = await Pes.start({ id: 'm2', endpoint: 'tcp://127.0.0.1:0', seeds: [seed], settings, joinTimeout: 10_000 });
  started.push(m2);
  await until(() => [m1, m2].every((n) => n.voting && n.nodes().length === 2 && n.liveNodes().length === 2), 10_000, 'two voting members');
  return { m1, m2, seed };
}

async function stopAll(started: PesNode[]): Promise<void> {
  for (const n of started.splice(0)) await n.stop();
}

/** What a member's state is, as far as a frame could change it. */
function snapshot(n: PesNode): unknown {
  const s = n.stat();
  return {
    members: n.nodes(), voting: s.voting, heldNames: s.heldNames, activeGuards: s.activeGuards,
    config: n.config.all(), acceptor: s.acceptor,
  };
}

test('incompatible: a joiner with another shard count -> its Pes.start rejects at once with ConfigError key shards; the cluster is unchanged',
  timed(20_000, async () => {
    const started: PesNode[] = [];
    try {
      const { m1, m2, seed } = await twoMembers(started);
      for (const shards of [8, 17]) {
        const t0 = performance.now();
        let error: unknown;
        try {
          started.push(await Pes.start({ id: `j${shards}`, endpoint: 'tcp://127.0.0.1:0', seeds: [seed], shards, joinTimeout: 15_000 }));
        } catch (e) {
          error = e;
        }
        const elapsed = performance.now() - t0;
        assert.instance(error, ConfigError, `got ${String((error as Error)?.name)}: ${String((error as Error)?.message)}`);
        assert.is((error as ConfigError).key, 'shards');
        assert.ok(elapsed < 3000, `refused after ${elapsed.toFixed(0)} ms, not at the join timeout`);
      }
      for (const m of [m1, m2]) assert.equal([...m.nodes()].sort(), ['m1', 'm2']);
      // The cluster still works.
      const owner = m2.spawn();
      await m2.register('after-refusal', owner);
      assert.equal(await m1.whereis('after-refusal'), owner.ref);
    } finally {
      await stopAll(started);
    }
  }));

test('incompatible: frames of another protocol version from a raw DEALER -> counted in badFrames, the member\'s state does not change',
  timed(20_000, async () => {
    const started: PesNode[] = [];
    let raw: zmq.Dealer | undefined;
    try {
      const { m1, m2, seed } = await twoMembers(started);
      const owner = m1.spawn();
      const reg = await m1.register('kept', owner);
      // Messages that would change state if read: a join, gossip of a newer member list and config, a
      // prepare and a commit (from a non-member: refused and counted as rejected if they got through).
      const b = { t: reg.token + 1000, g: 'rogue/1/1' };
      const payloads: Message[][] = [
        [{ type: 'join', rid: 1, id: 'rogue', endpoint: 'tcp://127.0.0.1:1', shards: 16 }],
        [{ type: 'gossip', members: { version: 99, members: [{ id: 'rogue', endpoint: 'tcp://127.0.0.1:1' }] },
          config: [{ key: 'deleteLimit', value: 3, version: 99, by: 'rogue' }] }],
        [{ type: 'prep', rid: 2, name: 'kept', b, mode: 'free' },
          { type: 'com', rid: 3, name: 'kept', b, v: { owner: { node: 'rogue', inc: 1, id: 1 }, gnode: 'rogue', hb: HB }, seq: 1 }],
        [{ type: 'hello', rid: 4 }, { type: 'status', rid: 5 }],
      ];
      const frames = payloads.map((messages) => encodeFrame({ version: OTHER_VERSION, sender: 'rogue', inc: 1, messages }));
      // Well-formed in every other respect: the same frames with this release's version decode.
      for (const messages of payloads) assert.ok(decodeFrame(encodeFrame({ version: PROTOCOL_VERSION, sender: 'rogue', inc: 1, messages })).ok);
      for (const f of frames) assert.equal(decodeFrame(f), { ok: false, reason: 'version' });

      const before = { m1: snapshot(m1), m2: snapshot(m2), bad: m1.stat().transport.badFrames };
      raw = new zmq.Dealer({ routingId: 'rogue', linger: 0 });
      raw.connect(seed);
      for (const f of frames) await raw.send(f);
      await until(() => m1.stat().transport.badFrames >= before.bad + frames.length, 5000, 'every frame judged');
      assert.is(m1.stat().transport.badFrames, before.bad + frames.length);
      // Let a renewal round and gossip run both ways, so any change a frame had caused would show.
      const rounds = m1.stat().renewer.roundsAcked;
      const heard = m2.stat().transport.framesReceived;
      await until(() => m1.stat().renewer.roundsAcked >= rounds + 1 && m2.stat().transport.framesReceived >= heard + 3, 5000, 'a renewal and gossip');
      const rates = (x: unknown): unknown => ({ ...(x as Record<string, unknown>), acceptor: undefined });
      assert.equal(rates(snapshot(m1)), rates(before.m1));
      assert.equal(rates(snapshot(m2)), rates(before.m2));
      const a1 = m1.stat().acceptor;
      const a0 = (before.m1 as { acceptor: typeof a1 }).acceptor;
      assert.is(a1.entries, a0.entries);
      assert.is(a1.promises, a0.promises);
      assert.is(a1.rejected, a0.rejected, 'no request from the rogue reached the acceptor');
      assert.is(m1.config.get('deleteLimit'), m2.config.get('deleteLimit'));
      assert.ok(reg.valid);
      assert.is((await m2.lookup('kept'))?.token, reg.token);
    } finally {
      raw?.close();
      await stopAll(started);
    }
  }));

test('incompatible: a joiner speaking another protocol version -> its Pes.start rejects with TimeoutError after joinTimeout, not a hang; the seed counts its frames as bad',
  timed(30_000, async () => {
    const started: PesNode[] = [];
    try {
      const { m1, m2, seed } = await twoMembers(started);
      const bad = m1.stat().transport.badFrames;
      const joinTimeout = 2000;
      const transport = new OtherVersionTransport('v-next', 'tcp://127.0.0.1:0', OTHER_VERSION);
      const t0 = performance.now();
      let error: unknown;
      try {
        started.push(await Pes.start({ id: 'v-next', transport, seeds: [seed], settings, joinTimeout }));
      } catch (e) {
        error = e;
      }
      const elapsed = performance.now() - t0;
      console.log(`    joiner of another version: rejected after ${elapsed.toFixed(0)} ms (joinTimeout ${joinTimeout} ms)`);
      assert.instance(error, TimeoutError, `got ${String((error as Error)?.name)}: ${String((error as Error)?.message)}`);
      assert.is((error as TimeoutError).operation, 'join');
      assert.ok(elapsed >= joinTimeout - 50, `not before joinTimeout (${elapsed.toFixed(0)} ms)`);
      assert.ok(elapsed <= joinTimeout + 1500, `start() gives up about joinTimeout (${joinTimeout} ms) after it began, took ${elapsed.toFixed(0)} ms`);
      assert.ok(m1.stat().transport.badFrames > bad, 'the seed counted the joiner\'s frames as bad');
      assert.ok(transport.stats().framesSent > 0);
      for (const m of [m1, m2]) assert.equal([...m.nodes()].sort(), ['m1', 'm2']);
    } finally {
      await stopAll(started);
    }
  }));

test.run();
