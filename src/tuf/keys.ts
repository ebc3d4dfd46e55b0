import type { Key, Signature } from '@tufjs/models';

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

export declare function generateKeyPair(): KeyPair;
export declare function keyIdOf(publicHex: string): string;
/** The @tufjs/models Key for a public key. */
export declare function tufKey(publicHex: string): Key;
/** A signer for Metadata.sign(). */
export declare function signerFor(pair: KeyPair): (data: Buffer) => Signature;
export declare function readKeyFile(path: string): Promise<KeyPair>;
/** Writes a key file with mode 0600; refuses to overwrite an existing file (KeyFileError). */
export declare function writeKeyFile(path: string, pair: KeyPair): Promise<void>;
