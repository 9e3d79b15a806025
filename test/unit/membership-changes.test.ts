/**
 * MembershipChanges driven directly with a scripted request layer and a ManualClock: what a change
 * reads from the members decides whether it installs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/clock.js';
import { MembershipChanges } from '../../lib/cluster/changes.js';
import { Membership } from '../../lib/cluster/membership.js';
import { ConfigError } from '../../lib/errors.js';
import type { MemberList, Message } from '../../lib/protocol/messages.js';
import type { Owner } from '../../lib/owner.js';
import type { Registration } from '../../lib/registration.js';
import { scripted } from './scripted-rpc.js';

const PHASE = 100;
const list = (version: number, ids: readonly string[]): MemberList => ({ version, members: ids.map((id) => ({ id, endpoint: `memory://${id}` })) });

/** A change coordinated by `a`; `answer(to)` is what each member answers an mget with (undefined: silence). */
function rig(answer: (to: string) => { version: number; settled: boolean } | undefined): {
  clock: ManualClock; changes: MembershipChanges; sent: { to: string; msg: Message }[];
} {
  const clock = new ManualClock();
  const current = list(2, ['a', 'b', 'c', 'd']);
  const membership = new Membership('a', current);
  const { rpc, sent } = scripted((to, msg) => {
    if (msg.type === 'mget') {
      const a = answer(to);
      return a === undefined ? undefined
        : { type: 'mgetR', rid: msg.rid, members: a.version === 2 ? current : list(a.version, ['a', 'b', 'c', 'd', 'e']), settled: a.settled };
    }
    return msg.type === 'mset' ? { type: 'msetR', rid: msg.rid, version: msg.members.version } : undefined;
  });
  const changes = new MembershipChanges({
    clock, rpc, membership, phaseTimeout: PHASE, shards: 4,
    addPeer: () => {}, removePeer: () => {}, self: () => ({ id: 'a', endpoint: 'memory://a' }),
    spawn: () => ({ exit: () => {} }) as unknown as Owner,
    register: async () => ({ unregister: async () => {} }) as unknown as Registration,
    settled: () => true, settleWait: () => 20 * PHASE,
  });
  return { clock, changes, sent };
}

test('changes: a member answering "settled" for an older list does not count toward a settled majority of the current one', async () => {
  let cList = 1;
  const { clock, changes, sent } = rig((to) => {
    if (to === 'a' || to === 'b') return { version: 2, settled: true };
    if (to === 'c') return { version: cList, settled: true };
    return undefined; // d is down
  });
  let done = false;
  const change = changes.remove('d').then(() => { done = true; });
  await clock.advance(5 * PHASE);
  assert.not.ok(done);
  assert.is(sent.filter((s) => s.msg.type === 'mset').length, 0, 'nothing installed: only a and b are settled under list 2');
  cList = 2; // c adopts list 2 (and is settled under it)
  await clock.advance(5 * PHASE);
  await change;
  assert.ok(done);
  assert.ok(sent.some((s) => s.msg.type === 'mset'), 'installed once three of four are settled under list 2');
});

test('changes: a majority settled under the current list installs even when another member is not', async () => {
  const { clock, changes, sent } = rig((to) => (to === 'b' ? { version: 2, settled: false } : { version: 2, settled: true }));
  const change = changes.remove('d');
  await clock.advance(PHASE);
  await change;
  assert.ok(sent.some((s) => s.msg.type === 'mset'));
});

test('changes: members that never settle -> refused with ConfigError at the deadline, nothing installed', async () => {
  const { clock, changes, sent } = rig(() => ({ version: 2, settled: false }));
  let error: unknown;
  const change = changes.remove('d').catch((e: unknown) => { error = e; });
  await clock.advance(30 * PHASE);
  await change;
  assert.instance(error, ConfigError);
  assert.is(sent.filter((s) => s.msg.type === 'mset').length, 0);
});

test.run();
