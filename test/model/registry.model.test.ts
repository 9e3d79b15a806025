// timeout: 600
/**
 * Model-based tests (fast-check): random sequences of register / unregister / update / owner exit /
 * whereis / send against a real cluster (1 and 3 nodes, manual clock, in-memory network) and against a
 * plain Map model of the registry. After every command the cluster must answer as the model does.
 * Run alone with `npm run test:model`.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AlreadyRegisteredError, NotFoundError, NotRegisteredError, OwnerNotAliveError } from '../../lib/errors.js';
import type { Owner } from '../../lib/owner.js';
import type { OwnerRef } from '../../lib/protocol/messages.js';
import { createTestCluster, type TestCluster } from '../../lib/testing.js';

const NAMES = ['a', 'b', 'c'];
const OWNERS = 4;

interface Model { held: Map<string, number>; alive: boolean[] }
interface Real { cluster: TestCluster; owners: Owner[]; received: unknown[][] }

const refKey = (r: OwnerRef | undefined): string => (r === undefined ? '-' : `${r.node}/${r.inc}/${r.id}`);
const expectOwner = (m: Model, r: Real, name: string): string => {
  const o = m.held.get(name);
  return o === undefined ? '-' : refKey(r.owners[o]?.ref);
};
/** Node i of the cluster (owners are spread round-robin over the nodes). */
const nodeOf = (r: Real, i: number) => r.cluster.nodes[i % r.cluster.nodes.length]!;

class Register implements fc.AsyncCommand<Model, Real> {
  constructor(readonly name: string, readonly owner: number, readonly via: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const node = nodeOf(r, this.owner);
    const result = await r.cluster.run(node.register(this.name, r.owners[this.owner]!).then(() => 'yes', (e: unknown) => e));
    if (!m.alive[this.owner]) {
      assert.instance(result, OwnerNotAliveError);
    } else if (m.held.has(this.name)) {
      assert.instance(result, AlreadyRegisteredError);
      assert.is(refKey((result as AlreadyRegisteredError).owner), expectOwner(m, r, this.name));
    } else {
      assert.is(result, 'yes');
      m.held.set(this.name, this.owner);
    }
  }
  toString = (): string => `register(${this.name}, o${this.owner})`;
}

class Unregister implements fc.AsyncCommand<Model, Real> {
  constructor(readonly name: string, readonly via: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.cluster.run(nodeOf(r, this.via).unregister(this.name));
    m.held.delete(this.name);
  }
  toString = (): string => `unregister(${this.name}) via ${this.via}`;
}

class Update implements fc.AsyncCommand<Model, Real> {
  constructor(readonly name: string, readonly owner: number, readonly via: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const result = await r.cluster.run(nodeOf(r, this.via).update(this.name, r.owners[this.owner]!.ref).then(() => 'ok', (e: unknown) => e));
    if (!m.held.has(this.name)) {
      assert.instance(result, NotFoundError);
    } else if (m.held.get(this.name) === this.owner) {
      assert.is(result, 'ok');
    } else if (!m.alive[this.owner]) {
      assert.instance(result, OwnerNotAliveError);
    } else {
      assert.is(result, 'ok');
      m.held.set(this.name, this.owner);
    }
  }
  toString = (): string => `update(${this.name}, o${this.owner}) via ${this.via}`;
}

class Exit implements fc.AsyncCommand<Model, Real> {
  constructor(readonly owner: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.owners[this.owner]!.exit();
    m.alive[this.owner] = false;
    for (const [name, o] of [...m.held]) if (o === this.owner) m.held.delete(name);
    // Names of an exited owner are released at once: one phase is enough.
    await r.cluster.advance(600);
  }
  toString = (): string => `exit(o${this.owner})`;
}

class Whereis implements fc.AsyncCommand<Model, Real> {
  constructor(readonly name: string, readonly via: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const ref = await r.cluster.run(nodeOf(r, this.via).whereis(this.name));
    assert.is(refKey(ref), expectOwner(m, r, this.name));
  }
  toString = (): string => `whereis(${this.name}) via ${this.via}`;
}

class Send implements fc.AsyncCommand<Model, Real> {
  constructor(readonly name: string, readonly via: number, readonly body: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const result = await r.cluster.run(nodeOf(r, this.via).send(this.name, this.body).then((ref) => ref, (e: unknown) => e));
    const holder = m.held.get(this.name);
    if (holder === undefined) {
      assert.instance(result, NotRegisteredError);
      return;
    }
    assert.is(refKey(result as OwnerRef), expectOwner(m, r, this.name));
    await r.cluster.advance(50);
    assert.ok(r.received[holder]!.includes(this.body), 'the holder received the message');
  }
  toString = (): string => `send(${this.name}, ${this.body}) via ${this.via}`;
}

class Tick implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  async run(_m: Model, r: Real): Promise<void> {
    await r.cluster.advance(this.ms);
  }
  toString = (): string => `tick(${this.ms})`;
}

const name = fc.constantFrom(...NAMES);
const owner = fc.integer({ min: 0, max: OWNERS - 1 });
const via = fc.integer({ min: 0, max: 2 });
const commands = [
  fc.tuple(name, owner, via).map(([n, o, v]) => new Register(n, o, v)),
  fc.tuple(name, via).map(([n, v]) => new Unregister(n, v)),
  fc.tuple(name, owner, via).map(([n, o, v]) => new Update(n, o, v)),
  owner.map((o) => new Exit(o)),
  fc.tuple(name, via).map(([n, v]) => new Whereis(n, v)),
  fc.tuple(name, via, fc.integer({ min: 1, max: 1_000_000 })).map(([n, v, b]) => new Send(n, v, b)),
  fc.integer({ min: 1, max: 20_000 }).map((ms) => new Tick(ms)),
];

async function runModel(nodes: number, runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
      const cluster = await createTestCluster({ nodes, settings: { heartbeat: 1000 } });
      const received: unknown[][] = Array.from({ length: OWNERS }, () => []);
      const owners = Array.from({ length: OWNERS }, (_, i) =>
        cluster.nodes[i % nodes]!.spawn((msg) => { received[i]!.push(msg); }));
      try {
        await fc.asyncModelRun(() => ({ model: { held: new Map(), alive: owners.map(() => true) }, real: { cluster, owners, received } }), cmds);
      } finally {
        await cluster.stop();
      }
    }),
    { numRuns: runs, seed: 20261126 },
  );
}

test('model: single node, random command sequences -> the registry behaves as a map of names to live owners', async () => {
  await runModel(1, 150);
});

test('model: three nodes, commands from any node -> every answer matches the model', async () => {
  await runModel(3, 150);
});

test.run();
