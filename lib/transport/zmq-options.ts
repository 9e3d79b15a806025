/**
 * Options of the ZeroMQ transport: their types, defaults, and the checks that turn them into a resolved
 * configuration. Kept apart from `zmq.ts` so the transport reads as behaviour, not validation.
 */
import { InvalidArgumentError } from '../errors.js';
import { LIMITS } from '../protocol/codec.js';
import type { PeerAddress } from './transport.js';
import { isZ85Key, type CurveOptions } from './zmq-curve.js';

/** A peer of the ZeroMQ mesh; with CURVE on, its public key (Z85) is required. */
export interface ZmqPeerAddress extends PeerAddress {
  readonly publicKey?: string | undefined;
}

/** Application-level liveness settings. */
export interface ZmqPingOptions {
  /** How often each peer is pinged, in ms (also the ZMTP heartbeat interval). Default 1000. */
  readonly interval?: number | undefined;
  /** Silence after which a peer is reported down, in ms (also the ZMTP heartbeat timeout). Default 3000. */
  readonly timeout?: number | undefined;
}

/** Bounds on memory and message sizes. */
export interface ZmqLimits {
  /** Most frames waiting in one peer's outbox queue; more are dropped and counted. Default 1024. */
  readonly queueFrames: number;
  /** libzmq send high-water mark per peer, in frames. Default 1000. */
  readonly sendHighWaterMark: number;
  /** libzmq receive high-water mark per connection, in frames. Default 1000. */
  readonly receiveHighWaterMark: number;
  /** Largest frame sent or accepted, in bytes; at most (and by default) `LIMITS.frameBytes`. */
  readonly frameBytes: number;
}

/** Options of `ZmqTransport`. */
export interface ZmqTransportOptions {
  /** This node's id; it is also the DEALER routing id, so at most 255 UTF-8 bytes. */
  readonly id: string;
  /** `tcp://host:port` or `ipc://path` to bind; port 0 picks a free port. Default `tcp://127.0.0.1:0`. */
  readonly endpoint?: string | undefined;
  /** Default: wall-clock ms at construction, so it rises with each start of a node without persistence. */
  readonly incarnation?: number | undefined;
  /** When set, every link runs CURVE and only allow-listed keys may connect to the inbox. */
  readonly curve?: CurveOptions | undefined;
  readonly ping?: ZmqPingOptions | undefined;
  readonly limits?: Partial<ZmqLimits> | undefined;
}

/** Defaults of {@link ZmqTransportOptions}. Loopback only: a node is reachable from elsewhere only if asked. */
export const ZMQ_DEFAULTS = {
  endpoint: 'tcp://127.0.0.1:0',
  pingInterval: 1000,
  pingTimeout: 3000,
  limits: { queueFrames: 1024, sendHighWaterMark: 1000, receiveHighWaterMark: 1000, frameBytes: LIMITS.frameBytes },
} as const satisfies { limits: ZmqLimits } & Record<string, unknown>;

/** Options after defaults and checks. */
export interface ResolvedZmqOptions {
  readonly id: string;
  readonly incarnation: number;
  readonly bind: string;
  readonly interval: number;
  readonly timeout: number;
  /** ZMTP heartbeat TTL: the timeout, within what libzmq can carry (deciseconds in 16 bits). */
  readonly heartbeatTtl: number;
  readonly limits: ZmqLimits;
  readonly curve: CurveOptions | undefined;
}

/**
 * Applies defaults and checks every option.
 * @param wallNow wall-clock ms, the default incarnation.
 * @throws InvalidArgumentError naming the first bad option.
 */
export function resolveZmqOptions(options: ZmqTransportOptions, wallNow: number): ResolvedZmqOptions {
  const { id } = options;
  const idBytes = typeof id === 'string' ? Buffer.byteLength(id, 'utf8') : 0;
  // ZeroMQ routing ids are 1..255 bytes and must not start with a zero byte (reserved for generated ids).
  if (idBytes === 0 || idBytes > 255 || id.length > LIMITS.idChars || id.startsWith('\0')) {
    throw new InvalidArgumentError('id', 'id must be 1..255 UTF-8 bytes and not start with NUL');
  }
  const incarnation = options.incarnation ?? Math.floor(wallNow);
  if (!Number.isSafeInteger(incarnation) || incarnation < 0) {
    throw new InvalidArgumentError('incarnation', 'incarnation must be a non-negative safe integer');
  }
  const bind = options.endpoint ?? ZMQ_DEFAULTS.endpoint;
  checkEndpoint('endpoint', bind);
  const interval = options.ping?.interval ?? ZMQ_DEFAULTS.pingInterval;
  const timeout = options.ping?.timeout ?? ZMQ_DEFAULTS.pingTimeout;
  if (!(interval > 0) || !(timeout >= interval) || !Number.isFinite(timeout)) {
    throw new InvalidArgumentError('ping', 'ping.interval must be > 0 and ping.timeout >= ping.interval');
  }
  const limits: ZmqLimits = { ...ZMQ_DEFAULTS.limits, ...definedOnly(options.limits ?? {}) };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`limits.${key}`, 'limits must be positive integers');
  }
  if (limits.frameBytes > LIMITS.frameBytes) {
    throw new InvalidArgumentError('limits.frameBytes', 'frameBytes cannot exceed what the codec accepts');
  }
  const curve = options.curve;
  if (curve !== undefined && ![curve.publicKey, curve.secretKey, ...curve.allow].every(isZ85Key)) {
    throw new InvalidArgumentError('curve', 'curve keys must be 40-character Z85 strings');
  }
  return { id, incarnation, bind, interval, timeout, heartbeatTtl: Math.min(timeout, 6_553_500), limits, curve };
}

/** @throws InvalidArgumentError unless `endpoint` is a tcp:// or ipc:// address. */
export function checkEndpoint(argument: string, endpoint: string): void {
  if (typeof endpoint !== 'string' || !/^(tcp|ipc):\/\/.+/.test(endpoint)) {
    throw new InvalidArgumentError(argument, 'endpoint must be tcp://host:port or ipc://path');
  }
}

/** Drops keys whose value is undefined, so spreading options never overwrites a default with undefined. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
