/**
 * The inbox: routes every message a peer (or this node) sends to the part that answers it. Frames from
 * a previous life of a peer are dropped here. A sender that is not a member may only ask to join, ask
 * for status, answer a join or membership change this node started, and gossip a newer member list
 * that names both of us (this node missed the changes that added it); everything else it sends is
 * dropped and counted, so an outsider can neither vote, nor forge replies (a forged renewal ack could
 * otherwise stretch a lease), nor reach owners.
 */
import type { Acceptor } from './acceptor/acceptor.js';
import type { MembershipChanges } from './cluster/changes.js';
import type { ClusterConfig } from './cluster/config.js';
import type { Membership } from './cluster/membership.js';
import type { Delivery } from './delivery.js';
import type { Clock } from './clock.js';
import type { Ballot, DecidedMsg, GossipMsg, Message, RequestMsg, StatusReply, Value } from './protocol/messages.js';
import type { Registry } from './registry.js';
import type { Rpc } from './rpc.js';

const ACCEPTOR_REQUESTS: ReadonlySet<string> = new Set(['read', 'prep', 'com', 'abandon', 'renew', 'sync', 'hello']);
/** What a non-member may send (its gossip counts only as described in the module comment). */
const FROM_ANYONE: ReadonlySet<string> = new Set(['join', 'joinR', 'status', 'statusR', 'msetR', 'ping', 'pong', 'gossip']);
/** What a non-member may also send while this node is not a member itself (it is joining). */
const WHILE_JOINING: ReadonlySet<string> = new Set(['mset', 'mget', 'mgetR']);

export interface InboxParts {
  readonly rpc: Rpc;
  readonly acceptor: Acceptor;
  readonly registry: Registry;
  readonly delivery: Delivery;
  readonly changes: MembershipChanges;
  readonly membership: Membership;
  readonly config: ClusterConfig;
  /** Whether requests are served (running or stopping). */
  readonly serving: () => boolean;
  readonly status: () => Omit<StatusReply, 'type' | 'rid'>;
  /** The member list and settings, to tell a removed node that it is out. */
  readonly gossip: () => GossipMsg;
  readonly clock: Clock;
  /** A grant another node (or this one) reports decided; `mv`: see DecidedMsg. */
  readonly decided: (name: string, b: Ballot, v: Value | null, seq: number, mv: number | undefined) => void;
  /** Handlers of node calls, by topic. */
  readonly calls: ReadonlyMap<string, (body: unknown, from: string) => unknown>;
  /** Runs work nobody waits for once this turn's outgoing frames have left (see Transport.afterFlush). */
  readonly afterFlush: (fn: () => void) => void;
}

/** Most live values a member sends a starting node; with more, the node waits an expiry period instead. */
const HELLO_ENTRIES = 4096;

/** At most one "you are not a member" answer per sender per this many ms. */
const NOTICE_INTERVAL_MS = 1000;

export class Inbox {
  readonly #p: InboxParts;
  readonly #peerInc = new Map<string, number>();
  readonly #noticed = new Map<string, number>();
  /** Grant notices ('own') waiting for this turn's replies to leave, in arrival order. */
  #notices: DecidedMsg[] = [];
  /** Acceptor requests served, and refused because the sender is not a member. */
  requests = 0;
  rejected = 0;

  constructor(parts: InboxParts) {
    this.#p = parts;
    parts.rpc.onRequest((from, m) => this.#onRequest(from, m));
  }

  /** One decoded frame from the transport. */
  onFrame(from: string, inc: number, messages: readonly Message[]): void {
    const known = this.#peerInc.get(from);
    // Traffic queued by a previous life of the peer is dropped.
    if (known !== undefined && inc < known) return;
    if (known !== inc) this.#peerInc.set(from, inc);
    const p = this.#p;
    const member = from === p.membership.self || p.membership.has(from);
    const joining = !p.membership.has(p.membership.self);
    for (const m of messages) {
      if (!member && !FROM_ANYONE.has(m.type) && !(joining && WHILE_JOINING.has(m.type))) {
        this.rejected++;
        this.#notice(from);
        continue;
      }
      p.rpc.dispatch(from, m);
    }
  }

  /**
   * A node missed a membership change: it is outside our member list and keeps talking to us (most
   * likely it was removed while it could not hear the change), or our acceptor refused it for an older
   * list. Our list tells it (a member gossip merges a newer list); rate-limited per sender.
   */
  #notice(from: string): void {
    const now = this.#p.clock.now();
    const last = this.#noticed.get(from);
    if (last !== undefined && now - last < NOTICE_INTERVAL_MS) return;
    this.#noticed.set(from, now);
    if (this.#noticed.size > 1024) this.#noticed.clear();
    this.#p.rpc.send(from, this.#p.gossip());
  }

  /**
   * A grant notice waits until this turn's frames have left. It changes no answer a peer is waiting
   * for, and notices ride in the same frames as requests (first), so handling them at once would put
   * learning a value, often a new entry, between a request and its reply. Notices keep their order.
   */
  #deferNotice(m: DecidedMsg): void {
    this.#notices.push(m);
    if (this.#notices.length > 1) return;
    this.#p.afterFlush(() => {
      const notices = this.#notices;
      this.#notices = [];
      if (!this.#p.serving()) return;
      for (const n of notices) this.#p.decided(n.name, n.b, n.v, n.seq, n.mv);
    });
  }

