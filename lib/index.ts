/**
 * pes: cluster-wide unique names for Node.js processes, agreed by a majority protocol.
 *
 * ```ts
 * import { Pes } from 'pes';
 * const node = await Pes.start();
 * const worker = node.spawn();
 * const reg = await node.register('billing-cron', worker);   // reg.token is the fencing token
 * ```
 */
export { Pes } from './pes.js';
export { PesNode, type PesOptions, type PesStat } from './node.js';
export type { Seed } from './options.js';
export type { Singleton, SingletonSpec, SingletonContext, SingletonStopReason, TransferReport, DrainReport } from './singleton.js';
export type { PesPlugin } from './plugin.js';
export { Owner, OwnerExit, type OwnerHandler } from './owner.js';
export { Registration } from './registration.js';
export type { CallOptions, LookupResult } from './registry.js';
export type { PesEvents, OwnershipEvent } from './events.js';
export { Watch, type OwnershipChange, type WatchTarget } from './watch.js';
export { DEFAULT_SETTINGS, type SettingKey, type Settings } from './cluster/config.js';
export {
  PesError, InvalidArgumentError, AlreadyRegisteredError, NoConsensusError, TimeoutError, AbortedError, NotFoundError,
  NotRegisteredError, OwnerNotAliveError, StoppedError, ConfigError, LeaseLostError, RemoteCallError, type RevokeReason,
} from './errors.js';
export type { OwnerRef, MemberInfo } from './protocol/messages.js';
export { SystemClock, ManualClock, type Clock, type TimerHandle } from './clock.js';
export type { Transport, PeerAddress, TransportStats } from './transport/transport.js';
export { HEARTBEAT_FLOOR_MS, DRIFT_BOUND, LEASE_MARGIN_MS, leaseDuration } from './guard/lease.js';
