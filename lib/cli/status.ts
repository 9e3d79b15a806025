/**
 * `pes status`: asks one node for its view of the cluster over a temporary ZeroMQ transport of its own,
 * and prints it as a table (or the raw reply as JSON).
 */
import { SystemClock, type Clock, type TimerHandle } from '../clock.js';
import { AbortedError, TimeoutError } from '../errors.js';
import type { StatusReply } from '../protocol/messages.js';
import { ZmqTransport, type CurveOptions } from '../transport/zmq.js';
import type { StatusArgs } from './args.js';
import type { CliIo } from './io.js';
import { loadKeyPair } from './keys.js';

/** Options of {@link queryStatus}. */
export interface StatusQueryOptions {
  /** How long to wait for the reply, ms. */
  readonly timeout: number;
  /** The asking side's CURVE keys (allowed by the node) and the node's public key. */
  readonly curve?: { readonly publicKey: string; readonly secretKey: string; readonly serverKey: string } | undefined;
  readonly clock?: Clock | undefined;
  /** This side's node id (default `pes-status-<pid>`); it must not be a member's id. */
  readonly id?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * The peer id the node at the endpoint is filed under: the asker does not know the node's real id, and
 * the reply is accepted from whichever id it comes.
 */
const TARGET = 'pes-status-target';
/** The query is sent again this often until a reply arrives (a connection may drop the first one). */
const RESEND_MS = 1000;

/**
 * Asks the node listening at `endpoint` for its status. Always stops the temporary transport.
 * @throws TimeoutError when no reply arrives within `timeout` ms; AbortedError when `signal` aborts;
 * InvalidArgumentError for a bad endpoint or key.
 */
export async function queryStatus(endpoint: string, options: StatusQueryOptions): Promise<StatusReply> {
  const clock = options.clock ?? new SystemClock();
  const curve: CurveOptions | undefined = options.curve === undefined ? undefined
    : { publicKey: options.curve.publicKey, secretKey: options.curve.secretKey, allow: [options.curve.publicKey] };
  const timeout = options.timeout;
  const transport = new ZmqTransport({ clock }, {
    id: options.id ?? `pes-status-${process.pid}`,
    curve,
    // Nobody answers our pings (we are no member), and a first frame may wait for the connection as
    // long as the ping timeout: make both as long as the whole query.
    ping: { interval: Math.max(timeout, 1), timeout: Math.max(timeout, 1) },
  });
  const rid = 1;
  const timers: (TimerHandle | undefined)[] = [];
  let onAbort: (() => void) | undefined;
  let answered: (reply: StatusReply) => void = () => {};
  let failed: (error: Error) => void = () => {};
  const outcome = new Promise<StatusReply>((resolve, reject) => {
    answered = resolve;
    failed = reject;
  });
  try {
    timers.push(clock.setTimeout(() => failed(new TimeoutError('status', timeout)), timeout));
    const signal = options.signal;
    if (signal !== undefined) {
      onAbort = () => failed(new AbortedError({ cause: signal.reason }));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    const started = transport.start((_from, _inc, messages) => {
      for (const m of messages) if (m.type === 'statusR' && m.rid === rid) answered(m);
    }, () => {});
    // The bind is bounded by the same timeout and abort as the reply.
    await Promise.race([started, outcome]);
    transport.addPeer({ id: TARGET, endpoint, publicKey: options.curve?.serverKey });
    const ask = (): void => {
      transport.send(TARGET, { type: 'status', rid });
      timers.push(clock.setTimeout(ask, RESEND_MS));
    };
    ask();
    return await outcome;
  } finally {
    for (const t of timers) clock.clearTimeout(t);
    if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
    await transport.stop();
  }
}

/** Formats a status reply as the table `pes status` prints. */
export function formatStatus(reply: StatusReply): string {
  const live = new Set(reply.live);
  const rows = reply.members.members.map((m) => [m.id, m.endpoint, live.has(m.id) ? 'yes' : 'no']);
  const header = ['ID', 'ENDPOINT', 'LIVE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [
    `node ${reply.node}: voting ${reply.voting ? 'yes' : 'no (not yet)'}, ${reply.held} name${reply.held === 1 ? '' : 's'} held, `
      + `${reply.members.members.length} member${reply.members.members.length === 1 ? '' : 's'} `
      + `(${reply.live.length} live, member list version ${reply.members.version})`,
    line(header),
    ...rows.map(line),
  ].join('\n');
}

/**
 * Runs `pes status`. Resolves with the exit code: 0 with a reply, 1 without one in time.
 * @throws InvalidArgumentError for a bad option (a usage error).
 */
export async function runStatus(args: StatusArgs, io: CliIo): Promise<number> {
  let curve: StatusQueryOptions['curve'];
  if (args.curveSecretFile !== undefined && args.serverKey !== undefined) {
    const pair = await loadKeyPair(args.curveSecretFile, args.curvePublic);
    curve = { ...pair, serverKey: args.serverKey };
  }
  try {
    const reply = await queryStatus(args.endpoint, { timeout: args.timeout, curve });
    io.out(args.json ? JSON.stringify(reply) : formatStatus(reply));
    return 0;
  } catch (e) {
    if (e instanceof TimeoutError) {
      io.err(`pes status: no reply from ${args.endpoint} within ${args.timeout} ms `
        + '(is a pes node listening there? with CURVE on, are --server-key and your key right?)');
      return 1;
    }
    throw e;
  }
}
