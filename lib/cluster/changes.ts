/**
 * Membership changes, one node at a time. A change is made under pes's own mutual exclusion: the
 * changing node registers the reserved name `$pes/members`, reads the newest member list from a majority
 * (so it builds on the last change even if gossip has not carried it here yet), applies one addition or
 * removal, and installs the result at a majority of both the old and the new list before releasing the
 * name. Since a majority of N and one of N±1 always overlap, the next change sees this one.
 * A second change started meanwhile is refused with a ConfigError. A change also waits until a
 * majority of the members says that every live value they hold is known to sit on a majority of the
 * current list (a value accepted under the previous list may sit on a majority of that list only).
 */
import type { Clock, TimerHandle } from '../clock.js';
import { AlreadyRegisteredError, ConfigError, NoConsensusError, TimeoutError } from '../errors.js';
import type { Owner } from '../owner.js';
import type { JoinMsg, MemberInfo, MemberList, MembersGetMsg, MembersSetMsg, Message } from '../protocol/messages.js';
import type { Registration } from '../registration.js';
import { request, type Rpc } from '../rpc.js';
import type { Membership } from './membership.js';

/** The reserved name that serialises membership changes. */
export const MEMBERSHIP_LOCK = '$pes/members';

export interface ChangeComponents {
  readonly clock: Clock;
  readonly rpc: Rpc;
  readonly membership: Membership;
  /** Lets the transport reach a peer that is not (yet) in the member list. */
  readonly addPeer: (peer: MemberInfo) => void;
  readonly removePeer: (id: string) => void;
  /** This node as a member (read when joining: the endpoint is known only after the transport started). */
  readonly self: () => MemberInfo;
  readonly spawn: () => Owner;
  readonly register: (name: string, owner: Owner) => Promise<Registration>;
  readonly phaseTimeout: number;
  /** This node's acceptor shard count (must be equal cluster-wide). */
  readonly shards: number;
  /**
   * Whether a majority of this node's current member list holds every live value its acceptor holds,
   * as far as their guards and nodes have vouched (see Acceptor.unsettled).
   */
  readonly settled: () => boolean;
  /** How long a change waits for the members to settle before it is refused, in ms. */
  readonly settleWait: () => number;
}

/** A watch for the member list that adds this node (see MembershipChanges.join). */
interface AddedWatch {
  /** Resolves with that list. */
  readonly list: Promise<MemberList>;
  /** Whether it came already. */
  readonly seen: boolean;
  cancel(): void;
}

export class MembershipChanges {
  readonly #c: ChangeComponents;

  constructor(components: ChangeComponents) {
    this.#c = components;
  }

  /**
   * Joins the cluster that the node at `endpoint` belongs to: asks it to add this node, then adopts the
   * resulting list. The join also counts as done when, meanwhile, a newer member list naming this node
   * as it is (same endpoint and key) reaches it, by the change's own install or by gossip: the change
   * that added it took effect even if its answer was lost (its seed may have died just after), and the
   * cluster already counts this node in its majorities.
   */
  async join(endpoint: string, publicKey: string | undefined, timeoutMs: number): Promise<MemberList> {
    const added = this.#addedAfter(this.#c.membership.list().version);
    try {
      return await this.#tryJoin(endpoint, publicKey, timeoutMs, added);
    } finally {
      added.cancel();
    }
  }

