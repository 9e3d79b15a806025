/**
 * Shared helpers of the registry and cluster tests (not a test file itself): start a test cluster and
 * always stop it, expect a typed rejection while the manual clock runs, and read an acceptor directly.
 */
import * as assert from 'uvu/assert';
import type { PesNode } from '../../lib/node.js';
import { decodeFrame, encodeFrame } from '../../lib/protocol/codec.js';
import { PROTOCOL_VERSION, type EntryView, type Message } from '../../lib/protocol/messages.js';
import { createTestCluster, type TestCluster, type TestClusterOptions } from '../../lib/testing.js';

/** Runs `fn` against a fresh test cluster and always stops it, whatever `fn` does. */
export async function withCluster(options: TestClusterOptions, fn: (c: TestCluster) => Promise<void>): Promise<void> {
  const c = await createTestCluster(options);
  try {
    await fn(c);
  } finally {
    await c.stop();
  }
}

/** Node `i` of the cluster (throws when there is none, so tests can index freely). */
export function nodeAt(c: TestCluster, i: number): PesNode {
  const n = c.nodes[i];
  if (n === undefined) throw new RangeError(`no node ${i}`);
  return n;
}

/** Every current node of the cluster. */
export function all(c: TestCluster): PesNode[] {
  return [...c.nodes];
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Drives the clock until `p` settles and asserts that it rejected with one of `classes`; returns the error.
 * A resolution, another error class, or not settling within `maxMs` of cluster time fails the test.
 */
export async function expectReject<C extends ErrorClass>(
  c: TestCluster, p: Promise<unknown>, classes: C | readonly C[], maxMs?: number,
): Promise<InstanceType<C>> {
  const list: readonly C[] = Array.isArray(classes) ? classes : [classes as C];
  let value: unknown;
  try {
    value = await c.run(p, maxMs);
  } catch (e) {
    const names = list.map((k) => k.name).join(' | ');
    assert.ok(list.some((k) => e instanceof k), `expected a rejection with ${names}, got ${String((e as Error)?.name)}: ${String((e as Error)?.message)}`);
    return e as InstanceType<C>;
  }
  assert.unreachable(`expected a rejection, got ${JSON.stringify(value)}`);
  throw new Error('unreachable');
}

/** The entry node `n`'s acceptor holds for `name`, read directly (undefined when absent or not voting). */
export function entryOf(n: PesNode, name: string): EntryView | undefined {
  const r = n.acceptor.read({ type: 'read', rid: 1, name });
  return r.entry;
}

/** Whether node `n`'s acceptor answers reads at all (it does not while recovering). */
export function readOk(n: PesNode, name: string): boolean {
  return n.acceptor.read({ type: 'read', rid: 1, name }).ok;
}

/** From now on, every message `from` sends `to` (decoded), in order: a tap on the in-memory network. */
export function tapMessages(c: TestCluster, from: string, to: string): Message[] {
  const seen: Message[] = [];
  const deliver = c.net.deliver.bind(c.net);
  c.net.deliver = (f, t, bytes) => {
    if (f === from && t === to) {
      const d = decodeFrame(bytes);
      if (d.ok) seen.push(...d.frame.messages);
    }
    return deliver(f, t, bytes);
  };
  return seen;
}

/** Hands `target` a frame of `messages` as if node `sender` had sent it. */
export function injectAs(target: PesNode, sender: PesNode, messages: Message[]): void {
  target.injectFrame(encodeFrame({ version: PROTOCOL_VERSION, sender: sender.id, inc: sender.incarnation, messages }));
}

/** Sum of messages every node's transport has sent. */
export function messagesSent(c: TestCluster): number {
  let sum = 0;
  for (const n of c.nodes) sum += n.stat().transport.messagesSent;
  return sum;
}

/** Calls `register` repeatedly from `node` (every `everyMs`) until it succeeds; resolves with the time. */
export async function registerEventually(
  c: TestCluster, node: PesNode, name: string, owner: Parameters<PesNode['register']>[1], everyMs: number, maxMs: number,
): Promise<{ at: number; token: number; attempts: number }> {
  const until = c.clock.now() + maxMs;
  let attempts = 0;
  while (c.clock.now() < until) {
    attempts++;
    try {
      const reg = await c.run(node.register(name, owner), maxMs);
      return { at: c.clock.now(), token: reg.token, attempts };
    } catch {
      await c.advance(everyMs);
    }
  }
  assert.unreachable(`${node.id} could not register ${name} within ${maxMs} ms`);
  throw new Error('unreachable');
}
