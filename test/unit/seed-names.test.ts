/**
 * Names: strings of 1..1024 UTF-8 bytes, well-formed. Anything else is rejected by every operation with
 * an InvalidArgumentError before anything changes; names at the limit work across nodes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../lib/index.js';
import type { TestCluster } from '../../lib/testing.js';
import { all, nodeAt, withCluster } from './cluster-helpers.js';

const opts = { nodes: 3, settings: { heartbeat: 1000 } };

// -------------------------------------------------------------------------------------------

const BAD_NAMES: readonly [string, unknown][] = [
  ['empty string', ''],
  ['1025 UTF-8 bytes (multi-byte)', `${'é'.repeat(512)}a`],
  ['1025 UTF-8 bytes (4-byte chars)', `${'🔒'.repeat(256)}a`],
  ['a lone high surrogate', 'job-\uD800'],
  ['a lone low surrogate', '\uDC00job'],
  ['a number', 42],
  ['undefined', undefined],
  ['null', null],
  ['an object', { name: 'x' }],
];

async function assertInvalid(c: TestCluster, p: Promise<unknown>, what: string): Promise<void> {
  let err: unknown;
  try {
    await c.run(p, 10);
  } catch (e) {
    err = e;
  }
  assert.instance(err, InvalidArgumentError, what);
  assert.is((err as InvalidArgumentError).argument, 'name', what);
}

for (const [label, bad] of BAD_NAMES) {
  test(`names: ${label} -> InvalidArgumentError from every operation, nothing changes`, () =>
    withCluster(opts, async (c) => {
      const n1 = nodeAt(c, 0);
      const owner = n1.spawn();
      const name = bad as string;
      const before = all(c).map((n) => [n.stat().activeGuards, n.stat().acceptor.entries, n.stat().acceptor.requests]);
      await assertInvalid(c, n1.register(name, owner), 'register');
      await assertInvalid(c, n1.registerName(name, owner), 'registerName');
      await assertInvalid(c, n1.whereis(name), 'whereis');
      await assertInvalid(c, n1.lookup(name), 'lookup');
      await assertInvalid(c, n1.unregister(name), 'unregister');
      await assertInvalid(c, n1.update(name, owner), 'update');
      await assertInvalid(c, n1.send(name, 'm'), 'send');
      await assertInvalid(c, n1.call(name, 'm'), 'call');
      const after = all(c).map((n) => [n.stat().activeGuards, n.stat().acceptor.entries, n.stat().acceptor.requests]);
      assert.equal(after, before, 'no guard started, no entry written, no request sent');
      assert.is(owner.alive, true);
      assert.is(owner.signal.aborted, false);
    }));
}

for (const [label, name] of [['1024 bytes of 2-byte chars', 'é'.repeat(512)], ['1024 bytes of 4-byte chars', '🔒'.repeat(256)], ['one byte', 'x']] as const) {
  test(`names: ${label} -> accepted and agreed on by every node`, () =>
    withCluster(opts, async (c) => {
      const owner = nodeAt(c, 0).spawn();
      await c.run(nodeAt(c, 0).register(name, owner));
      for (const n of all(c)) assert.equal(await c.run(n.whereis(name)), owner.ref, n.id);
      assert.equal(await c.run(nodeAt(c, 2).send(name, 'm')), owner.ref);
      await c.run(nodeAt(c, 1).unregister(name));
      assert.is(await c.run(nodeAt(c, 2).whereis(name)), undefined);
    }));
}

test.run();