  /**
   * Joins through the seeds, trying each in turn (each try bounded by `attemptMs`) and again until
   * `timeoutMs`: a cluster that is busy with another change, or whose newest member does not vote yet,
   * answers no for a while. A shard-count mismatch is final. Done as soon as a newer list names this
   * node, also between tries.
   */
  async joinAny(seeds: readonly { readonly endpoint: string; readonly publicKey?: string }[], timeoutMs: number,
    attemptMs: number, running: () => boolean): Promise<MemberList> {
    const c = this.#c;
    const deadline = c.clock.now() + timeoutMs;
    const added = this.#addedAfter(c.membership.list().version);
    try {
      for (let round = 0; ; round++) {
        for (const seed of seeds) {
          if (added.seen) return c.membership.list();
          try {
            return await this.#tryJoin(seed.endpoint, seed.publicKey, Math.min(attemptMs, Math.max(1, deadline - c.clock.now())), added);
          } catch (e) {
            if (e instanceof ConfigError && e.key === 'shards') throw e;
            if (c.clock.now() >= deadline || !running()) throw e;
          }
        }
        // The pause ends early when a list adds this node meanwhile; its timer is never left behind.
        let timer: TimerHandle | undefined;
        await Promise.race([
          added.list,
          new Promise<void>((resolve) => { timer = c.clock.setTimeout(resolve, Math.min(2000, c.phaseTimeout * 2 ** Math.min(round, 4))); }),
        ]);
        c.clock.clearTimeout(timer);
      }
    } finally {
      added.cancel();
    }
  }

  /** One try through the seed at `endpoint`, done early when `added` sees a list naming this node. */
  async #tryJoin(endpoint: string, publicKey: string | undefined, timeoutMs: number, added: AddedWatch): Promise<MemberList> {
    const done = new AbortController();
    try {
      return await Promise.race([this.#askToJoin(endpoint, publicKey, timeoutMs, done.signal), added.list]);
    } finally {
      // Whichever came first, the other is called off: no request or timer outlives the try.
      done.abort();
    }
  }

  /** Watches for a member list newer than `since` that names this node with its own endpoint and key. */
  #addedAfter(since: number): AddedWatch {
    const c = this.#c;
    const me = c.self();
    let seen = false;
    let cancel = (): void => {};
    const list = new Promise<MemberList>((resolve) => {
      cancel = c.membership.onChange(() => {
        const l = c.membership.list();
        const entry = l.members.find((m) => m.id === me.id);
        if (l.version <= since || entry?.endpoint !== me.endpoint || entry.publicKey !== me.publicKey) return;
        seen = true;
        cancel();
        resolve(l);
      });
    });
    return { list, get seen() { return seen; }, cancel: () => cancel() };
  }