  #onRequest(from: string, m: RequestMsg | Message): void {
    const p = this.#p;
    if (!p.serving()) return;
    if (ACCEPTOR_REQUESTS.has(m.type)) {
      if (!p.membership.has(from)) {
        this.rejected++;
        return;
      }
      this.requests++;
    }
    const a = p.acceptor;
    const reply = (r: Message): void => p.rpc.send(from, r);
    // A vote refused for an older member list also tells the sender the current one.
    const vote = (r: Message & { why?: string }): void => {
      reply(r);
      if (r.why === 'stale') this.#notice(from);
    };
    switch (m.type) {
      case 'read': return reply(a.read(m));
      case 'prep': return vote(a.prepare(m));
      case 'com': return vote(a.commit(m));
      case 'abandon': return a.abandon(m);
      case 'renew': return vote(a.renew(from, m));
      case 'sync': {
        const r = a.sync(from, m);
        return r === undefined ? this.#notice(from) : reply(r);
      }
      case 'hello': {
        const live = a.liveEntries(HELLO_ENTRIES);
        const voting = a.voting;
        return reply(live === undefined
          ? { type: 'helloR', rid: m.rid, complete: false, voting }
          : { type: 'helloR', rid: m.rid, complete: true, entries: live.entries, unconfirmed: live.unconfirmed, voting });
      }
      case 'probe': return p.registry.probe(from, m);
      case 'hoff': return p.registry.handoffOffer(from, m);
      case 'hgo': return p.registry.handoffGo(from, m);
      case 'fwd': return p.registry.forwarded(from, m);
      case 'msg': return p.delivery.handle(from, m);
      case 'ping': return reply({ type: 'pong', rid: m.rid });
      case 'join': return p.changes.onJoin(from, m);
      case 'mget': return p.changes.onGet(from, m);
      case 'mset': return p.changes.onSet(from, m);
      case 'status': return reply({ type: 'statusR', rid: m.rid, ...p.status() });
      case 'own': return this.#deferNotice(m);
      case 'ncall': {
        const handler = p.calls.get(m.topic);
        if (handler === undefined) return reply({ type: 'ncallR', rid: m.rid, ok: false, err: 'not-found' });
        Promise.resolve()
          .then(() => handler(m.body, from))
          .then(
            (body) => reply(body === undefined ? { type: 'ncallR', rid: m.rid, ok: true } : { type: 'ncallR', rid: m.rid, ok: true, body }),
            () => reply({ type: 'ncallR', rid: m.rid, ok: false, err: 'failed' }),
          );
        return;
      }
      case 'gossip': {
        // From a member; or, to a node that is no longer in anyone's list, the news that it was removed.
        if (p.membership.has(from)) {
          p.membership.merge(m.members);
          p.config.merge(m.config);
          return;
        }
        // A node our list does not name, with a newer list naming both of us: we missed the changes that
        // added it (say we restarted and first heard a node that lagged behind them). Its list only.
        const names = (id: string): boolean => m.members.members.some((x) => x.id === id);
        if (m.members.version > p.membership.list().version && names(from) && names(p.membership.self)) {
          p.membership.merge(m.members);
          return;
        }
        // Most likely it was removed while it could not hear the change: our list tells it.
        this.rejected++;
        this.#notice(from);
        return;
      }
      default:
        return;
    }
  }
}
