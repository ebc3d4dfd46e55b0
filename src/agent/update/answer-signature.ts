import { createPublicKey, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalize } from '@tufjs/canonical-json';

/** At most this many signatures are looked at (a hostile answer may send thousands). */
const MAX_SIGNATURES = 8;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows. */
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * True when at least the timestamp role's threshold of its keys, as the trusted root in `tufDir`
 * names them (verified by tuf-js when it was stored), signed the canonical JSON of `signed`.
 */
export async function signedByTimestampRole(tufDir: string, signed: Record<string, unknown>, signatures: unknown[]): Promise<boolean> {
  const root = JSON.parse(await readFile(join(tufDir, 'root.json'), 'utf8')) as { signed: { keys: Record<string, { keytype?: string; keyval?: { public?: string } }>; roles: { timestamp: { keyids: string[]; threshold: number } } } };
  const role = root.signed.roles.timestamp;
  const bytes = Buffer.from(canonicalize(signed));
  const good = new Set<string>();
  for (const sig of signatures.slice(0, MAX_SIGNATURES)) {
    if (typeof sig !== 'object' || sig === null || Array.isArray(sig)) continue;
    const s = sig as Record<string, unknown>;
    if (typeof s.keyid !== 'string' || typeof s.sig !== 'string' || !role.keyids.includes(s.keyid)) continue;
    const key = root.signed.keys[s.keyid];
    const pub = key?.keyval?.public;
    if (key?.keytype !== 'ed25519' || typeof pub !== 'string' || !/^[0-9a-f]{64}$/.test(pub) || !/^[0-9a-f]{128}$/.test(s.sig)) continue;
    const spki = createPublicKey({ key: Buffer.concat([ED25519_SPKI, Buffer.from(pub, 'hex')]), format: 'der', type: 'spki' });
    if (verify(null, bytes, spki, Buffer.from(s.sig, 'hex'))) good.add(s.keyid);
  }
  // A threshold below 1 would accept no signature at all: never.
  return good.size >= Math.max(1, role.threshold);
}

