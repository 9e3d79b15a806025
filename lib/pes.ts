/**
 * The entry point: `const node = await Pes.start(options)`. Picks the transport: the ZeroMQ mesh when
 * the options ask for a network (endpoint, seeds or CURVE keys), else the in-process one.
 */
import { SystemClock } from './clock.js';
import { PesNode } from './node.js';
import type { PesOptions } from './options.js';

let anonymous = 0;

/** The entry point: `const node = await Pes.start(options)`. */
export const Pes = {
  /** Creates and starts a node. With no options: a working single-node cluster. */
  async start(options: PesOptions = {}): Promise<PesNode> {
    const mesh = options.transport === undefined
      && (options.endpoint !== undefined || options.seeds !== undefined || options.curve !== undefined);
    if (!mesh) return new PesNode(options).start();
    // Loaded only when asked for: a single-process user never loads the native module.
    const { ZmqTransport } = await import('./transport/zmq.js');
    const clock = options.clock ?? new SystemClock();
    const id = options.id ?? `pes-${process.pid}-z${++anonymous}`;
    const transport = new ZmqTransport({ clock }, {
      id, endpoint: options.endpoint, curve: options.curve, ping: options.ping,
    });
    return new PesNode({ ...options, id, clock, transport }).start();
  },
};
