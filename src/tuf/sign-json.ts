import { createPrivateKey, sign } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import type { KeyPair } from './keys.js';

/**
 * A signer of plain JSON objects the way TUF signs metadata: Ed25519 over the canonical JSON
 * (@tufjs/canonical-json, the canonicalisation @tufjs/models uses), so one verifier serves both.
 * The PEM is parsed once, here, not per signature (the check path signs every answer).
 */
export function jsonSigner(pair: KeyPair): (signed: object) => { keyid: string; sig: string } {
  const privateKey = createPrivateKey(pair.privatePem);
  return (signed) => ({ keyid: pair.keyid, sig: sign(null, Buffer.from(canonicalize(signed)), privateKey).toString('hex') });
}
