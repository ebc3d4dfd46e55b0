/**
 * Device authentication, both sides (docs/protocol.md, "POST /v1/auth"): the auth request a device
 * signs with its Ed25519 key, the canonical bytes of that signature, and the key id. The agent
 * builds and signs; the server verifies with the same function, so the two cannot drift.
 */
import { createHash } from 'node:crypto';

/** POST /v1/auth */
export interface AuthRequest {
  deviceId: string;
  product: string;
  channel: string;
  /** The device's Ed25519 public key: the raw 32 bytes, 64 lower-case hex digits. */
  publicKey: string;
  /** The device's clock, ISO-8601 UTC; the server refuses a time outside its skew window. */
  time: string;
  installId?: string;
  /** Ed25519 signature over authSigningBytes(this), 128 hex digits. */
  signature: string;
}

/** The answer of an accepted auth: a bearer token for /v1/check and /v1/report. */
export interface AuthResponse {
  token: string;
  expiresAt: string;
  status: 'accepted';
  keyId: string;
}

export const PUBLIC_KEY_RE = /^[0-9a-f]{64}$/;
export const SIGNATURE_RE = /^[0-9a-f]{128}$/;
export const AUTH_CONTEXT = 'patchwire-auth-v1';

/**
 * The bytes a device signs: the context string and the fields, in this order, joined by `\n`
 * (installId empty when absent), UTF-8. No field may hold a newline (the schemas refuse one).
 */
export function authSigningBytes(r: Omit<AuthRequest, 'signature'>): Buffer {
  return Buffer.from([AUTH_CONTEXT, r.deviceId, r.product, r.channel, r.publicKey, r.time, r.installId ?? ''].join('\n'), 'utf8');
}

/** A key's id: the first 32 hex digits of the sha256 of its raw 32 bytes. */
export function keyIdOf(publicKeyHex: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyHex, 'hex')).digest('hex').slice(0, 32);
}
