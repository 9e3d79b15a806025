// timeout: 240
/**
 * Membership changes while names are held, with real node processes on tcp loopback
 * (fixtures/cluster-node.ts): a member leaves (by itself, or killed and removed by another member), a
 * new node joins; the names held on the remaining nodes keep their owners and tokens throughout, the
 * new node votes only after a lease period and then sees the holders.
 *
 * Heartbeat 1000 ms (the floor). Every wait is a bounded poll; every child is killed by pid in a finally.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Cluster, type Grant, type NodeProcess, type OwnerRef, now, ownerLines, withCluster,
} from './fixtures/cluster-harness.js';
import { sleep } from './fixtures/wait.js';

const HB = 1000;
/** Scheduling slack on top of a protocol bound: two loaded cores, several processes. */
const MARGIN = 2000;

for (const how of ['leaves by itself', 'is killed and removed by another node'] as const) {
  test(`multiprocess (3 nodes): a node ${how} while names are held, a new node joins -> the others keep their names with the same token; the new node votes later and sees the holders`,
    () => withCluster({ nodes: 3 }, 150_000, async (c: Cluster) => {
      const [a, b, gone] = c.nodes as [NodeProcess, NodeProcess, NodeProcess];
      const held = [
        { p: a, name: 'held-a1' }, { p: a, name: 'held-a2' }, { p: b, name: 'held-b1' },
      ];
      const grants = new Map<string, Grant>();
      for (const h of held) grants.set(h.name, await h.p.call<Grant>('register', { name: h.name }));
      await gone.call('register', { name: 'held-gone' });

      if (how === 'leaves by itself') {
        const list = await gone.call<{ members: { id: string }[] }>('leave', {}, 15_000);
        assert.equal(list.members.map((m) => m.id).sort(), [a.id, b.id]);
        // Its renewals no longer count: it loses its own name within its lease.
        await gone.waitFor((l) => l.ev === 'lost' && l['name'] === 'held-gone', 3 * HB + MARGIN, "the leaver's name lost");
        await gone.call('stop');
      } else {
        gone.signal('SIGKILL');
        // Until the member list changes, majorities still count the dead node: 2 of 3 are enough.
        const list = await a.call<{ members: { id: string }[] }>('leave', { node: gone.id }, 15_000);
        assert.equal(list.members.map((m) => m.id).sort(), [a.id, b.id]);
      }
      await c.settled([a, b], 10_000);

      const [d] = await c.spawn(['n4']) as [NodeProcess];
      await d.loaded(90_000);
      await d.call('start', { seeds: [b.endpoint] }, 30_000);
      const startedAt = now();
      await c.settled([a, b, d], 20_000);
      console.log(`    join while names are held (after a node ${how}): voting ${(now() - startedAt).toFixed(0)} ms after start`);

      for (const h of held) {
        const g = grants.get(h.name) as Grant;
        assert.equal(await d.call('whereis', { name: h.name }), g.owner, `whereis ${h.name} from the new node`);
        for (const p of [a, b, d]) {
          const l = await p.call<{ owner: OwnerRef; token: number } | null>('lookup', { name: h.name });
          assert.equal(l?.owner, g.owner, `${h.name} from ${p.id}`);
          assert.is(l?.token, g.token, `${h.name} keeps its token, seen from ${p.id}`);
        }
        const reg = await h.p.call<{ valid: boolean; token: number } | null>('registration', { name: h.name });
        assert.is(reg?.valid, true, `${h.name} still valid on ${h.p.id}`);
        assert.is(reg?.token, g.token);
        assert.equal(ownerLines(h.p, h.name).map((l) => l.ev), ['registered'], `${h.name}: no release, no loss`);
      }
      // The departed node's name is not kept: nobody renews it.
      let free: unknown = 'held';
      for (const deadline = now() + 3 * HB + MARGIN; now() < deadline; ) {
        free = await d.call('whereis', { name: 'held-gone' });
        if (free === null) break;
        await sleep(100);
      }
      assert.is(free, null, "the departed node's name expires");
      const again = await d.call<Grant>('register', { name: 'held-gone' });
      assert.is(again.owner.node, d.id);
    }));
}

test.run();
