import { createHash, type KeyObject } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';

/** Raw 32-byte Ed25519 public key in hex: the last 32 bytes of the SPKI DER encoding. */
export function rawPublicHex(publicKey: KeyObject): string {
  return publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex');
}

/** sha256 hex of the canonical JSON of the TUF key object, as python-tuf computes keyids. */
export function keyIdOf(publicHex: string): string {
  const keyObject = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: publicHex } };
  return createHash('sha256').update(canonicalize(keyObject)).digest('hex');
}
