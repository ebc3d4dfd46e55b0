/**
 * The Mender auth request's checks (compat/mender/auth.ts), and its route with a real server:
 * bodies arrive chunked, without Content-Length, as the client's local proxy sends them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, constants } from 'node:crypto';
import { request } from 'node:http';
import { verifyMenderAuth, MAX_AUTH_BODY } from '../src/server/compat/mender/auth.js';
import { ApiError } from '../src/server/api-error.js';
import { startServer } from './helpers/cli.js';
import { tempDir } from './helpers/temp-dir.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 });
const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

function body(o: { mac?: string; pubkey?: string } = {}): Buffer {
  return Buffer.from(JSON.stringify({ id_data: JSON.stringify({ mac: o.mac ?? '02:00:00:00:aa:01' }), tenant_token: '', pubkey: o.pubkey ?? pem }) + '\n');
}
const sig = (b: Buffer, key = rsa.privateKey) => sign('sha256', b, { key, padding: constants.RSA_PKCS1_PADDING }).toString('base64');

function refusal(fn: () => unknown, code: string, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ApiError && err.code === code && re.test(err.message));
}

test('a correctly signed request names the device by its mac and carries its key', () => {
  const b = body({ mac: '02-00-00-00-AA-01' });
  const a = verifyMenderAuth(b, sig(b));
  assert.equal(a.deviceId, '02:00:00:00:aa:01');
  assert.deepEqual(a.publicKeyDer, rsa.publicKey.export({ type: 'spki', format: 'der' }));
});

test('a wrong signature, or a body that is not the one signed, is refused', () => {
  const b = body();
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  refusal(() => verifyMenderAuth(b, sig(b, other.privateKey)), 'PW_DEVICE_AUTH', /not signed by the key it presents/);
  const changed = body({ mac: '02:00:00:00:aa:02' });
  refusal(() => verifyMenderAuth(changed, sig(b)), 'PW_DEVICE_AUTH', /not signed by the key it presents/);
  // One byte more (the client's trailing newline dropped, say) is another body.
  refusal(() => verifyMenderAuth(b.subarray(0, b.length - 1), sig(b)), 'PW_DEVICE_AUTH', /not signed/);
  refusal(() => verifyMenderAuth(b, undefined), 'PW_DEVICE_AUTH', /no X-MEN-Signature/);
  refusal(() => verifyMenderAuth(b, 'not base64!'), 'PW_DEVICE_AUTH', /no X-MEN-Signature/);
});

test('a key that is not RSA, or too small, is refused', () => {
  const ed = generateKeyPairSync('ed25519');
  const edBody = body({ pubkey: ed.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
  refusal(() => verifyMenderAuth(edBody, sign(null, edBody, ed.privateKey).toString('base64')), 'PW_DEVICE_AUTH', /ed25519 key; the Mender device API takes RSA/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecBody = body({ pubkey: ec.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
  refusal(() => verifyMenderAuth(ecBody, sign('sha256', ecBody, ec.privateKey).toString('base64')), 'PW_DEVICE_AUTH', /ec key/);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const smallBody = body({ pubkey: small.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
  refusal(() => verifyMenderAuth(smallBody, sig(smallBody, small.privateKey)), 'PW_DEVICE_AUTH', /RSA 1024; use 2048 to 8192 bits/);
  refusal(() => verifyMenderAuth(body({ pubkey: 'not a key' }), 'AAAA'), 'PW_DEVICE_AUTH', /not a PEM public key/);
});

test('a public exponent from 3 to 2^32-1 is taken; a larger one is refused before the verify (its cost grows with its bits)', () => {
  const three = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
  const b3 = body({ pubkey: three.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
  assert.equal(verifyMenderAuth(b3, sig(b3, three.privateKey)).deviceId, '02:00:00:00:aa:01');
  const n = (rsa.publicKey.export({ format: 'jwk' }) as { n: string }).n;
  for (const e of [Buffer.from([1, 0, 0, 0, 1]), Buffer.from(n, 'base64url').subarray(1)]) {
    const key = createPublicKey({ key: { kty: 'RSA', n, e: e.toString('base64url') }, format: 'jwk' });
    const b = body({ pubkey: key.export({ type: 'spki', format: 'pem' }).toString() });
    refusal(() => verifyMenderAuth(b, 'AAAA'), 'PW_DEVICE_AUTH', /public exponent has \d+ bits; it must be from 3 to 2\^32-1/);
  }
});

test('an oversize body, a body that is not JSON, or an identity without a mac is refused', () => {
  const big = Buffer.alloc(MAX_AUTH_BODY + 1, 0x20);
  refusal(() => verifyMenderAuth(big, 'AAAA'), 'PW_BAD_REQUEST', /more than the 16384 allowed/);
  refusal(() => verifyMenderAuth(Buffer.from('{'), 'AAAA'), 'PW_BAD_REQUEST', /not JSON/);
  const noMac = Buffer.from(JSON.stringify({ id_data: JSON.stringify({ serial: '1' }), tenant_token: '', pubkey: pem }));
  refusal(() => verifyMenderAuth(noMac, sig(noMac)), 'PW_BAD_REQUEST', /no usable mac attribute/);
});

/** A request with a chunked body (no Content-Length), as the Mender client's proxy sends it. */
function chunked(url: string, path: string, headers: Record<string, string>, parts: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    for (const p of parts) req.write(p);
    req.end();
  });
}

test('the route: a signed chunked request gets a token; an oversize chunked body 413; a forged token 401', { timeout: 120_000 }, async (t) => {
  const server = await startServer(await tempDir(t), { token: 'mender-auth-admin-token' });
  t.after(() => server.stop());
  const path = '/api/devices/v1/authentication/auth_requests';
  const b = body();
  const ok = await chunked(server.url, path, { 'x-men-signature': sig(b), authorization: 'Bearer' }, [b.subarray(0, 100), b.subarray(100)]);
  assert.equal(ok.status, 200, ok.body);
  assert.match(ok.body, /^pwm1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

  const bad = await chunked(server.url, path, { 'x-men-signature': sig(body({ mac: '02:00:00:00:aa:09' })) }, [b]);
  assert.equal(bad.status, 401, bad.body);
  assert.equal((JSON.parse(bad.body) as { code: string }).code, 'PW_DEVICE_AUTH');

  const parts = Array.from({ length: 40 }, () => Buffer.alloc(1024, 0x20));
  const big = await chunked(server.url, path, { 'x-men-signature': 'AAAA' }, parts).catch((err: Error) => ({ status: -1, body: err.message }));
  assert.ok(big.status === 413 || big.status === -1, `an oversize chunked body is refused: ${big.status} ${big.body}`);

  // A token with one character changed is not this server's (the changed one is the next-to-last:
  // it was compared with the last, so 1 time in 64 the 'forged' token was the real one).
  const forged = ok.body.slice(0, -2) + (ok.body.at(-2) === 'A' ? 'B' : 'A') + ok.body.slice(-1);
  const inv = await new Promise<number>((resolve, reject) => {
    const req = request(`${server.url}/api/devices/v2/deployments/device/deployments/next`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${forged}` } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end(JSON.stringify({ device_provides: { artifact_name: 'x', device_type: 'acme' } }));
  });
  assert.equal(inv, 401);
});
