/**
 * Wire messages: a union discriminated on `type`. Every request carries a request id (`rid`) chosen by
 * its sender; every reply echoes it and, where the protocol orders by ballots, the ballot it answers,
 * so a runner can drop stale replies.
 *
 * A frame between two nodes is `[PROTOCOL_VERSION, senderId, senderIncarnation, messages[]]`.
 */

/** Version of the wire protocol; a frame with another version is rejected. */
export const PROTOCOL_VERSION = 2;

/** Cluster-wide identity of an owner handle: its node, the node's incarnation, and a local number. */
export interface OwnerRef {
  readonly node: string;
  readonly inc: number;
  readonly id: number;
}

/** A proposal number: term first, then the proposing guard's id; totally ordered. */
export interface Ballot {
  /** The term; it is also the fencing token of the grant made with it. */
  readonly t: number;
  /** Cluster-unique guard id (`node/incarnation/n`). */
  readonly g: string;
}

/** The value an acceptor holds for a name while it is registered. */
export interface Value {
  readonly owner: OwnerRef;
  /** The node running the guard that renews this value. */
  readonly gnode: string;
  /** Heartbeat of that guard in ms; the value expires after 3 of them without renewal. */
  readonly hb: number;
  /** When set, the guard with this id may take the name over from this ballot (handoff). */
  readonly handoffTo?: string;
  /** Set on a grant that took the name over by handoff (ownership watches report it as such). */
  readonly via?: 'handoff';
}

/** What an acceptor reports about one name. */
export interface EntryView {
  /** Highest ballot promised, if any. */
  readonly promise?: Ballot;
  /** Ballot of the accepted value, if any. */
  readonly ballot?: Ballot;
  /** The accepted value; `null` is a tombstone (or nothing accepted when `ballot` is absent). */
  readonly value: Value | null;
  /** Version of the value under its ballot (handoff markers bump it). */
  readonly seq: number;
  /** True when the value has gone 3 heartbeats without renewal by this acceptor's clock. */
  readonly expired: boolean;
}

/** Why an acceptor refused. */
export type RefuseReason =
  /** A higher (or different) ballot is promised or accepted. */
  | 'ballot'
  /** A live value holds the name. */
  | 'held'
  /** The acceptor restarted without state and does not vote yet. */
  | 'recovering'
  /**
   * The sender's member list is older than this acceptor's: a guard or node that missed a membership
   * change could otherwise gather a majority of a list that is no longer the cluster's.
   */
  | 'stale';

/** How a prepare asks for the name. */
export type PrepareMode =
  /** Only if the name is free here (absent, tombstoned or expired). */
  | 'free'
  /** Take over `from`, whose owner its own node reported dead. */
  | 'takeover'
  /** Take over `from`, whose guard marked the value for this guard. */
  | 'handoff';

export interface ReadMsg { readonly type: 'read'; readonly rid: number; readonly name: string }
export interface ReadReply {
  readonly type: 'readR'; readonly rid: number; readonly name: string;
  readonly ok: boolean; readonly entry?: EntryView;
}

export interface PrepareMsg {
  readonly type: 'prep'; readonly rid: number; readonly name: string;
  readonly b: Ballot; readonly mode: PrepareMode; readonly from?: Ballot;
  /**
   * One-round-trip registration (mode 'free' only): an acceptor that promises `b` and holds no value
   * for the name (absent or tombstoned, not merely expired) also accepts `(b, v, seq 1)` at once.
   */
  readonly v?: Value;
  /**
   * The version of the member list whose majority the guard asks (see {@link CommitMsg.mv}); an
   * acceptor whose list is newer refuses (`stale`).
   */
  readonly mv?: number;
}
export interface PrepareReply {
  readonly type: 'prepR'; readonly rid: number; readonly name: string; readonly b: Ballot;
  readonly ok: boolean; readonly why?: RefuseReason;
  readonly entry?: EntryView;
  /** True when the prepare carried a value and this acceptor accepted it (seq 1) with the promise. */
  readonly acc?: boolean;
  /** Lowest term this acceptor will let a new grant use (terms of deleted entries, start floor). */
  readonly floor: number;
}

export interface CommitMsg {
  readonly type: 'com'; readonly rid: number; readonly name: string;
  readonly b: Ballot; readonly v: Value | null; readonly seq: number;
  /**
   * The version of the member list whose majority the guard asks: once this value is decided, a
   * majority of that list holds it (a membership change waits for every live value to be held so
   * under the current list). An acceptor whose list is newer refuses (`stale`).
   */
  readonly mv?: number;
}
export interface CommitReply {
  readonly type: 'comR'; readonly rid: number; readonly name: string; readonly b: Ballot; readonly seq: number;
  readonly ok: boolean; readonly why?: RefuseReason; readonly entry?: EntryView;
}

/**
 * The guard gave ballot `b` up without a grant: withdraw its promise, take back a value accepted with
 * it in one round trip (it becomes a void tombstone), and refuse `b`'s term from now on, so a prepare
 * of `b` still in flight cannot install anything. One way.
 */
