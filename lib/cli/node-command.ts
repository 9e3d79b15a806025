/**
 * `pes node`: runs one pes node on the ZeroMQ mesh until SIGTERM or SIGINT, printing a line when it runs
 * and one per membership, liveness or setting change.
 */
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { SystemClock, type Clock } from '../clock.js';
import { PesNode } from '../node.js';
import type { Seed } from '../options.js';
import { ZMQ_DEFAULTS, ZmqTransport, type CurveOptions } from '../transport/zmq.js';
import type { NodeArgs } from './args.js';
import type { CliIo, StopSignal } from './io.js';
import { loadKeyPair } from './keys.js';

/** How long `node.stop()` may take after a signal before the command gives up with exit code 1. */
export const STOP_DEADLINE_MS = 5000;

/** One line of `pes node` output, before formatting. */
export type NodeEvent =
  | { readonly event: 'started'; readonly id: string; readonly endpoint: string; readonly members: readonly string[]; readonly live: readonly string[]; readonly voting: boolean }
  | { readonly event: 'nodeup' | 'nodedown'; readonly node: string }
  | { readonly event: 'members'; readonly members: readonly string[] }
  | { readonly event: 'config'; readonly key: string; readonly value: number }
  | { readonly event: 'stopping'; readonly signal: StopSignal }
  | { readonly event: 'stopped' };

/** Formats an event as a text line (the default output) or a JSON line (`--json`). */
export function formatNodeEvent(e: NodeEvent, json: boolean): string {
  if (json) return JSON.stringify(e);
  switch (e.event) {
    case 'started':
      return `pes node ${e.id} listening on ${e.endpoint} (members: ${e.members.join(', ')}; live: ${e.live.join(', ')}; `
        + `voting: ${e.voting ? 'yes' : 'not yet'})`;
    case 'nodeup':
    case 'nodedown':
      return `${e.event} ${e.node}`;
    case 'members':
      return `members ${e.members.join(',')}`;
    case 'config':
      return `config ${e.key}=${e.value}`;
    case 'stopping':
      return `stopping (${e.signal})`;
    case 'stopped':
      return 'stopped';
  }
}

/**
 * Runs `pes node`. Resolves with the exit code once the node has stopped after a signal: 0 when it
 * stopped within {@link STOP_DEADLINE_MS}, 1 when it did not or a second signal forced the end.
 * @throws InvalidArgumentError for a bad option (a usage error); any error of starting or joining.
 */
export async function runNode(args: NodeArgs, io: CliIo): Promise<number> {
  const clock = new SystemClock();
  const curve = await curveOf(args);
  const id = args.id ?? `${hostname()}-${process.pid}`;
  const seeds: Seed[] = args.join.map((endpoint, i) => {
    const key = args.seedKeys.length === 1 ? args.seedKeys[0] : args.seedKeys[i];
    return key === undefined ? { endpoint } : { endpoint, publicKey: key };
  });
  let endpoint = args.endpoint ?? ZMQ_DEFAULTS.endpoint;
  // PesNode writes a founding node's own member entry before its transport binds, so with port 0 the
  // node would advertise ":0" and no joiner could reach it back: give it a concrete free port first.
  if (seeds.length === 0) endpoint = await withConcretePort(endpoint);
  const transport = new ZmqTransport({ clock }, { id, endpoint, curve });
  const node = new PesNode({
    id, clock, transport, seeds,
    ...(curve === undefined ? {} : { curve }),
    ...(args.heartbeat === undefined ? {} : { settings: { heartbeat: args.heartbeat } }),
  });

  // Changes while starting (joining) are summed up by the line that says the node runs; after it, each
  // change gets its own line.
  let started = false;
  const print = (e: NodeEvent): void => {
    if (started || e.event === 'started') io.out(formatNodeEvent(e, args.json));
  };
  node.events.on('nodeup', (peer) => print({ event: 'nodeup', node: peer }));
  node.events.on('nodedown', (peer) => print({ event: 'nodedown', node: peer }));
  node.events.on('members', (ids) => print({ event: 'members', members: [...ids] }));
  node.events.on('config', (key, value) => print({ event: 'config', key, value }));

  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let stopping = false;
  const unsubscribe = io.onStop((signal) => {
    if (stopping) {
      io.err(`pes node: ${signal} again: exiting without waiting for the node to stop`);
      finish(1);
      return;
    }
    stopping = true;
    started = true; // from here on, print as it happens
    print({ event: 'stopping', signal });
    void stopWithin(node, clock, STOP_DEADLINE_MS).then((ok) => {
      if (!ok) {
        io.err(`pes node: the node did not stop within ${STOP_DEADLINE_MS} ms`);
        finish(1);
        return;
      }
      print({ event: 'stopped' });
      finish(0);
    });
  });

  try {
    if (seeds.length > 0) io.err(`pes node: ${id} joining through ${args.join.join(', ')}`);
    try {
      await node.start();
    } catch (e) {
      // Stopped by a signal while joining: that is the asked-for outcome, not a failure.
      if (stopping) return await finished;
      throw e;
    }
    if (!stopping) {
      print({ event: 'started', id, endpoint: transport.endpoint, members: [...node.nodes()], live: [...node.liveNodes()], voting: node.voting });
      started = true;
    }
    return await finished;
  } finally {
    unsubscribe();
  }
}

/** CURVE options from the arguments: own pair from the key file, allow-list plus own and seed keys. */
async function curveOf(args: NodeArgs): Promise<CurveOptions | undefined> {
  if (args.curveSecretFile === undefined) return undefined;
  const pair = await loadKeyPair(args.curveSecretFile, args.curvePublic);
  const allow = [...new Set([...args.allow, pair.publicKey, ...args.seedKeys])];
  return { publicKey: pair.publicKey, secretKey: pair.secretKey, allow };
}

/** `node.stop()`, bounded: resolves false when it has not finished within `ms`. */
async function stopWithin(node: PesNode, clock: Clock, ms: number): Promise<boolean> {
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = clock.setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([node.stop().then(() => true as const, () => true as const), late]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/**
 * `tcp://HOST:0` with a port the OS reports free on HOST right now; any other endpoint as it is. A port
 * taken by someone else in between makes the bind fail loudly (EADDRINUSE), never silently.
 */
export async function withConcretePort(endpoint: string): Promise<string> {
  const m = /^tcp:\/\/(.+):0$/.exec(endpoint);
  if (m === null || m[1] === undefined) return endpoint;
  const host = m[1];
  const listenHost = host === '*' ? '0.0.0.0' : host.replace(/^\[(.*)\]$/, '$1');
  const server = createServer();
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: listenHost, exclusive: true }, () => {
        const address = server.address();
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
    return `tcp://${host}:${port}`;
  } catch {
    return endpoint; // let ZeroMQ report what is wrong with the host
  } finally {
    server.close();
  }
}
