import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Store } from '../store/store.js';
import { settingOnce } from './setting-once.js';

/**
 * Device tokens (docs/protocol.md, "POST /v1/auth"): stateless, `pwd1.<payload>.<mac>`, both
 * base64url; payload = `deviceId \n product \n keyId \n issued \n expiry` (epoch milliseconds), mac =
 * HMAC-SHA256(secret, "pwd1." + payload). Verifying is one HMAC and no store read, so the check
 * path stays cheap; every process of one database verifies with the secret kept in its settings.
 */
export interface DeviceTokenClaims {
  deviceId: string;
  product: string;
  keyId: string;
  /** Epoch milliseconds. */
  issuedAt: number;
  expiresAt: number;
}

const PREFIX = 'pwd1.';
const SECRET_SETTING = 'device_token_secret';
/** Longest token accepted (a MAC, a 64-character name, a key id and a time fit in far less). */
export const MAX_TOKEN_LENGTH = 512;

/**
 * Tokens verified once are remembered (a device sends the same token for its whole lifetime), so
 * a check costs one map lookup instead of an HMAC. Only tokens whose MAC verified enter, keyed by
 * the whole token (a tampered payload under a genuine MAC is another key, refused by the HMAC).
 * The identity check's confirmation rides on the same entry (it used to be a second set). At most
 * this many, the oldest go first (~0.6 KB each). A fleet larger than this that checks hourly
 * mostly misses (each device comes back after all the others): a miss is one HMAC (~5 us) and, in
 * device-identity.ts, one prepared point read of the identity (bench/fleet.ts).
 */
const VERIFIED_CACHE = 200_000;

/** Claims of a verified token, and whether this process confirmed them against the stored identity. */
export interface VerifiedToken extends DeviceTokenClaims {
  /** Set by the identity check (device-identity.ts) once the store agreed; in-memory revocations still apply. */
  confirmed: boolean;
}

export class DeviceTokens {
  /** The secret as a KeyObject, made once: an HMAC per token miss then skips importing the key (bench/fleet.ts). */
  private secret: KeyObject | undefined;
  private readonly verified = new Map<string, VerifiedToken>();

  /**
   * The secret from the store's settings, made (32 random bytes) on the first start, once for the
   * database: processes starting together agree on it, so each verifies the others' tokens.
   */
  async load(store: Store): Promise<void> {
    const { value } = await settingOnce(store, SECRET_SETTING, () => randomBytes(32).toString('hex'));
    this.secret = createSecretKey(Buffer.from(value, 'hex'));
  }

  mint(c: DeviceTokenClaims): string {
    const payload = Buffer.from(`${c.deviceId}\n${c.product}\n${c.keyId}\n${c.issuedAt}\n${c.expiresAt}`, 'utf8').toString('base64url');
    return `${PREFIX}${payload}.${this.mac(payload).toString('base64url')}`;
  }

  /**
   * `mint`, for a device whose identity the caller has just read as accepted and bound to
   * `c.keyId` (POST /v1/auth): the token is remembered as verified and confirmed, so the check
   * that follows an auth in this process costs a map lookup, not an HMAC and an identity read.
   * Revocations still apply to it (device-identity.ts checks them before the confirmation).
   */
  mintConfirmed(c: DeviceTokenClaims): string {
    const token = this.mint(c);
    this.remember(token, { ...c, confirmed: true });
    return token;
  }

  /** The claims of a token this server made and that has not expired at `now`; a reason otherwise. */
  verify(token: string, now: number): VerifiedToken | string {
    const known = this.verified.get(token);
    if (known) return known.expiresAt > now ? known : `it expired at ${new Date(known.expiresAt).toISOString()}`;
    const claims = this.verifyMac(token, now);
    if (typeof claims === 'string') return claims;
    const entry: VerifiedToken = { ...claims, confirmed: false };
    this.remember(token, entry);
    return entry;
  }

  private remember(token: string, entry: VerifiedToken): void {
    if (this.verified.size >= VERIFIED_CACHE) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, entry);
  }

  private verifyMac(token: string, now: number): DeviceTokenClaims | string {
    if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(PREFIX)) return 'it is not a patchwire device token';
    const dot = token.indexOf('.', PREFIX.length);
    if (dot < 0) return 'it is not a patchwire device token';
    const payload = token.slice(PREFIX.length, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const want = this.mac(payload);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return 'its signature does not verify (forged or from another server)';
    const [deviceId, product, keyId, iat, exp] = Buffer.from(payload, 'base64url').toString('utf8').split('\n');
    const issuedAt = Number(iat);
    const expiresAt = Number(exp);
    if (!deviceId || !product || !keyId || !Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt)) return 'it is malformed';
    if (expiresAt <= now) return `it expired at ${new Date(expiresAt).toISOString()}`;
    return { deviceId, product, keyId, issuedAt, expiresAt };
  }

  /**
   * The same secret's HMAC over another kind of token, told apart by its prefix (`pwm1.`: the
   * Mender device API's, compat/mender/token.ts), so no token of one kind verifies as the other.
   */
  macFor(prefix: string, payload: string): Buffer {
    if (prefix === PREFIX) throw new Error('internal error: macFor is for other token kinds');
    if (!this.secret) throw new Error('internal error: device tokens used before load()');
    return createHmac('sha256', this.secret).update(prefix).update(payload).digest();
  }

  private mac(payload: string): Buffer {
    if (!this.secret) throw new Error('internal error: device tokens used before load()');
    // One update of the joined string: the same bytes as PREFIX then payload, one call fewer.
    return createHmac('sha256', this.secret).update(PREFIX + payload).digest();
  }
}