export interface AbandonMsg { readonly type: 'abandon'; readonly name: string; readonly b: Ballot }

/** One renewal for every name a node's guards hold: a count and an order-free digest of (name, ballot, seq). */
export interface RenewMsg {
  readonly type: 'renew'; readonly rid: number; readonly hb: number;
  readonly count: number; readonly digest: number;
  /**
   * The newest member-list version a majority of which holds every name renewed here: the list of the
   * sender's last renewal round that a majority of it acked, lowered to the list version of any name
   * granted since that round was sent. Absent until a round has been acked.
   */
  readonly mv?: number;
  /** The version of the sender's member list; an acceptor whose list is newer refuses (`stale`). */
  readonly lv?: number;
}
export interface RenewReply {
  readonly type: 'renewR'; readonly rid: number; readonly ok: boolean;
  readonly count: number; readonly digest: number; readonly why?: RefuseReason;
}

/** One held registration in a sync: [name, ballot, value, seq]. */
export type SyncEntry = readonly [name: string, b: Ballot, v: Value, seq: number];

/** After a renewal mismatch: the full list of a node's held names, sent in parts, repairing each. */
export interface SyncMsg {
  readonly type: 'sync'; readonly rid: number; readonly hb: number;
  /** Part index and count; part 0 detaches every entry of the sender before applying. */
  readonly part: number; readonly parts: number;
  readonly entries: readonly SyncEntry[];
  /** The version of the sender's member list; an acceptor whose list is newer ignores the sync. */
  readonly lv?: number;
}
/** Per entry: true when installed or renewed; false with the acceptor's view when refused. */
export interface SyncReply {
  readonly type: 'syncR'; readonly rid: number; readonly part: number;
  readonly refused: readonly (readonly [index: number, entry: EntryView])[];
}

/** Is this owner alive, and does its guard hold `name` at `b` with a valid lease? */
export interface ProbeMsg { readonly type: 'probe'; readonly rid: number; readonly name: string; readonly owner: OwnerRef; readonly b: Ballot }
export interface ProbeReply { readonly type: 'probeR'; readonly rid: number; readonly alive: boolean; readonly holds: boolean }

/** Start-up: may I vote at once? Every member answers with the live values its acceptor holds. */
export interface HelloMsg { readonly type: 'hello'; readonly rid: number }
/** `complete`: `entries` lists every live value here (false when there are too many to send). */
export interface HelloReply {
  readonly type: 'helloR'; readonly rid: number; readonly complete: boolean; readonly entries?: readonly SyncEntry[];
  /**
   * Indexes into `entries` of values not known decided here (accepted, but neither renewed nor announced
   * by their guard yet): a value accepted in one round trip by a minority may be among them.
   */
  readonly unconfirmed?: readonly number[];
  /** Whether the answering acceptor votes (one still catching up may not know every live value). */
  readonly voting: boolean;
}

/** Handoff step 1: create a guard on the receiving node for `owner`, waiting to take `name` from `from`. */
export interface HandoffMsg {
  readonly type: 'hoff'; readonly rid: number; readonly name: string;
  readonly owner: OwnerRef; readonly from: Ballot;
}
export interface HandoffReply { readonly type: 'hoffR'; readonly rid: number; readonly ok: boolean; readonly guard?: string; readonly err?: ErrorCode }

/** Handoff step 2: the marker is committed; take the name. */
export interface HandoffGoMsg { readonly type: 'hgo'; readonly rid: number; readonly name: string; readonly guard: string; readonly seq: number }
export interface HandoffGoReply { readonly type: 'hgoR'; readonly rid: number; readonly ok: boolean; readonly token?: number; readonly err?: ErrorCode }

/** Forwarded `update`/`unregister`: run it where the guard lives. */
export interface ForwardMsg {
  readonly type: 'fwd'; readonly rid: number; readonly op: 'update' | 'unregister';
  readonly name: string; readonly b: Ballot; readonly owner?: OwnerRef;
}
export interface ForwardReply { readonly type: 'fwdR'; readonly rid: number; readonly ok: boolean; readonly err?: ErrorCode }

/** A message for an owner's mailbox; with `rid` > 0 the sender waits for the handler's result. */
export interface DeliverMsg {
  readonly type: 'msg'; readonly rid: number; readonly name: string; readonly to: OwnerRef;
  readonly body: unknown; readonly call: boolean;
}
export interface DeliverReply {
  readonly type: 'msgR'; readonly rid: number; readonly ok: boolean; readonly body?: unknown; readonly err?: ErrorCode;
}

/**
 * A grant a majority accepted, or (`v: null`) its release by the owner (one way, to every member):
 * ownership watches report decided changes only.
 */
export interface DecidedMsg {
  readonly type: 'own'; readonly name: string; readonly b: Ballot; readonly v: Value | null; readonly seq: number;
  /** The version of the member list a majority of which accepted the grant (see {@link CommitMsg.mv}). */
  readonly mv?: number;
}

