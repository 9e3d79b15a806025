/**
 * CURVE security for the ZeroMQ mesh: key pairs, Z85 text keys, and a ZAP handler (ZeroMQ RFC 27) that
 * admits only the public keys of the cluster. Socket plumbing for `zmq.ts`; nothing else imports it.
 */
import * as zmq from 'zeromq';

/** A CURVE key pair as 40-character Z85 strings. */
export interface CurveKeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}

/** CURVE settings of a node: its own key pair and the public keys allowed to connect to its inbox. */
export interface CurveOptions extends CurveKeyPair {
  /** Z85 public keys of every node of the cluster (this node's own included, for self-tests). */
  readonly allow: readonly string[];
}

/** Creates a fresh CURVE key pair (libsodium via libzmq). */
export function generateCurveKeyPair(): CurveKeyPair {
  const { publicKey, secretKey } = zmq.curveKeyPair();
  return { publicKey, secretKey };
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

/** True when `key` looks like a Z85-encoded 32-byte CURVE key. */
export function isZ85Key(key: string): boolean {
  return Z85_KEY.test(key);
}

/** Z85-encodes bytes whose length is a multiple of 4 (a 32-byte key gives 40 characters). */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.byteLength % 4 !== 0) throw new RangeError('z85 input length must be a multiple of 4');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = '';
  for (let i = 0; i < bytes.byteLength; i += 4) {
    let v = view.getUint32(i);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85[v % 85] + chunk;
      v = Math.floor(v / 85);
    }
    out += chunk;
  }
  return out;
}

/** The ZAP domain the inbox declares; a request for any other domain is refused. */
export const ZAP_DOMAIN = 'pes';

/**
 * A ZAP handler bound on `inproc://zeromq.zap.01` of one ZeroMQ context. libzmq asks it about every
 * CURVE handshake on that context's server sockets; it answers 200 only for an allow-listed client key.
 *
 * Why one per context: the ZAP endpoint is a fixed inproc name, so two nodes in one process (tests)
 * would collide on the shared default context. Each transport owns its context and its handler.
 *
 * Why a handler at all: without one, libzmq admits any client key that completes the handshake with
 * the server's public key (measured with zeromq 6.8.0).
 */
export class ZapAuthenticator {
  readonly #socket: zmq.Router;
  readonly #allow: ReadonlySet<string>;
  #closed = false;

  constructor(context: zmq.Context, allow: readonly string[]) {
    this.#socket = new zmq.Router({ context, linger: 0 });
    this.#allow = new Set(allow);
  }

  /** Binds the ZAP endpoint and starts answering; resolves once bound (before any handshake needs it). */
  async start(): Promise<void> {
    await this.#socket.bind('inproc://zeromq.zap.01');
    void this.#serve();
  }

  async #serve(): Promise<void> {
    try {
      // One request at a time, so there is never a second concurrent send on this socket.
      for await (const request of this.#socket) {
        if (this.#closed) return;
        await this.#socket.send(this.#answer(request));
      }
    } catch {
      // The socket was closed under a pending receive or send: the transport is stopping.
    }
  }

  /** Builds the reply to one request: [route, empty, version, request id, status, text, user id, metadata]. */
  #answer(request: readonly Buffer[]): (Buffer | string)[] {
    const [route, empty, version, requestId, domain, , , mechanism, ...credentials] = request;
    const head = [route ?? '', empty ?? '', '1.0', requestId ?? ''];
    const key = credentials.length === 1 && credentials[0]?.byteLength === 32 ? z85Encode(credentials[0]) : undefined;
    const ok = version?.toString() === '1.0' && domain?.toString() === ZAP_DOMAIN
      && mechanism?.toString() === 'CURVE' && key !== undefined && this.#allow.has(key);
    // The user id carries the client key. libzmq attaches it to the connection's messages as metadata,
    // which zeromq.js 6 does not expose, so the key cannot be tied to a node id at receive time.
    return ok ? [...head, '200', 'OK', key ?? '', ''] : [...head, '400', 'key not allowed', '', ''];
  }

  /** Closes the handler socket; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }
}
