/**
 * The seam between the protocol and the network. A transport moves frames of messages between nodes,
 * batches what is sent to one peer within one event-loop turn into one frame, and reports whether each
 * peer is reachable. Delivery is best effort: messages may be lost, duplicated or reordered, and the
 * protocol above copes (every reply carries its request id and ballot; requests are retried).
 */
import type { Message } from '../protocol/messages.js';

/** A peer the transport should talk to. */
export interface PeerAddress {
  readonly id: string;
  readonly endpoint: string;
}

/** What the transport hands up for every frame that decoded and passed validation. */
export type FrameHandler = (from: string, incarnation: number, messages: readonly Message[]) => void;

/** Reachability changes of a peer. */
export type LivenessHandler = (peer: string, up: boolean) => void;

/** Counters every transport keeps. */
export interface TransportStats {
  framesSent: number;
  framesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  /** Frames that failed decoding or validation; they changed nothing. */
  badFrames: number;
  /** Messages dropped because the peer was unreachable or its queue was full. */
  dropped: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface Transport {
  /** This node's id (unique in the cluster). */
  readonly id: string;
  /** This node's incarnation: a number that rises with every start of a node with this id. */
  readonly incarnation: number;
  /** The endpoint peers reach this node at (resolved, e.g. an ephemeral port made concrete). */
  readonly endpoint: string;
  /** Begins receiving. Frames from peers arrive at `onFrame`; reachability changes at `onLiveness`. */
  start(onFrame: FrameHandler, onLiveness: LivenessHandler): Promise<void>;
  /**
   * Queues `message` for `peer`. Messages queued in the same turn travel in one frame. Never throws.
   * A `lazy` message (a notice nobody waits for) may wait a few milliseconds to share a frame with later
   * ones; it still goes out before any message queued for the same peer after it.
   */
  send(peer: string, message: Message, lazy?: boolean): void;
  /**
   * Runs `fn` once the messages queued so far in this turn have been handed to the network. Work that
   * no peer waits for (a notice) goes here so that the replies of the turn leave first. A transport that
   * hands messages over at once may omit it; callers then run `fn` in a microtask.
   */
  afterFlush?(fn: () => void): void;
  /** Starts talking to a peer (idempotent). */
  addPeer(peer: PeerAddress): void;
  /** Stops talking to a peer (idempotent). */
  removePeer(peer: string): void;
  /** Whether the peer currently looks reachable. The local node is always reachable. */
  reachable(peer: string): boolean;
  stats(): TransportStats;
  /** Closes everything; idempotent; pending messages are dropped. */
  stop(): Promise<void>;
}

/** A fresh, zeroed stats record. */
export function emptyTransportStats(): TransportStats {
  return {
    framesSent: 0, framesReceived: 0, messagesSent: 0, messagesReceived: 0,
    badFrames: 0, dropped: 0, bytesSent: 0, bytesReceived: 0,
  };
}