/** Cluster-wide settings and the member list, spread by gossip. */
export interface GossipMsg {
  readonly type: 'gossip';
  readonly members: MemberList;
  readonly config: readonly ConfigEntry[];
}

/** The versioned member list: the majority base. */
export interface MemberList {
  readonly version: number;
  readonly members: readonly MemberInfo[];
}
/** A member: its id, where to reach it, and (with CURVE security on) its Z85 public key. */
export interface MemberInfo { readonly id: string; readonly endpoint: string; readonly publicKey?: string }

/** One cluster setting with its version (last writer wins by version, then node id). */
export interface ConfigEntry {
  readonly key: string; readonly value: number; readonly version: number; readonly by: string;
}

/** Membership change, step 1: what member list do you have? */
export interface MembersGetMsg { readonly type: 'mget'; readonly rid: number }
export interface MembersGetReply {
  readonly type: 'mgetR'; readonly rid: number; readonly members: MemberList;
  /** False while this member's acceptor holds a live value not known to sit on a majority of `members`. */
  readonly settled?: boolean;
}
/** Membership change, step 2: adopt this list (if newer); the change holds once a majority acked. */
export interface MembersSetMsg { readonly type: 'mset'; readonly rid: number; readonly members: MemberList }
export interface MembersSetReply { readonly type: 'msetR'; readonly rid: number; readonly version: number }

/** A node asks to join (sent to any member, from a node that may not be a member yet). */
export interface JoinMsg {
  readonly type: 'join'; readonly rid: number; readonly id: string; readonly endpoint: string; readonly publicKey?: string;
  /** The joiner's acceptor shard count: it must match the cluster's. */
  readonly shards: number;
}
/** `wasMember`: the id was already a member (a restart): it must not vote until it is safe. */
export interface JoinReply {
  readonly type: 'joinR'; readonly rid: number; readonly ok: boolean;
  readonly members?: MemberList; readonly wasMember?: boolean; readonly err?: ErrorCode;
  /** With err 'refused': the cluster's shard count, which the joiner's does not match. */
  readonly shards?: number;
}

/** A call from one node's component to the same component on another node (singletons use it). */
export interface NodeCallMsg { readonly type: 'ncall'; readonly rid: number; readonly topic: string; readonly body: unknown }
export interface NodeCallReply { readonly type: 'ncallR'; readonly rid: number; readonly ok: boolean; readonly body?: unknown; readonly err?: ErrorCode }

/** Operators' status query (`pes status`). */
export interface StatusMsg { readonly type: 'status'; readonly rid: number }
export interface StatusReply {
  readonly type: 'statusR'; readonly rid: number; readonly node: string; readonly members: MemberList;
  readonly live: readonly string[]; readonly held: number; readonly voting: boolean;
}

/** Application-level liveness probe (sees a blocked event loop, unlike ZMTP heartbeats). */
export interface PingMsg { readonly type: 'ping'; readonly rid: number }
export interface PongMsg { readonly type: 'pong'; readonly rid: number }

/** Stable error codes carried in replies. */
export type ErrorCode =
  | 'not-alive' | 'not-found' | 'not-registered' | 'no-consensus' | 'timeout' | 'stopped' | 'busy' | 'failed' | 'refused';

export type Message =
  | ReadMsg | ReadReply | PrepareMsg | PrepareReply | CommitMsg | CommitReply
  | AbandonMsg | RenewMsg | RenewReply | SyncMsg | SyncReply | ProbeMsg | ProbeReply | HelloMsg | HelloReply
  | HandoffMsg | HandoffReply | HandoffGoMsg | HandoffGoReply | ForwardMsg | ForwardReply
  | DeliverMsg | DeliverReply | GossipMsg | PingMsg | PongMsg
  | MembersGetMsg | MembersGetReply | MembersSetMsg | MembersSetReply | JoinMsg | JoinReply | StatusMsg | StatusReply
  | NodeCallMsg | NodeCallReply | DecidedMsg;

export type MessageType = Message['type'];

/** A frame: what one node sends another in one transport unit. */
export interface Frame {
  readonly version: number;
  readonly sender: string;
  readonly inc: number;
  readonly messages: readonly Message[];
}

/** Replies, by the request type they answer (used by the request/reply layer). */
export interface ReplyOf {
  read: ReadReply; prep: PrepareReply; com: CommitReply; renew: RenewReply;
  sync: SyncReply; probe: ProbeReply; hello: HelloReply; hoff: HandoffReply; hgo: HandoffGoReply;
  fwd: ForwardReply; msg: DeliverReply; ping: PongMsg; mget: MembersGetReply; mset: MembersSetReply;
  join: JoinReply; status: StatusReply; ncall: NodeCallReply;
}
export type RequestType = keyof ReplyOf;
export type RequestMsg = Extract<Message, { type: RequestType }>;
