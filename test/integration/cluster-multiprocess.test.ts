// timeout: 300
/**
 * Real clusters of 3 and 5 node processes on tcp loopback (fixtures/cluster-node.ts), driven over
 * stdin/stdout: one winner of a concurrent registration; failover after kill -9 of the owner's process
 * within 3 heartbeats and a margin; a SIGSTOPped owner outlived by its lease (the others elect a new
 * owner only after its lease deadline, and on SIGCONT it reports 'lost' before anything else).
 * Leave/join while names are held: cluster-leave-join.test.ts.
 *
 * Heartbeat 1000 ms (the floor). Histories are compared on one clock (see cluster-harness.ts). Every
 * wait is a bounded poll; every child is killed by pid in a finally.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { leaseDuration } from '../../lib/guard/lease.js';
import {
  type Cluster, type Grant, type Line, type NodeProcess, type OwnerRef, type Reply, now, ownerLines, withCluster,
} from './fixtures/cluster-harness.js';
import { until } from './fixtures/wait.js';

const HB = 1000;
/** Scheduling slack on top of a protocol bound: two loaded cores, several processes. */
const MARGIN = 2000;
/** The owner's lease after the send time of the renewal (or commit) that a majority acked last. */
const LEASE = leaseDuration(HB);

function refOf(r: Reply): OwnerRef {
  return (r.value as Grant).owner;
}

async function whereisEverywhere(procs: readonly NodeProcess[], name: string): Promise<unknown[]> {
  return Promise.all(procs.map((p) => p.call('whereis', { name })));
}

/** Exactly one reply ok; every other an AlreadyRegisteredError naming the winner. Returns the winner's index. */
function oneWinner(replies: readonly Reply[], who: readonly NodeProcess[]): number {
  const winners = replies.flatMap((r, i) => (r.ok ? [i] : []));
  assert.is(winners.length, 1, `exactly one winner: ${JSON.stringify(replies.map((r, i) => [who[i]?.id, r.ok ? 'ok' : r.error?.name]))}`);
  const w = winners[0] as number;
  const ref = refOf(replies[w] as Reply);
  for (const [i, r] of replies.entries()) {
    if (i === w) continue;
    assert.is(r.error?.name, 'AlreadyRegisteredError', `${who[i]?.id}: ${JSON.stringify(r.error)}`);
    assert.equal(r.error?.owner, ref, `${who[i]?.id}'s error names the winner`);
  }
  return w;
}

for (const size of [3, 5]) {
  test(`multiprocess (${size} nodes): concurrent register from every node -> one winner, whereis agrees; kill -9 the owner -> a survivor gets the name within 3 heartbeats + margin`,
    () => withCluster({ nodes: size }, 120_000, async (c: Cluster) => {
      const all = c.nodes;
      const replies = await Promise.all(all.map((p) => p.request('register', { name: 'race' })));
      const w = oneWinner(replies, all);
      const owner = all[w] as NodeProcess;
      const first = replies[w]?.value as Grant;
      assert.is(owner.id, first.owner.node);
      assert.equal(await whereisEverywhere(all, 'race'), all.map(() => first.owner));
      assert.is(all.reduce((sum, p) => sum + p.events('registered', 'race').length, 0), 1, 'one grant in the merged history');

      // kill -9: nothing is sent any more; the name is free once the acceptors' copies expire.
      const survivors = all.filter((p) => p !== owner);
      const killAt = now();
      owner.signal('SIGKILL');
      // Every survivor retries until one wins; the others stop when they are told the winner.
      const acquired = await Promise.all(survivors.map((p) =>
        p.request('acquire', { name: 'race', every: 50, within: 15_000, ignoreNodes: [owner.id] }, 20_000)));
      const w2 = oneWinner(acquired, survivors);
      const heir = survivors[w2] as NodeProcess;
      const second = acquired[w2]?.value as Grant & { attempts: number; errors: Record<string, number> };
      const granted = heir.events('registered', 'race')[0];
      assert.ok(granted !== undefined);
      const failover = granted.t - killAt;
      console.log(`    failover, ${size} nodes: ${failover.toFixed(0)} ms after kill -9 (${heir.id}, ${second.attempts} attempts, ${JSON.stringify(second.errors)})`);
      assert.ok(failover > 0);
      assert.ok(failover < 3 * HB + MARGIN, `failover ${failover.toFixed(0)} ms < ${3 * HB + MARGIN} ms`);
      assert.ok(second.token > first.token, 'the fencing token rises');
      assert.equal(await whereisEverywhere(survivors, 'race'), survivors.map(() => second.owner));
      assert.is(survivors.reduce((sum, p) => sum + p.events('registered', 'race').length, 0), 1, 'one new grant');
    }));
}

