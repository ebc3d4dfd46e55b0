import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { KeyPair } from './keys.js';
import { keyIdOf, rawPublicHex } from './key-id.js';

/**
 * Checks that `value` is a complete, self-consistent key pair: the private key is an Ed25519
 * PKCS#8 PEM, the public key is the one derived from it, and the keyid matches. Shared by
 * publisher key files and the server's online key file so both refuse a damaged key the same
 * way. Returns the pair, or a text that says what is wrong.
 */
export function parseKeyPair(value: unknown): KeyPair | string {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v.public !== 'string' || !/^[0-9a-f]{64}$/.test(v.public)) return '"public" is not 64 lower-case hex characters';
  if (typeof v.private !== 'string' || !v.private.includes('PRIVATE KEY')) return '"private" is not a PEM private key';
  if (typeof v.keyid !== 'string') return '"keyid" is missing';
  let derived: string;
  try {
    const priv = createPrivateKey(v.private);
    if (priv.asymmetricKeyType !== 'ed25519') return `"private" is a ${priv.asymmetricKeyType} key, not ed25519`;
    derived = rawPublicHex(createPublicKey(priv));
  } catch (err) {
    return `"private" does not parse (${(err as Error).message})`;
  }
  if (derived !== v.public) return '"public" does not belong to "private"';
  if (v.keyid !== keyIdOf(v.public)) return '"keyid" does not match "public"';
  return { keyid: v.keyid, publicHex: v.public, privatePem: v.private };
}
