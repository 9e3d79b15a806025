/**
 * Membership changes wait until the members have settled: a value accepted under the previous member
 * list sits on a majority of that list only, and until renewals have copied it onto a majority of the
 * current one, a second change could leave a majority with no copy of it (the simulation found this:
 * `npm run sim -- --mix races --seed 442`). The shape here: a name granted on n3 while n4 and n5 are cut
 * off, then n3 removed and, at once, n1 removed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../../lib/errors.js';
import { entryOf, nodeAt, withCluster } from './cluster-helpers.js';

const HB = 1000;

test('membership: a second change right after the first waits until the first one\'s orphaned names expired; no second owner meanwhile', () =>
  withCluster({ nodes: 5, settings: { heartbeat: HB } }, async (c) => {
    const [n1, n2, n3, n4, n5] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2), nodeAt(c, 3), nodeAt(c, 4)];
    c.net.partition([n1.id, n2.id, n3.id], [n4.id, n5.id]);
    const owner = n3.spawn();
    const reg = await c.run(n3.register('omega', owner));
    c.net.heal();
    // n3 still cannot reach n4 and n5, so neither its renewals nor a sync copy omega to them.
    for (const x of [n4.id, n5.id]) {
      c.net.cutOneWay(n3.id, x);
      c.net.cutOneWay(x, n3.id);
    }
    await c.run(n1.leave(n3.id));
    // n3 is out: its renewals no longer count, so omega lives on n1 and n2 only until it expires.
    let secondDone = -1;
    let secondError: unknown;
    const second = n5.leave(n1.id).then(() => {
      secondDone = c.clock.now();
    }, (e: unknown) => {
      secondError = e;
      secondDone = c.clock.now();
    });
    let ownerLostAt = -1;
    reg.signal.addEventListener('abort', () => {
      ownerLostAt = c.clock.now();
    });
    await c.run(second, 30_000);
    assert.ok(secondDone >= 0, 'the second change finished (done or refused)');
    if (secondError !== undefined) assert.instance(secondError, ConfigError);
    else {
      assert.ok(ownerLostAt >= 0 && ownerLostAt <= secondDone, 'the removed node\'s owner lost the name before the second change was made');
    }
    // A registration on the shrunken cluster: never while the old owner still holds the name.
    let grantedAt = -1;
    try {
      await c.run(n4.register('omega', n4.spawn()));
      grantedAt = c.clock.now();
    } catch {
      // refused while the old value is live is fine too
    }
    if (grantedAt >= 0) assert.ok(ownerLostAt >= 0 && ownerLostAt <= grantedAt, 'two owners of omega at once');
    await c.advance(5 * HB);
    assert.is(reg.valid, false, 'the removed node\'s owner is revoked in the end');
  }));

test('membership: a grant by a guard that asked the previous list does not settle the change after it; no second owner meanwhile', () =>
  withCluster({ nodes: 5, settings: { heartbeat: HB } }, async (c) => {
    const [n1, n2, n3, n4, n5] = [nodeAt(c, 0), nodeAt(c, 1), nodeAt(c, 2), nodeAt(c, 3), nodeAt(c, 4)];
    // n4 starts registering while cut off: its guard asks the five-member list.
    c.net.isolate(n4.id);
    const owner = n4.spawn();
    const pending = n4.register('omega', owner);
    await c.advance(10);
    await c.run(n1.leave(n5.id));
    // n4 reaches n3 and n5 again (not n1 or n2): its guard gets omega from n3, n4 and n5, a majority of
    // the old list; n3 accepts it after it adopted the new list, where only n3 and n4 hold it.
    c.net.heal();
    for (const x of [n1.id, n2.id]) {
      c.net.cutOneWay(n4.id, x);
      c.net.cutOneWay(x, n4.id);
    }
    const reg = await c.run(pending, 30_000);
    assert.ok(entryOf(n3, 'omega')?.value?.owner.node === n4.id, 'n3 holds omega');
    assert.ok(entryOf(n1, 'omega')?.value == null && entryOf(n2, 'omega')?.value == null, 'n1 and n2 never got it');
    let ownerLostAt = -1;
    reg.signal.addEventListener('abort', () => {
      ownerLostAt = c.clock.now();
    });
    // Removing n4 now would leave omega on n3 alone, and n1 with n2 a majority without it.
    let changeDone = -1;
    let changeError: unknown;
    await c.run(n1.leave(n4.id).then(() => {
      changeDone = c.clock.now();
    }, (e: unknown) => {
      changeError = e;
      changeDone = c.clock.now();
    }), 30_000);
    assert.ok(changeDone >= 0);
    if (changeError !== undefined) assert.instance(changeError, ConfigError);
    else assert.ok(ownerLostAt >= 0 && ownerLostAt <= changeDone, 'the change waited until the old owner had lost omega');
    let grantedAt = -1;
    try {
      await c.run(n1.register('omega', n1.spawn()));
      grantedAt = c.clock.now();
    } catch {
      // refused while the old value is live is fine too
    }
    if (grantedAt >= 0) assert.ok(ownerLostAt >= 0 && ownerLostAt <= grantedAt, 'two owners of omega at once');
  }));

test.run();
