import { timingSafeEqual } from 'node:crypto';
import type { DeviceTokens } from '../../device-token.js';

/**
 * The token the Mender device API answers to auth_requests (opaque to the client, which sends it
 * back as `Bearer`): `pwm1.<payload>.<mac>`, payload = base64url of `deviceId \n keyId \n issued \n
 * expiry \n SPKI-DER-base64`, mac = HMAC-SHA256 of the device-token secret (device-token.ts) over
 * "pwm1." + payload. It carries the key the device proved, because the auth request names no
 * product: the product (device_type) comes with the first inventory or deployments call, where the
 * device is admitted to it by the native rules (DeviceIdentityService.admitForeign).
 */
export interface MenderClaims {
  deviceId: string;
  keyId: string;
  publicKeyDer: Buffer;
  issuedAt: number;
  expiresAt: number;
}

const PREFIX = 'pwm1.';
/** An RSA 8192 key's DER is ~1.1 KB: base64 twice, plus the rest, fits. */
export const MAX_MENDER_TOKEN = 4096;

export class MenderTokens {
  constructor(private readonly tokens: DeviceTokens) {}

  mint(c: MenderClaims): string {
    const payload = Buffer.from([c.deviceId, c.keyId, c.issuedAt, c.expiresAt, c.publicKeyDer.toString('base64')].join('\n')).toString('base64url');
    return `${PREFIX}${payload}.${this.tokens.macFor(PREFIX, payload).toString('base64url')}`;
  }

  /** The claims of an unexpired token this server made; a reason otherwise. */
  verify(header: string | undefined, now: number): MenderClaims | string {
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) return 'no token: authenticate at auth_requests and send `Authorization: Bearer <token>`';
    const token = header.slice(7);
    if (token.length > MAX_MENDER_TOKEN || !token.startsWith(PREFIX)) return 'it is not a patchwire Mender token';
    const dot = token.indexOf('.', PREFIX.length);
    if (dot < 0) return 'it is not a patchwire Mender token';
    const payload = token.slice(PREFIX.length, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = this.tokens.macFor(PREFIX, payload);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return 'its signature does not verify (forged or from another server)';
    const [deviceId, keyId, iat, exp, der] = Buffer.from(payload, 'base64url').toString('utf8').split('\n');
    const issuedAt = Number(iat);
    const expiresAt = Number(exp);
    if (!deviceId || !keyId || !der || !Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt)) return 'it is malformed';
    if (expiresAt <= now) return `it expired at ${new Date(expiresAt).toISOString()}`;
    return { deviceId, keyId, publicKeyDer: Buffer.from(der, 'base64'), issuedAt, expiresAt };
  }
}
