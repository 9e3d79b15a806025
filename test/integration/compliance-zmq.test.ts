// timeout: 240
/**
 * The compliance suite (fixtures/cluster-scenarios.ts) over real ZeroMQ sockets on tcp loopback: three
 * PesNodes in this process, each with its own ZmqTransport (started by `Pes.start` with an endpoint and
 * seeds) and the system clock. Letting time pass is a sleep; every operation is bounded by a timer. The
 * same scenarios run over the in-memory network in compliance-memory.test.ts.
 */
import { test } from 'uvu';
import { Pes, type PesNode } from '../../lib/index.js';
import { freePorts } from './fixtures/cluster-harness.js';
import { HB, defineCompliance } from './fixtures/cluster-scenarios.js';
import { sleep, until, within } from './fixtures/wait.js';

let cluster = 0;

defineCompliance('compliance (zmq)', async () => {
  const k = ++cluster;
  const settings = { heartbeat: HB };
  const nodes: PesNode[] = [];
  try {
    // The first node needs a known address for the others to join through: Pes.start gives no public
    // way to read the port it bound for 'tcp://127.0.0.1:0', so it binds a port chosen here.
    const [port] = await freePorts(1);
    const seed = `tcp://127.0.0.1:${port}`;
    nodes.push(await Pes.start({ id: `z${k}-1`, endpoint: seed, settings }));
    for (const id of [`z${k}-2`, `z${k}-3`]) {
      nodes.push(await Pes.start({ id, endpoint: 'tcp://127.0.0.1:0', seeds: [seed], settings, joinTimeout: 10_000 }));
    }
    const ids = nodes.map((n) => n.id).sort().join();
    await until(() => nodes.every((n) => n.voting && [...n.nodes()].sort().join() === ids && n.liveNodes().length === 3),
      10_000, 'three voting members that see each other');
  } catch (e) {
    for (const n of nodes) await n.stop();
    throw e;
  }
  return {
    nodes,
    settle: sleep,
    run: (p) => within(p, 15_000, 'operation'),
    async stop() {
      for (const n of nodes) await n.stop();
    },
  };
}, 30_000);

test.run();
