/**
 * `pes/plugins/metrics`: a Prometheus exporter for pes nodes, on prom-client (an optional peer
 * dependency: install `prom-client` ^15 to use this entry point).
 *
 * ```ts
 * import { register } from 'prom-client';
 * import { metricsPlugin } from 'pes/plugins/metrics';
 * await node.use(metricsPlugin());                 // prom-client's default registry, prefix 'pes_'
 * http.createServer(async (_, res) => res.end(await register.metrics())).listen(9464);
 * ```
 *
 * Values are read from `node.stat()` when the registry is scraped (prom-client `collect()`), once per
 * scrape per node; nothing runs between scrapes except the ownership watch. Every series carries a
 * `node` label (the node id), so several nodes of one process can share a registry: their plugins
 * share the metric objects, and the metrics leave the registry when the last of them stops.
 *
 * Metrics (with the default prefix `pes_`):
 *
 * | name | type | labels | from |
 * |---|---|---|---|
 * | `pes_active_guards` | gauge | node | guards running here (acquiring, holding, releasing) |
 * | `pes_held_names` | gauge | node | names held by owners on this node |
 * | `pes_members`, `pes_live_members` | gauge | node | member list size; members reachable from here |
 * | `pes_voting` | gauge | node | 1 when this node's acceptor votes |
 * | `pes_register_latency_seconds`, `pes_lookup_latency_seconds` | gauge | node, quantile (0.5, 0.99) | recent latency percentiles |
 * | `pes_registers_total`, `pes_lookups_total` | counter | node | completed registers, lookups |
 * | `pes_acceptor_entries` | gauge | node | names this acceptor stores |
 * | `pes_acceptor_{requests,promises,acks,nacks,repairs,renewals,renew_mismatches,cleaned,rejected}_total` | counter | node | acceptor activity |
 * | `pes_acceptor_{requests,acks,nacks,repairs}_per_second` | gauge | node | rates over the last 10 s (`stat().rates`) |
 * | `pes_renewer_{rounds,rounds_acked,syncs,lost}_total` | counter | node | lease renewal rounds, re-syncs, leases lost |
 * | `pes_transport_{frames,messages,bytes}_total` | counter | node, direction (sent, received) | transport traffic |
 * | `pes_transport_bad_frames_total`, `pes_transport_dropped_total` | counter | node | rejected frames; messages dropped |
 * | `pes_owner_token` | gauge | node, name | fencing token of each watched name's current owner |
 * | `pes_owned` | gauge | node, name | 1 when an owner on this node holds the name, else 0 |
 *
 * Ownership series follow `node.watch(opts.watch ?? '*')`: a name appears when it is granted and
 * leaves when it is unregistered, expires or is lost (bounded by the number of live names; narrow it
 * with `watch: 'jobs/*'`, or turn it off with `watch: false`).
 */
import { Counter, Gauge, register as defaultRegistry, type Registry } from 'prom-client';
import { InvalidArgumentError } from '../lib/errors.js';
import type { PesNode, PesStat } from '../lib/node.js';
import type { PesPlugin } from '../lib/plugin.js';
import type { OwnershipChange, Watch } from '../lib/watch.js';

/** Options of {@link metricsPlugin}. */
export interface MetricsOptions {
  /** Where the metrics are registered (default: prom-client's default registry). */
  readonly register?: Registry;
  /** Prefix of every metric name (default `'pes_'`). */
  readonly prefix?: string;
  /** Which names get ownership gauges: a `node.watch` target (default `'*'`), or `false` for none. */
  readonly watch?: string | false;
}

type Labels = Record<string, string>;
type Sample = readonly [Labels, number];

/** One metric: how to read its samples from a node's stat. */
interface MetricDef {
  readonly suffix: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  readonly labels?: readonly string[];
  readonly read: (s: PesStat, source: Source) => readonly Sample[];
}

const one = (value: number): readonly Sample[] => [[{}, value]];
const ms = (v: number): number => v / 1000;
const directions = (sent: number, received: number): readonly Sample[] => [[{ direction: 'sent' }, sent], [{ direction: 'received' }, received]];

