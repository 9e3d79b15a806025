/**
 * CURVE key files for the `pes` command. A key file is what `pes keygen` prints ("public: <Z85>" and
 * "secret: <Z85>" lines), or just the secret key on one line. Key format itself is checked by the
 * transport, which rejects a malformed key with InvalidArgumentError.
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';

/** What a key file holds: always the secret key, the public key when the file has it. */
export interface KeyFile {
  readonly secretKey: string;
  readonly publicKey: string | undefined;
}

/** A CURVE key pair, Z85. */
export interface KeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}

/** Formats a key pair as a key file (what `pes keygen` prints). */
export function formatKeyFile(pair: KeyPair): string {
  return `public: ${pair.publicKey}\nsecret: ${pair.secretKey}\n`;
}

/**
 * Parses key file text: `label: KEY` lines (labels `public` and `secret`), or one bare key (the secret).
 * Z85 keys may contain `:` and `#`, so only the first `": "` separates a label and nothing is a comment.
 * @throws InvalidArgumentError (argument `curve-secret`) when no secret key is found.
 */
export function parseKeyFile(text: string): KeyFile {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  let secretKey: string | undefined;
  let publicKey: string | undefined;
  for (const line of lines) {
    const labelled = /^(public|secret)(?:[ _-]?key)?\s*:\s*(\S+)$/i.exec(line);
    if (labelled !== null) {
      const key = labelled[2] ?? '';
      if (labelled[1]?.toLowerCase() === 'public') publicKey = key;
      else secretKey = key;
    } else if (lines.length === 1) {
      secretKey = line;
    }
  }
  if (secretKey === undefined) {
    throw new InvalidArgumentError('curve-secret', 'the key file holds no secret key (expected "secret: <Z85>" or one bare key)');
  }
  return { secretKey, publicKey };
}

/**
 * Reads a key pair: the secret from `file`, the public key from `publicKey` or else from the file.
 * @throws InvalidArgumentError when the file cannot be read, has no secret or no public key is known,
 * or the file's public key differs from `publicKey`.
 */
export async function loadKeyPair(file: string, publicKey: string | undefined): Promise<KeyPair> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError('curve-secret', `cannot read key file ${file}: ${(e as Error).message}`);
  }
  const keys = parseKeyFile(text);
  if (publicKey !== undefined && keys.publicKey !== undefined && publicKey !== keys.publicKey) {
    throw new InvalidArgumentError('curve-public', '--curve-public differs from the public key in the key file');
  }
  const pub = publicKey ?? keys.publicKey;
  if (pub === undefined) throw new InvalidArgumentError('curve-public', 'the key file holds no public key: give --curve-public');
  return { publicKey: pub, secretKey: keys.secretKey };
}
