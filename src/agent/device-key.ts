import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authSigningBytes, keyIdOf, PUBLIC_KEY_RE, type AuthRequest } from '../protocol/device-auth.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { AgentStateError } from './errors.js';

/** The device's own Ed25519 key pair (`.patchwire/device-key.json`, mode 0600): only it speaks for the device. */
export interface DeviceKey {
  /** Raw public key, 64 hex digits (what the server binds to the device). */
  publicKey: string;
  keyId: string;
  privateKey: KeyObject;
}

interface DeviceKeyFile {
  format: 1;
  type: 'ed25519';
  publicKey: string;
  /** PKCS#8 DER, hex. */
  privateKey: string;
}

export function deviceKeyPath(meta: string): string {
  return join(meta, 'device-key.json');
}

function rawPublicHex(key: KeyObject): string {
  const jwk = createPublicKey(key).export({ format: 'jwk' }) as { x: string };
  return Buffer.from(jwk.x, 'base64url').toString('hex');
}

/** A new key pair (not saved). */
export function generateDeviceKey(): DeviceKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = rawPublicHex(privateKey);
  return { publicKey, keyId: keyIdOf(publicKey), privateKey };
}

/**
 * The folder's device key; made and saved (atomically, 0600) when there is none, so a folder
 * initialised by an older agent gets one on its next check. Call it holding the folder lock. A
 * file that is there but unreadable is an error (a new key would look like another device).
 */
export async function ensureDeviceKey(meta: string): Promise<DeviceKey> {
  const known = await readDeviceKey(meta);
  if (known) return known;
  const key = generateDeviceKey();
  const doc: DeviceKeyFile = {
    format: 1, type: 'ed25519', publicKey: key.publicKey,
    privateKey: key.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('hex'),
  };
  await writeFileAtomic(deviceKeyPath(meta), `${JSON.stringify(doc)}\n`, 0o600);
  return key;
}

/** The folder's device key, or undefined when it has none yet (only a check, under the folder lock, makes one). */
export async function readDeviceKey(meta: string): Promise<DeviceKey | undefined> {
  const file = deviceKeyPath(meta);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseDeviceKey(text, file);
}

function parseDeviceKey(text: string, file: string): DeviceKey {
  const bad = (why: string) => new AgentStateError(`the device key ${file} is unusable (${why}): restore it from a backup; deleting it makes this folder a new device that the server will not accept for this MAC without \`patchwire devices accept\``, file);
  let doc: Partial<DeviceKeyFile>;
  try {
    doc = JSON.parse(text) as Partial<DeviceKeyFile>;
  } catch {
    throw bad('not JSON');
  }
  if (doc.format !== 1 || doc.type !== 'ed25519' || typeof doc.publicKey !== 'string' || !PUBLIC_KEY_RE.test(doc.publicKey) || typeof doc.privateKey !== 'string') {
    throw bad('not a patchwire device key');
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(doc.privateKey, 'hex'), format: 'der', type: 'pkcs8' });
  } catch {
    throw bad('the private key does not parse');
  }
  if (privateKey.asymmetricKeyType !== 'ed25519' || rawPublicHex(privateKey) !== doc.publicKey) throw bad('the public key does not match the private key');
  return { publicKey: doc.publicKey, keyId: keyIdOf(doc.publicKey), privateKey };
}

/** A signed auth request for this device (POST /v1/auth). */
export function signAuthRequest(key: DeviceKey, fields: Omit<AuthRequest, 'signature' | 'publicKey' | 'time'>, now: Date): AuthRequest {
  const unsigned = { ...fields, publicKey: key.publicKey, time: now.toISOString() };
  return { ...unsigned, signature: sign(null, authSigningBytes(unsigned), key.privateKey).toString('hex') };
}