const DEFS: readonly MetricDef[] = [
  { suffix: 'active_guards', type: 'gauge', help: 'Guards running on this node (acquiring, holding, releasing).', read: (s) => one(s.activeGuards) },
  { suffix: 'held_names', type: 'gauge', help: 'Names held by owners on this node.', read: (s) => one(s.heldNames) },
  { suffix: 'members', type: 'gauge', help: 'Members of the cluster (the majority base), as this node sees it.', read: (s) => one(s.members.length) },
  { suffix: 'live_members', type: 'gauge', help: 'Members reachable from this node, itself included.', read: (s) => one(s.liveMembers.length) },
  { suffix: 'voting', type: 'gauge', help: '1 when this node\'s acceptor votes, else 0.', read: (s) => one(s.voting ? 1 : 0) },
  {
    suffix: 'register_latency_seconds', type: 'gauge', help: 'Register latency percentiles over recent registrations.', labels: ['quantile'],
    read: (s) => [[{ quantile: '0.5' }, ms(s.register.p50)], [{ quantile: '0.99' }, ms(s.register.p99)]],
  },
  {
    suffix: 'lookup_latency_seconds', type: 'gauge', help: 'Lookup latency percentiles over recent lookups.', labels: ['quantile'],
    read: (s) => [[{ quantile: '0.5' }, ms(s.lookup.p50)], [{ quantile: '0.99' }, ms(s.lookup.p99)]],
  },
  { suffix: 'registers_total', type: 'counter', help: 'Registrations completed on this node.', read: (s) => one(s.register.count) },
  { suffix: 'lookups_total', type: 'counter', help: 'Lookups completed on this node.', read: (s) => one(s.lookup.count) },
  { suffix: 'acceptor_entries', type: 'gauge', help: 'Names stored by this node\'s acceptor.', read: (s) => one(s.acceptor.entries) },
  { suffix: 'acceptor_requests_total', type: 'counter', help: 'Protocol requests this acceptor handled.', read: (s) => one(s.acceptor.requests) },
  { suffix: 'acceptor_promises_total', type: 'counter', help: 'Prepares this acceptor promised.', read: (s) => one(s.acceptor.promises) },
  { suffix: 'acceptor_acks_total', type: 'counter', help: 'Commits this acceptor acked.', read: (s) => one(s.acceptor.acks) },
  { suffix: 'acceptor_nacks_total', type: 'counter', help: 'Requests this acceptor nacked.', read: (s) => one(s.acceptor.nacks) },
  { suffix: 'acceptor_repairs_total', type: 'counter', help: 'Entries repaired on this acceptor by a majority holder.', read: (s) => one(s.acceptor.repairs) },
  { suffix: 'acceptor_renewals_total', type: 'counter', help: 'Lease renewals this acceptor accepted.', read: (s) => one(s.acceptor.renewals) },
  { suffix: 'acceptor_renew_mismatches_total', type: 'counter', help: 'Lease renewals this acceptor refused.', read: (s) => one(s.acceptor.renewMismatches) },
  { suffix: 'acceptor_cleaned_total', type: 'counter', help: 'Expired entries this acceptor removed.', read: (s) => one(s.acceptor.cleaned) },
  { suffix: 'acceptor_rejected_total', type: 'counter', help: 'Requests this node refused to serve (not a member, stopping).', read: (s) => one(s.acceptor.rejected) },
  { suffix: 'acceptor_requests_per_second', type: 'gauge', help: 'Requests this acceptor handled per second over the last 10 s.', read: (s) => one(s.rates.requests) },
  { suffix: 'acceptor_acks_per_second', type: 'gauge', help: 'Acks (commits and renewals) per second over the last 10 s.', read: (s) => one(s.rates.acks) },
  { suffix: 'acceptor_nacks_per_second', type: 'gauge', help: 'Nacks (and refused renewals) per second over the last 10 s.', read: (s) => one(s.rates.nacks) },
  { suffix: 'acceptor_repairs_per_second', type: 'gauge', help: 'Repairs per second over the last 10 s.', read: (s) => one(s.rates.repairs) },
  { suffix: 'renewer_rounds_total', type: 'counter', help: 'Lease renewal rounds this node sent.', read: (s) => one(s.renewer.rounds) },
  { suffix: 'renewer_rounds_acked_total', type: 'counter', help: 'Lease renewal rounds a majority acked.', read: (s) => one(s.renewer.roundsAcked) },
  { suffix: 'renewer_syncs_total', type: 'counter', help: 'Full re-syncs of held names to a member.', read: (s) => one(s.renewer.syncs) },
  { suffix: 'renewer_lost_total', type: 'counter', help: 'Leases this node lost (no majority renewal in time).', read: (s) => one(s.renewer.lost) },
  {
    suffix: 'transport_frames_total', type: 'counter', help: 'Transport frames, by direction.', labels: ['direction'],
    read: (s) => directions(s.transport.framesSent, s.transport.framesReceived),
  },
  {
    suffix: 'transport_messages_total', type: 'counter', help: 'Protocol messages carried by the transport, by direction.', labels: ['direction'],
    read: (s) => directions(s.transport.messagesSent, s.transport.messagesReceived),
  },
  {
    suffix: 'transport_bytes_total', type: 'counter', help: 'Transport bytes, by direction.', labels: ['direction'],
    read: (s) => directions(s.transport.bytesSent, s.transport.bytesReceived),
  },
  { suffix: 'transport_bad_frames_total', type: 'counter', help: 'Frames that failed decoding or validation (they changed nothing).', read: (s) => one(s.transport.badFrames) },
  { suffix: 'transport_dropped_total', type: 'counter', help: 'Messages dropped: peer unreachable or its queue full.', read: (s) => one(s.transport.dropped) },
  {
    suffix: 'owner_token', type: 'gauge', help: 'Fencing token of the current owner of each watched name.', labels: ['name'],
    read: (_s, src) => [...src.owners].map(([name, o]) => [{ name }, o.token] as const),
  },
  {
    suffix: 'owned', type: 'gauge', help: '1 when an owner on this node holds the name, else 0.', labels: ['name'],
    read: (_s, src) => [...src.owners].map(([name, o]) => [{ name }, o.owned ? 1 : 0] as const),
  },
];

