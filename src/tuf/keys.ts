import { generateKeyPairSync, createPrivateKey, sign } from 'node:crypto';
import { open, readFile, unlink } from 'node:fs/promises';
import { Key, Signature } from '@tufjs/models';
import { keyIdOf, rawPublicHex } from './key-id.js';
import { parseKeyPair } from './key-json.js';

export { keyIdOf };

/**
 * Ed25519 keys (node:crypto) for TUF. A key file (`patchwire keygen --out FILE`, mode 0600) is
 * JSON: `{ "type": "patchwire-ed25519-key", "keyid", "public": <64 hex: raw 32-byte key>,
 * "private": <PKCS#8 PEM> }`. keyid = sha256 hex of the canonical JSON of the TUF key object
 * `{ keytype: 'ed25519', scheme: 'ed25519', keyval: { public } }` (as python-tuf computes it).
 */
export interface KeyPair {
  keyid: string;
  publicHex: string;
  privatePem: string;
}

/** Thrown for a key file that is missing, unreadable, or not a patchwire key; message says which. */
export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

const KEY_FILE_TYPE = 'patchwire-ed25519-key';

export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicHex = rawPublicHex(publicKey);
  return {
    keyid: keyIdOf(publicHex),
    publicHex,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** The @tufjs/models Key for a public key. */
export function tufKey(publicHex: string): Key {
  return new Key({ keyID: keyIdOf(publicHex), keyType: 'ed25519', scheme: 'ed25519', keyVal: { public: publicHex } });
}

/** A signer for Metadata.sign(). */
export function signerFor(pair: KeyPair): (data: Buffer) => Signature {
  // Parse the PEM once, not per signature: the server signs a timestamp per product per day.
  const privateKey = createPrivateKey(pair.privatePem);
  return (data) => new Signature({ keyID: pair.keyid, sig: sign(null, data, privateKey).toString('hex') });
}

export async function readKeyFile(path: string): Promise<KeyPair> {
  const hint = `(create one with \`patchwire keygen --out ${path}\`)`;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KeyFileError(`key file ${path} does not exist ${hint}`);
    if (code === 'EISDIR') throw new KeyFileError(`${path} is a folder, not a key file; pass the key file itself`);
    throw new KeyFileError(`cannot read key file ${path}: ${(err as Error).message} (check its permissions)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyFileError(`${path} is not a patchwire key file ${hint}`);
  }
  if (typeof json !== 'object' || json === null || (json as { type?: unknown }).type !== KEY_FILE_TYPE) {
    throw new KeyFileError(`${path} is not a patchwire key file ${hint}`);
  }
  const pair = parseKeyPair(json);
  if (typeof pair === 'string') {
    // A damaged key cannot be replaced by a new one: the product's root names this key.
    throw new KeyFileError(`key file ${path} is damaged: ${pair} (restore it from your backup)`);
  }
  return pair;
}

/** Writes a key file with mode 0600; refuses to overwrite an existing file (KeyFileError). */
export async function writeKeyFile(path: string, pair: KeyPair): Promise<void> {
  const body = JSON.stringify(
    { type: KEY_FILE_TYPE, keyid: pair.keyid, public: pair.publicHex, private: pair.privatePem },
    null,
    2,
  ) + '\n';
  let fh;
  try {
    // 'wx': overwriting a key would silently orphan every product signed with it.
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new KeyFileError(`${path} exists already; refusing to overwrite a key (choose another path or move the old file away first)`);
    }
    throw new KeyFileError(`cannot create key file ${path}: ${(err as Error).message} (check that the folder exists and is writable)`);
  }
  try {
    await fh.writeFile(body);
    await fh.sync();
    await fh.close();
  } catch (err) {
    // No partial key file may remain: a truncated key would look like a damaged backup later.
    await fh.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw new KeyFileError(`cannot write key file ${path}: ${(err as Error).message}`);
  }
}
