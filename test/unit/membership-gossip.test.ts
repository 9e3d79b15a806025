/**
 * Member lists by gossip from a node outside this node's list: a node that missed the changes which
 * added that node adopts the newer list only when it names both of them (a restarted node that first
 * heard a lagging peer would otherwise ignore every node the later changes added).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame } from '../../lib/protocol/codec.js';
import { PROTOCOL_VERSION, type MemberInfo } from '../../lib/protocol/messages.js';
import { nodeAt, withCluster } from './cluster-helpers.js';

const listed = (ids: readonly string[]): MemberInfo[] => ids.map((id) => ({ id, endpoint: `memory://${id}` }));
const gossipFrom = (sender: string, version: number, ids: readonly string[]): Buffer => encodeFrame({
  version: PROTOCOL_VERSION, sender, inc: 1,
  messages: [{ type: 'gossip', members: { version, members: listed(ids) }, config: [{ key: 'heartbeat', value: 5000, version: 99, by: sender }] }],
});

test('gossip from outside the list: a newer list naming the sender and this node is adopted; any other is not', () =>
  withCluster({ nodes: 3 }, async (c) => {
    const n1 = nodeAt(c, 0);
    const before = [...n1.nodes()];
    n1.injectFrame(gossipFrom('n9', 50, ['n9', 'n2', 'n3']));
    await c.advance(1);
    assert.equal([...n1.nodes()], before, 'a list without this node');
    n1.injectFrame(gossipFrom('n9', 50, ['n1', 'n2', 'n3']));
    await c.advance(1);
    assert.equal([...n1.nodes()], before, 'a list without its sender');
    n1.injectFrame(gossipFrom('n9', 50, ['n1', 'n2', 'n3', 'n9']));
    await c.advance(1);
    assert.equal([...n1.nodes()], ['n1', 'n2', 'n3', 'n9'], 'adopted');
    assert.is.not(n1.config.get('heartbeat'), 5000, 'its settings are not');
    n1.injectFrame(gossipFrom('n8', 40, ['n1', 'n8']));
    await c.advance(1);
    assert.equal([...n1.nodes()], ['n1', 'n2', 'n3', 'n9'], 'an older list is not');
  }));

test.run();
