import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { normaliseMac } from '../../../protocol/mac.js';
import { ApiError } from '../../api-error.js';

/**
 * The Mender client's auth request (docs/compat.md, "Mender"): `POST
 * /api/devices/v1/authentication/auth_requests` with `{"id_data","tenant_token","pubkey"}` and
 * `X-MEN-Signature`: base64 RSA PKCS#1 v1.5 SHA-256 over the exact body bytes, by the key the body
 * carries (PEM, SubjectPublicKeyInfo). The check proves the sender holds that key's private half;
 * who the device is comes from its `mac` identity attribute.
 */
export interface MenderAuth {
  /** The MAC of id_data's `mac`, normalised (the patchwire device id). */
  deviceId: string;
  /** The key as SubjectPublicKeyInfo DER. */
  publicKeyDer: Buffer;
}

/** Longest auth body: an RSA 8192 PEM is ~1.5 KB and an identity a few lines. */
export const MAX_AUTH_BODY = 16 * 1024;
const MAX_ID_DATA = 4096;
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;
/**
 * Largest public exponent: the verify's cost grows with the exponent's bits, and OpenSSL bounds it
 * (64 bits) only above 3072-bit moduli. A 3072-bit key with a 3,071-bit exponent made each verify
 * ~30x dearer than e=65537 (~9 ms of the event loop per unauthenticated request, found by an
 * attacker). The Mender client (Go's rsa.GenerateKey) and OpenSSL use 65537.
 */
const MAX_RSA_EXPONENT = 2n ** 32n - 1n;

const bad = (msg: string) => new ApiError('PW_BAD_REQUEST', msg);
const refused = (msg: string) => new ApiError('PW_DEVICE_AUTH', msg);

/** Verifies a Mender auth request; throws PW_BAD_REQUEST (malformed) or PW_DEVICE_AUTH (key or signature refused). */
export function verifyMenderAuth(body: Buffer, signature: string | string[] | undefined): MenderAuth {
  if (body.length > MAX_AUTH_BODY) throw bad(`the auth request is ${body.length} bytes, more than the ${MAX_AUTH_BODY} allowed`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad('the auth request body is not JSON: send {"id_data","tenant_token","pubkey"} as the Mender client does');
  }
  const b = parsed as { id_data?: unknown; pubkey?: unknown; tenant_token?: unknown };
  if (typeof parsed !== 'object' || parsed === null || typeof b.id_data !== 'string' || typeof b.pubkey !== 'string') {
    throw bad('the auth request needs id_data (the identity as a JSON string) and pubkey (a PEM public key)');
  }
  if (b.id_data.length > MAX_ID_DATA) throw bad(`id_data is ${b.id_data.length} characters, more than the ${MAX_ID_DATA} allowed`);
  const key = rsaKey(b.pubkey);
  if (typeof signature !== 'string' || signature.length === 0 || signature.length > 4096 || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) {
    throw refused('the auth request has no X-MEN-Signature header (base64 RSA PKCS#1 v1.5 SHA-256 signature of the body)');
  }
  let ok = false;
  try {
    ok = verify('sha256', body, { key, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw refused('the auth request is not signed by the key it presents (X-MEN-Signature must sign the exact body with the device key)');
  let identity: unknown;
  try {
    identity = JSON.parse(b.id_data);
  } catch {
    throw bad('id_data is not a JSON object of identity attributes');
  }
  const mac = typeof identity === 'object' && identity !== null ? (identity as Record<string, unknown>).mac : undefined;
  const deviceId = normaliseMac(Array.isArray(mac) ? mac[0] : mac);
  if (!deviceId) {
    throw bad(`id_data has no usable mac attribute (${JSON.stringify(mac ?? null)}): patchwire names Mender devices by MAC; make the identity script print mac=aa:bb:cc:dd:ee:ff`);
  }
  return { deviceId, publicKeyDer: key.export({ type: 'spki', format: 'der' }) };
}

/** The PEM as an RSA public key of 2048-8192 bits, else PW_DEVICE_AUTH. */
function rsaKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw refused('pubkey is not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'rsa') throw refused(`pubkey is a ${key.asymmetricKeyType ?? 'unknown'} key; the Mender device API takes RSA keys (the Mender client's default)`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) throw refused(`pubkey is RSA ${bits}; use ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits (the Mender client makes 3072)`);
  const e = key.asymmetricKeyDetails?.publicExponent ?? 0n;
  if (e < 3n || e > MAX_RSA_EXPONENT) {
    throw refused(`pubkey's public exponent has ${e.toString(2).length} bits; it must be from 3 to 2^32-1 (keys made by the Mender client and OpenSSL have 65537): make the device key again`);
  }
  return key;
}