/** One node feeding a shared metric set. */
interface Source {
  readonly node: PesNode;
  readonly owners: Map<string, { token: number; owned: boolean }>;
}

/** The metric objects of one (registry, prefix), shared by every node's plugin that uses them. */
class SharedMetrics {
  readonly sources = new Set<Source>();
  readonly #registry: Registry;
  readonly #names: string[] = [];
  /** Stats taken during the current scrape: every collect of one scrape runs in one synchronous turn. */
  #cache: Map<Source, PesStat> | undefined;

  constructor(registry: Registry, prefix: string) {
    this.#registry = registry;
    const created: string[] = [];
    try {
      for (const def of DEFS) {
        const name = prefix + def.suffix;
        const labelNames = ['node', ...(def.labels ?? [])];
        const self = this;
        const config = { name, help: def.help, labelNames, registers: [registry] };
        if (def.type === 'gauge') {
          new Gauge({ ...config, collect(this: Gauge) { self.#fill(this, def); } });
        } else {
          new Counter({ ...config, collect(this: Counter) { self.#fill(this, def); } });
        }
        created.push(name);
      }
    } catch (e) {
      for (const n of created) registry.removeSingleMetric(n);
      throw new InvalidArgumentError('prefix', `cannot register pes metrics with prefix '${prefix}': ${(e as Error).message}`);
    }
    this.#names = created;
  }

  #stat(src: Source): PesStat {
    if (this.#cache === undefined) {
      this.#cache = new Map();
      queueMicrotask(() => { this.#cache = undefined; });
    }
    let s = this.#cache.get(src);
    if (s === undefined) {
      s = src.node.stat();
      this.#cache.set(src, s);
    }
    return s;
  }

  #fill(metric: Gauge | Counter, def: MetricDef): void {
    metric.reset();
    for (const src of this.sources) {
      let samples: readonly Sample[];
      try {
        samples = def.read(this.#stat(src), src);
      } catch {
        continue; // a node that cannot report (stopped) is left out of this scrape
      }
      for (const [labels, value] of samples) {
        const all = { ...labels, node: src.node.id };
        if (metric instanceof Gauge) metric.set(all, value);
        else metric.inc(all, value);
      }
    }
  }

  /** Removes the metrics from the registry. */
  unregister(): void {
    for (const n of this.#names) this.#registry.removeSingleMetric(n);
  }
}

const shared = new WeakMap<Registry, Map<string, SharedMetrics>>();

/** The Prometheus exporter plugin of one node. Create with {@link metricsPlugin}. */
export class MetricsPlugin implements PesPlugin {
  readonly name = 'metrics';
  /** The registry the metrics live in. */
  readonly register: Registry;
  readonly prefix: string;
  readonly #watchTarget: string | false;
  #source: Source | undefined;
  #watch: Watch | undefined;
  #metrics: SharedMetrics | undefined;

  /** Not attached yet: `node.use(plugin)` registers the metrics. Throws InvalidArgumentError on a bad prefix. */
  constructor(opts: MetricsOptions = {}) {
    this.register = opts.register ?? defaultRegistry;
    this.prefix = opts.prefix ?? 'pes_';
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(this.prefix)) throw new InvalidArgumentError('prefix', 'prefix must match [a-zA-Z_:][a-zA-Z0-9_:]*');
    this.#watchTarget = opts.watch ?? '*';
  }

  /** PesPlugin: registers the metrics (or joins those another node registered) and starts the ownership watch. */
  setup(node: PesNode): void {
    if (this.#source !== undefined) {
      if (this.#source.node === node) return;
      throw new InvalidArgumentError('node', `the metrics plugin is already attached to node ${this.#source.node.id}`);
    }
    let byPrefix = shared.get(this.register);
    if (byPrefix === undefined) {
      byPrefix = new Map();
      shared.set(this.register, byPrefix);
    }
    let metrics = byPrefix.get(this.prefix);
    if (metrics === undefined) {
      metrics = new SharedMetrics(this.register, this.prefix);
      byPrefix.set(this.prefix, metrics);
    }
    for (const other of metrics.sources) {
      if (other.node.id === node.id) throw new InvalidArgumentError('node', `node ${node.id} already exports metrics to this registry`);
    }
    const source: Source = { node, owners: new Map() };
    if (this.#watchTarget !== false) {
      this.#watch = node.watch(this.#watchTarget);
      this.#watch.on('change', (c) => onChange(source, c));
    }
    metrics.sources.add(source);
    this.#source = source;
    this.#metrics = metrics;
  }

  /** PesPlugin: stops the watch and takes this node's series out; the last node out unregisters the metrics. Idempotent. */
  stop(): void {
    const source = this.#source;
    const metrics = this.#metrics;
    if (source === undefined || metrics === undefined) return;
    this.#source = undefined;
    this.#metrics = undefined;
    this.#watch?.close();
    this.#watch = undefined;
    metrics.sources.delete(source);
    if (metrics.sources.size === 0) {
      metrics.unregister();
      const byPrefix = shared.get(this.register);
      byPrefix?.delete(this.prefix);
      if (byPrefix?.size === 0) shared.delete(this.register);
    }
  }
}

function onChange(source: Source, c: OwnershipChange): void {
  const cur = source.owners.get(c.name);
  switch (c.kind) {
    case 'registered':
    case 'handoff':
      if (cur === undefined || cur.token <= c.token) source.owners.set(c.name, { token: c.token, owned: c.owner.node === source.node.id });
      break;
    case 'unregistered':
    case 'expired':
    case 'lost':
      if (cur !== undefined && cur.token <= c.token) source.owners.delete(c.name);
      break;
    case 'owner-down':
      break; // still held until its lease runs out
  }
}

/**
 * A Prometheus exporter of `node.stat()` and ownership gauges, as a plugin: `await node.use(metricsPlugin())`.
 * Stopping the plugin (or the node) takes its series out; see the module documentation for the metrics.
 */
export function metricsPlugin(opts: MetricsOptions = {}): MetricsPlugin {
  return new MetricsPlugin(opts);
}
