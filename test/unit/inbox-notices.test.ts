/**
 * Grant notices ('own') are handled after the requests that arrived with them have been answered: a
 * notice rides first in a frame that also carries a request, and learning its value must not stand
 * between that request and its reply. Notices still take effect, in order, right after.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { settle } from '../../lib/clock.js';
import type { Message, ReadReply } from '../../lib/protocol/messages.js';
import { entryOf, injectAs, nodeAt, tapMessages, withCluster } from './cluster-helpers.js';

test('inbox: a read in the same frame as a notice is answered before the notice is learned; the notice is learned right after', () =>
  withCluster({ nodes: 3, settings: { heartbeat: 1000 } }, async (c) => {
    const [n1, n2, n3] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2)];
    await c.run(n1.register('x', n1.spawn()));
    const held = entryOf(n1, 'x');
    if (held?.value == null || held.ballot === undefined) throw new Error('x is not held on n1');
    const replies = tapMessages(c, n3.id, n2.id);
    const frame: Message[] = [
      { type: 'own', name: 'y', b: held.ballot, v: held.value, seq: 1 },
      { type: 'read', rid: 77, name: 'y' },
      { type: 'own', name: 'z', b: held.ballot, v: held.value, seq: 1 },
    ];
    assert.is(entryOf(n3, 'y'), undefined);
    injectAs(n3, n2, frame);
    await settle();
    await c.advance(1);
    const reply = replies.find((m): m is ReadReply => m.type === 'readR' && m.rid === 77);
    assert.ok(reply !== undefined, 'n3 answered the read');
    assert.is(reply.ok, true);
    assert.is(reply.entry?.value ?? undefined, undefined, 'answered before the notice was learned');
    assert.equal(entryOf(n3, 'y')?.value?.owner, held.value.owner, 'then learned');
    assert.equal(entryOf(n3, 'z')?.value?.owner, held.value.owner);
  }));

test.run();
