/**
 * Joining through a seed whose answer never comes back: the change that added the node took effect
 * (the others count it in their majorities), so the joiner must take the new list from the change's
 * install or from gossip and start voting, not wait for an answer from a seed that died just after.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PesNode } from '../../lib/node.js';
import { decodeFrame, encodeFrame } from '../../lib/protocol/codec.js';
import { PROTOCOL_VERSION, type MemberInfo } from '../../lib/protocol/messages.js';
import { createTestCluster, ManualClock, MemoryNetwork, MemoryTransport } from '../../lib/testing.js';
import { nodeAt, withCluster } from './cluster-helpers.js';

const HB = 1000;

test('join: the seed adds the node and dies before answering -> the joiner takes the list it is in, votes, and the rest elect with it', async () => {
  const c = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  try {
    const [n1, n2] = [nodeAt(c, 0), nodeAt(c, 1)];
    // Lose every join answer n1 sends n4.
    let answersLost = 0;
    const deliver = c.net.deliver.bind(c.net);
    c.net.deliver = (from, to, bytes) => {
      if (from === 'n1' && to === 'n4') {
        const d = decodeFrame(bytes);
        if (d.ok && d.frame.messages.some((m) => m.type === 'joinR')) {
          answersLost++;
          return true;
        }
      }
      return deliver(from, to, bytes);
    };
    const { node: n4, started: joining } = c.add(0);
    let started = false;
    const starting = joining.then(() => { started = true; });
    for (let waited = 0; answersLost === 0; waited += 1) {
      if (waited > 10_000) assert.unreachable('n1 never answered the join');
      await c.advance(1);
    }
    await n1.crash();
    assert.equal([...n2.nodes()].sort(), ['n1', 'n2', 'n3', 'n4'], 'the change took effect');
    await c.run(starting, 3 * HB);
    assert.ok(started);
    assert.equal([...n4.nodes()].sort(), ['n1', 'n2', 'n3', 'n4']);
    // n1 is gone: a majority of four is n2, n3 and n4, so nothing is granted until n4 votes.
    const reg = await c.run(n2.register('after-join', n2.spawn()), 10 * HB);
    assert.ok(n4.voting);
    assert.is(reg.valid, true);
  } finally {
    await c.stop();
  }
  // The unanswered join request was called off with the join: no timer of it is left running.
  await c.advance(HB);
  assert.is(c.clock.pendingTimers(), 0);
});

test('join: only a newer list naming this node at its own endpoint counts as joined (not one from its previous life)', () =>
  withCluster({ nodes: 3, settings: { heartbeat: HB } }, async (c) => {
    // Nothing the cluster sends reaches n4: only the lists handed to it below can make it a member.
    const deliver = c.net.deliver.bind(c.net);
    c.net.deliver = (from, to, bytes) => (to === 'n4' ? true : deliver(from, to, bytes));
    const { node: n4, started: joining } = c.add(0);
    let started = false;
    void joining.then(() => { started = true; }, () => {});
    await c.advance(HB);
    const members = (endpoint: string): MemberInfo[] => [...['n1', 'n2', 'n3'].map((id) => ({ id, endpoint: `memory://${id}` })), { id: 'n4', endpoint }];
    const gossip = (version: number, endpoint: string): Buffer => encodeFrame({
      version: PROTOCOL_VERSION, sender: 'n2', inc: nodeAt(c, 1).incarnation,
      messages: [{ type: 'gossip', members: { version, members: members(endpoint) }, config: [] }],
    });
    n4.injectFrame(gossip(50, 'memory://n4-before-restart'));
    await c.advance(HB);
    assert.is(n4.nodes().length, 4, 'the list was taken');
    assert.not.ok(started, 'but it names n4 at another endpoint');
    n4.injectFrame(gossip(51, 'memory://n4'));
    await c.advance(10);
    assert.ok(started, 'a list naming n4 as it is');
  }));

test('join through seeds: a list naming this node during the pause between tries ends the join at once, leaving no timer', async () => {
  const clock = new ManualClock();
  const net = new MemoryNetwork(clock);
  // The seed does not answer at all: every try times out after the node's call timeout (100 ms), then a pause.
  const n4 = new PesNode({ id: 'n4', transport: new MemoryTransport(net, 'n4', 1), clock, seeds: ['memory://n1'], timeout: 100, phaseTimeout: 400, settings: { heartbeat: HB } });
  let startedAt: number | undefined;
  void n4.start().then(() => { startedAt = clock.now(); });
  await clock.advance(150);
  assert.is(startedAt, undefined, 'first try timed out, pausing');
  n4.injectFrame(encodeFrame({
    version: PROTOCOL_VERSION, sender: 'n2', inc: 1,
    messages: [{ type: 'gossip', members: { version: 7, members: ['n1', 'n2', 'n4'].map((id) => ({ id, endpoint: `memory://${id}` })) }, config: [] }],
  }));
  await clock.advance(1);
  assert.ok(startedAt !== undefined && startedAt <= 151, 'joined by the list, not at the end of the pause (500)');
  let stopped = false;
  void n4.stop().then(() => { stopped = true; });
  for (let waited = 0; !stopped; waited += 10) {
    if (waited > 5000) assert.unreachable('stop did not finish');
    await clock.advance(10);
  }
  assert.is(clock.pendingTimers(), 0, 'neither the pause nor a request timer is left');
});

test.run();
