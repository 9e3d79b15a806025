// timeout: 60
/**
 * The compliance suite (fixtures/cluster-scenarios.ts) over the in-memory network and a manual clock:
 * `createTestCluster` from `pes/testing`, where letting time pass is `cluster.advance` and awaiting an
 * operation is `cluster.run`. The same scenarios run over real ZeroMQ sockets in compliance-zmq.test.ts.
 */
import { test } from 'uvu';
import { createTestCluster } from '../../lib/testing.js';
import { HB, defineCompliance } from './fixtures/cluster-scenarios.js';

defineCompliance('compliance (memory)', async () => {
  const cluster = await createTestCluster({ nodes: 3, settings: { heartbeat: HB } });
  return {
    nodes: cluster.nodes,
    settle: (ms) => cluster.advance(ms),
    run: (p) => cluster.run(p, 60_000),
    stop: () => cluster.stop(),
  };
}, 20_000);

test.run();