  /** One join request through the seed at `endpoint`, called off when `cancel` aborts. */
  async #askToJoin(endpoint: string, publicKey: string | undefined, timeoutMs: number, cancel: AbortSignal): Promise<MemberList> {
    const c = this.#c;
    const seed = `seed:${endpoint}`;
    c.addPeer(publicKey === undefined ? { id: seed, endpoint } : { id: seed, endpoint, publicKey });
    try {
      const { id, endpoint: own, publicKey: key } = c.self();
      const shards = c.shards;
      // The seed answers under its own id, which this node does not know yet: any reply to this id counts.
      const reply = await request(c.rpc, c.clock, seed, (rid) => (key === undefined
        ? { type: 'join', rid, id, endpoint: own, shards } : { type: 'join', rid, id, endpoint: own, publicKey: key, shards }), timeoutMs,
        undefined, cancel);
      if (reply === undefined) throw new TimeoutError('join', timeoutMs);
      if (reply.type === 'joinR' && reply.err === 'refused' && reply.shards !== undefined) {
        throw new ConfigError('shards', `the cluster uses ${reply.shards} shards, this node ${c.shards}`);
      }
      if (reply.type !== 'joinR' || !reply.ok || reply.members === undefined) {
        throw reply.type === 'joinR' && reply.err === 'busy'
          ? new ConfigError('members', 'another membership change is in progress')
          : new NoConsensusError(MEMBERSHIP_LOCK, 0, 1);
      }
      // A joiner takes the cluster's list whatever its own version.
      c.membership.replace(reply.members);
      return reply.members;
    } finally {
      c.removePeer(seed);
    }
  }

  /** A node asks to join through this member. */
  onJoin(from: string, m: JoinMsg): void {
    const c = this.#c;
    if (from !== m.id) return;
    if (m.shards !== c.shards) {
      // Acceptors split names into shards; nodes that split differently must not form one cluster.
      c.addPeer({ id: m.id, endpoint: m.endpoint, ...(m.publicKey === undefined ? {} : { publicKey: m.publicKey }) });
      c.rpc.send(from, { type: 'joinR', rid: m.rid, ok: false, err: 'refused', shards: c.shards });
      return;
    }
    const member: MemberInfo = m.publicKey === undefined ? { id: m.id, endpoint: m.endpoint } : { id: m.id, endpoint: m.endpoint, publicKey: m.publicKey };
    c.addPeer(member);
    const wasMember = c.membership.has(m.id);
    this.add(member).then(
      (members) => c.rpc.send(from, { type: 'joinR', rid: m.rid, ok: true, members, wasMember }),
      (e: unknown) => c.rpc.send(from, { type: 'joinR', rid: m.rid, ok: false, err: e instanceof ConfigError ? 'busy' : 'no-consensus' }),
    );
  }

  /** mget: this node's list, for a change in progress elsewhere. */
  onGet(from: string, m: MembersGetMsg): void {
    if (this.#c.membership.has(from)) {
      this.#c.rpc.send(from, { type: 'mgetR', rid: m.rid, members: this.#c.membership.list(), settled: this.#c.settled() });
    }
  }

  /** mset: adopt a changed list (from a member; from anyone in the new list only while this node joins). */
  onSet(from: string, m: MembersSetMsg): void {
    const c = this.#c;
    const joining = !c.membership.has(c.membership.self);
    if (!c.membership.has(from) && !(joining && m.members.members.some((x) => x.id === from))) return;
    for (const x of m.members.members) c.addPeer(x);
    c.membership.merge(m.members);
    c.rpc.send(from, { type: 'msetR', rid: m.rid, version: c.membership.list().version });
  }

  /** Adds a member; returns the new list. An id already present with the same endpoint is a no-op. */
  add(member: MemberInfo): Promise<MemberList> {
    return this.#change((list) => {
      const existing = list.members.find((m) => m.id === member.id);
      if (existing?.endpoint === member.endpoint && existing.publicKey === member.publicKey) return undefined;
      const others = list.members.filter((m) => m.id !== member.id);
      return { version: list.version + 1, members: [...others, member] };
    });
  }

  /** Removes a member (also a dead one); refuses to remove the last one. */
  remove(id: string): Promise<MemberList> {
    return this.#change((list) => {
      if (!list.members.some((m) => m.id === id)) throw new ConfigError('members', `not a member: ${id}`);
      if (list.members.length === 1) throw new ConfigError('members', 'cannot remove the last member');
      return { version: list.version + 1, members: list.members.filter((m) => m.id !== id) };
    });
  }

  async #change(apply: (latest: MemberList) => MemberList | undefined): Promise<MemberList> {
    const c = this.#c;
    const owner = c.spawn();
    let lock: Registration | undefined;
    try {
      try {
        lock = await c.register(MEMBERSHIP_LOCK, owner);
      } catch (e) {
        if (e instanceof AlreadyRegisteredError) throw new ConfigError('members', 'another membership change is in progress');
        throw e;
      }
      const latest = await this.#settledNewest();
      c.membership.merge(latest);
      const next = apply(latest);
      if (next === undefined) return latest;
      await this.#install(latest, next);
      c.membership.merge(next);
      return next;
    } finally {
      // Released before answering, so a node that joined finds nothing live when it asks whether it may vote.
      await lock?.unregister().catch(() => {});
      owner.exit('done');
    }
  }

  /**
   * The newest list among a majority of members' answers, once a majority of that list answers settled
   * under it: each live value it holds is known to sit on a majority of the list (its guard asked that
   * list, or its node's renewals under it were acked by a majority of it). A value accepted under the
   * previous list is on a majority of that list, which every majority of the current one meets (so a
   * settled majority includes a holder that vouches for it); until renewals have copied it onto a
   * majority of the current list, a second change could form a majority without any copy of it (and
   * grant the name to a second owner). Waits up to `settleWait` (a lease period and a heartbeat: by then
   * every such value is renewed or has expired), asking again every few phases; then refuses.
   * @throws ConfigError while the members do not settle in time; NoConsensusError when fewer than a
   * majority answer.
   */
  async #settledNewest(): Promise<MemberList> {
    const c = this.#c;
    const deadline = c.clock.now() + c.settleWait();
    // Settled under list `v`: a member that still has an older list answered for that one.
    const settledUnder = (r: Message, v: number): boolean => r.type === 'mgetR' && r.settled === true && r.members.version >= v;
    for (;;) {
      const own = c.membership.list();
      const members = c.membership.ids();
      const need = Math.floor(members.length / 2) + 1;
      // Every member is asked and heard until a majority answers settled under this list (or all answered).
      let settledHere = 0;
      const replies = await this.#ask(members, { type: 'mget', rid: 0 }, members.length, (_from, r) => {
        if (settledUnder(r, own.version)) settledHere++;
        return settledHere >= need;
      });
      let newest = own;
      let answered = 0;
      for (const r of replies) {
        if (r.type !== 'mgetR') continue;
        answered++;
        if (r.members.version > newest.version) newest = r.members;
      }
      // A newer list than ours: ask its members instead (their majority is the one that must be settled).
      if (newest.version > own.version && c.membership.merge(newest) && c.clock.now() < deadline) continue;
      // A majority's answers meet every holder of a value accepted under the previous list.
      if (replies.filter((r) => settledUnder(r, newest.version)).length >= need) return newest;
      const left = deadline - c.clock.now();
      if (left <= 0) {
        if (answered < need) throw new NoConsensusError(MEMBERSHIP_LOCK, answered, need);
        throw new ConfigError('members', 'a live name has not been renewed since the last membership change; retry later');
      }
      await new Promise<void>((resolve) => c.clock.setTimeout(resolve, Math.min(left, c.phaseTimeout * 2)));
    }
  }

  /** Installs `next` at a majority of the old list and a majority of the new one. */
  async #install(old: MemberList, next: MemberList): Promise<void> {
    const oldIds = old.members.map((m) => m.id);
    const newIds = next.members.map((m) => m.id);
    const all = [...new Set([...oldIds, ...newIds])];
    for (const m of next.members) this.#c.addPeer(m);
    const acked = new Set<string>();
    await this.#ask(all, { type: 'mset', rid: 0, members: next }, all.length, (from, r) => {
      if (r.type === 'msetR' && r.version >= next.version) acked.add(from);
      const okOld = oldIds.filter((id) => acked.has(id)).length >= Math.floor(oldIds.length / 2) + 1;
      const okNew = newIds.filter((id) => acked.has(id)).length >= Math.floor(newIds.length / 2) + 1;
      return okOld && okNew;
    });
    const okOld = oldIds.filter((id) => acked.has(id)).length >= Math.floor(oldIds.length / 2) + 1;
    const okNew = newIds.filter((id) => acked.has(id)).length >= Math.floor(newIds.length / 2) + 1;
    if (!okOld || !okNew) throw new NoConsensusError(MEMBERSHIP_LOCK, acked.size, Math.floor(all.length / 2) + 1);
  }

  /**
   * Sends `msg` to `peers` and collects replies until `enough` returns true, `need` replies came, or
   * a few phases passed.
   */
  #ask(peers: readonly string[], msg: Message & { rid: number }, need: number,
    enough?: (from: string, reply: Message) => boolean): Promise<Message[]> {
    const c = this.#c;
    return new Promise((resolve) => {
      const replies: Message[] = [];
      const seen = new Set<string>();
      const done = (): void => {
        c.rpc.close(rid);
        c.clock.clearTimeout(timer);
        resolve(replies);
      };
      const rid = c.rpc.open((from, reply) => {
        if (seen.has(from) || !peers.includes(from)) return;
        seen.add(from);
        replies.push(reply);
        if (enough?.(from, reply) === true || replies.length >= need) done();
      });
      const timer = c.clock.setTimeout(done, c.phaseTimeout * 4);
      for (const p of peers) c.rpc.send(p, { ...msg, rid } as Message);
    });
  }
}
