import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyPair } from '../../src/tuf/keys.js';
import { parseKeyPair } from '../../src/tuf/key-json.js';
import { jsonSigner } from '../../src/tuf/sign-json.js';
import type { SignedCheckAnswer, SignedCheckEnvelope } from '../../src/protocol/index.js';

/**
 * A compromised server, as tests play it: the online keys a real `patchwire serve` keeps in
 * `<data>/keys/online.json`, read back to sign what that server would never sign itself.
 */
export async function onlineKey(dataDir: string, role: 'snapshot' | 'timestamp' | 'deltas'): Promise<KeyPair> {
  const keys = JSON.parse(await readFile(join(dataDir, 'keys', 'online.json'), 'utf8')) as Record<string, unknown>;
  const pair = parseKeyPair(keys[role]);
  if (typeof pair === 'string') throw new Error(`${dataDir}/keys/online.json ${role}: ${pair}`);
  return pair;
}

/** A check answer's signed block re-signed with the server's real timestamp key. */
export async function resignAnswer(dataDir: string, signed: SignedCheckAnswer): Promise<SignedCheckEnvelope> {
  return { signed, signatures: [jsonSigner(await onlineKey(dataDir, 'timestamp'))(signed)] };
}