for (const size of [3, 5]) {
  test(`multiprocess (${size} nodes): owner SIGSTOPped past its lease -> a new owner only after the old lease deadline; on SIGCONT the old owner reports 'lost' before anything else`,
    () => withCluster({ nodes: size, trace: Array.from({ length: size }, (_, i) => `n${i + 1}`) }, 120_000, async (c: Cluster) => {
      const [rival, owner] = c.nodes as [NodeProcess, NodeProcess];
      const others = c.nodes.filter((p) => p !== owner);
      // The owner's worker writes a `work` line every 20 ms while its registration is valid.
      const first = await owner.call<Grant>('register', { name: 'lease', work: 20 });
      const grantedAt = (owner.events('registered', 'lease')[0] as Line).t;
      await until(() => owner.events('renew').filter((l) => l.t > grantedAt).length >= 2, 5 * HB, 'two renewals after the grant');

      const stopAt = now();
      owner.signal('SIGSTOP');
      const acquired = await rival.request('acquire', { name: 'lease', every: 50, within: 15_000, ignoreNodes: [owner.id], work: 20 }, 20_000);
      assert.ok(acquired.ok, JSON.stringify(acquired.error));
      const second = acquired.value as Grant;
      const granted = rival.events('registered', 'lease')[0] as Line;
      // The old lease runs from the last round the owner saw a majority ack (its own ack is local, so a
      // majority needs quorum - 1 peers) before it stopped, or from the commit.
      const peersNeeded = Math.floor(size / 2);
      const acked = owner.events('renew').filter((r) => r.t < stopAt && owner.lines
        .filter((l) => l.ev === 'renewAck' && l['rid'] === r['rid'] && l.t < stopAt).length >= peersNeeded);
      const lastRenewal = Math.max(grantedAt, ...acked.map((l) => l.t));
      const deadline = lastRenewal + LEASE;
      console.log(`    SIGSTOP, ${size} nodes: new owner ${(granted.t - stopAt).toFixed(0)} ms after SIGSTOP, ` +
        `${(granted.t - deadline).toFixed(0)} ms after the old lease deadline`);
      assert.ok(granted.t > deadline, `granted at ${granted.t.toFixed(1)}, old lease until at most ${deadline.toFixed(1)}`);
      assert.ok(second.token > first.token, 'the fencing token rises');
      assert.equal(await whereisEverywhere(others, 'lease'), others.map(() => second.owner));
      const oldWork = owner.events('work', 'lease');
      assert.ok(oldWork.length > 0, 'the old owner worked while it held the name');
      assert.ok(Math.max(...oldWork.map((l) => l.t)) < deadline, 'the old owner never worked past its lease');

      // Everything the owner wrote before it stopped has arrived (it has been stopped for seconds).
      const mark = owner.lines.length;
      const contAt = now();
      owner.signal('SIGCONT');
      const lost = await owner.waitFor((l) => l.ev === 'lost' && l['name'] === 'lease', 5000, "'lost' after SIGCONT");
      const after = owner.lines.slice(mark).filter((l) => l.ev !== 'renew' && l.ev !== 'nodeup' && l.ev !== 'nodedown');
      console.log(`    SIGCONT, ${size} nodes: 'lost' ${(lost.t - contAt).toFixed(0)} ms after SIGCONT; protocol lines first: ` +
        `${JSON.stringify(owner.lines.slice(mark, owner.lines.indexOf(lost)).map((l) => l.ev))}`);
      assert.equal(after.slice(0, 3).map((l) => [l.ev, l['reason'] ?? null]), [['aborted', 'lost'], ['released', 'lost'], ['lost', null]],
        `the old owner's first lines after SIGCONT: ${JSON.stringify(after.slice(0, 5))}`);
      assert.is(after[2], lost);
      assert.is(after.findIndex((l) => l.ev === 'work'), -1, 'no work after SIGCONT');
      assert.ok(Math.max(...owner.events('work', 'lease').map((l) => l.t)) < granted.t, 'holding intervals never overlap');
      // Afterwards the old node agrees with everyone: the name is the new owner's.
      const view = await owner.call<{ valid: boolean } | null>('registration', { name: 'lease' });
      assert.ok(view === null || view.valid === false);
      assert.equal(await owner.call('whereis', { name: 'lease' }), second.owner);
      assert.equal(ownerLines(rival, 'lease').filter((l) => l.ev !== 'work').map((l) => l.ev), ['registered'], 'the new owner keeps the name');
    }));
}

test.run();
