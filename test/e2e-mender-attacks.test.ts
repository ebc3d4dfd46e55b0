/**
 * The Mender device API under attack (the attack12 slice; docs/security.md "Mender and hawkBit
 * devices under attack"): a real `patchwire serve`, the real CLI, a hostile Mender client made
 * here speaking over real HTTP on 127.0.0.1. The attacker holds RSA keys of its own, tokens the
 * server gave it, and knows MACs; it does not hold the admin token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { ServerClock } from './helpers/server-clock.js';
import { deviceSession } from './helpers/device-session.js';
import { tempPgDatabase } from './helpers/postgres.js';
import { tempDir } from './helpers/temp-dir.js';
import { rolloutPlacement } from '../src/protocol/rollout.js';
import type { DeviceDetail } from '../src/protocol/wire.js';

const TOKEN = 'e2e-mender-attacks-token';
const STORES = (process.env.PATCHWIRE_STORES ?? 'sqlite,postgres').split(',');
const mac = (i: number): string => `02:00:00:12:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

interface Answer { status: number; text: string; code?: string; message?: string; headers: Headers }

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let code: string | undefined;
  let message: string | undefined;
  try {
    ({ code, message } = JSON.parse(text) as { code?: string; message?: string });
  } catch { /* not JSON */ }
  return { status: res.status, text, code, message, headers: res.headers };
}

/** A hostile Mender client: its own key, any MAC, and raw access to every call. */
function client(server: string, mac: string, keys = generateKeyPairSync('rsa', { modulusLength: 2048 })) {
  let token = '';
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => answer(await fetch(`${server}/api/devices${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  }));
  const authBody = (m = mac, pub: KeyObject = keys.publicKey) =>
    Buffer.from(JSON.stringify({ id_data: JSON.stringify({ mac: m }), tenant_token: '', pubkey: pub.export({ type: 'spki', format: 'pem' }) }));
  const sig = (b: Buffer, key = keys.privateKey) => sign('sha256', b, { key, padding: constants.RSA_PKCS1_PADDING }).toString('base64');
  const authRaw = async (body: Buffer, signature?: string) => answer(await fetch(`${server}/api/devices/v1/authentication/auth_requests`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'x-men-signature': signature } : {}) }, body: new Uint8Array(body),
  }));
  return {
    keys,
    get token() { return token; },
    set token(t: string) { token = t; },
    authBody, sig, authRaw, call,
    async auth(): Promise<Answer> {
      const b = authBody();
      const r = await authRaw(b, sig(b));
      if (r.status === 200) token = r.text;
      return r;
    },
    inventory: (deviceType = 'acme', headers?: Record<string, string>) => call('PUT', '/v1/inventory/device/attributes', [{ name: 'device_type', value: deviceType }, { name: 'artifact_name', value: 'factory' }], headers),
    next: (artifactName: string, deviceType = 'acme') => call('POST', '/v2/deployments/device/deployments/next', { device_provides: { artifact_name: artifactName, device_type: deviceType } }),
    status: (id: string, status: string) => call('PUT', `/v1/deployments/device/deployments/${id}/status`, { status }),
    log: (id: string, messages: unknown) => call('PUT', `/v1/deployments/device/deployments/${id}/log`, { messages }),
  };
}

/** A body sent chunked (no Content-Length), as the Mender client's local proxy sends bodies. */
function chunked(url: string, method: string, parts: Buffer[], headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => (/EPIPE|ECONNRESET/.test(String(err)) ? resolve(413) : reject(err)));
    for (const p of parts) req.write(p);
    req.end();
  });
}

const show = (f: Fleet, m: string): Promise<DeviceDetail> => runJson<DeviceDetail>(['devices', 'show', m, ...f.admin(), '--product', 'acme', '--json']);
/** Files in the server's artifact store (one per stored artifact). */
async function storedArtifacts(f: Fleet): Promise<number> {
  const dir = join(f.root, 'server', 'artifacts');
  let n = 0;
  for (const shard of await readdir(dir)) if (shard !== 'tmp') n += (await readdir(join(dir, shard))).length;
  return n;
}

test('Mender auth under attack: no, wrong or another key\'s signature, a key with a huge exponent (CPU), forged, truncated, expired and rejected tokens; nothing recorded by a refused call', { timeout: 300_000 }, async (t) => {
  const clock = new ServerClock(join(await tempDir(t, 'patchwire-mender-attacks-clock-'), 'clock'));
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-mender-attacks-', server: { env: clock.env }, releases: [['1.0.0', { VERSION: '1.0.0' }]] });
  assert.equal((await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/opt/acme'])).code, 0);
  const A = mac(1);
  const a = client(f.server.url, A);

  // Signatures: none, by another key, over another body; the other device's body under our key.
  const body = a.authBody();
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
  for (const [what, b, s] of [
    ['no signature', body, undefined],
    ['empty signature', body, ''],
    ['signed by another key', body, a.sig(body, stranger.privateKey)],
    ['another body under this signature', a.authBody(mac(2)), a.sig(body)],
    ['the signature of a body with another key in it', a.authBody(A, stranger.publicKey), a.sig(body)],
  ] as Array<[string, Buffer, string | undefined]>) {
    const r = await a.authRaw(b, s);
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    assert.equal(r.code, 'PW_DEVICE_AUTH', what);
  }

  // A public exponent of 3,071 bits makes every RSA verify a full-size modular exponentiation
  // (7.3 ms of the event loop per unauthenticated request against 1.1 ms for a real device's auth,
  // bench/mender-auth.ts): refused before any verify, with a reason.
  const n = (a.keys.publicKey.export({ format: 'jwk' }) as { n: string }).n;
  const bigE = Buffer.from(n, 'base64url');
  bigE[0] = bigE[0]! >> 1;
  bigE[bigE.length - 1] = bigE[bigE.length - 1]! | 1;
  const heavy = createPublicKey({ key: { kty: 'RSA', n, e: bigE.toString('base64url') }, format: 'jwk' });
  const heavyBody = a.authBody(A, heavy);
  const refusedHeavy = await a.authRaw(heavyBody, randomBytes(256).toString('base64'));
  assert.equal(refusedHeavy.status, 401, refusedHeavy.text);
  assert.equal(refusedHeavy.code, 'PW_DEVICE_AUTH');
  assert.match(refusedHeavy.message ?? '', /public exponent .*65537/);
  assert.equal((await f.devices()).length, 0, 'no refused auth recorded anything');

  // Tokens: a real one works; forged, truncated, another prefix, no Bearer do not.
  assert.equal((await a.auth()).status, 200);
  const real = a.token;
  assert.match(real, /^pwm1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const [, payload, mac64] = real.split('.') as [string, string, string];
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const otherMac = Buffer.from(Buffer.from(payload, 'base64url').toString().replace(A, mac(3))).toString('base64url');
  for (const [what, tok] of [
    ['a changed signature', `pwm1.${payload}.${flip(mac64, mac64.length - 2)}`],
    ['another MAC in the payload', `pwm1.${otherMac}.${mac64}`],
    ['truncated', real.slice(0, real.length - 10)],
    ['without its signature', `pwm1.${payload}`],
    ['another prefix', real.replace(/^pwm1\./, 'pwm2.')],
    ['an agent token\'s shape', `pwd1.${payload}.${mac64}`],
    ['empty', ''],
  ]) {
    a.token = tok!;
    const r = await a.inventory();
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    assert.equal(r.code, 'PW_DEVICE_TOKEN', what);
  }
  assert.equal((await a.inventory('acme', { authorization: 'Basic eDp5' })).code, 'PW_DEVICE_TOKEN', 'no Bearer');
  // A native agent's real token here, and this Mender token at the native check: neither kind verifies as the other.
  const agent = await deviceSession(f.server.url, mac(5));
  assert.equal((await a.inventory('acme', agent.headers)).code, 'PW_DEVICE_TOKEN', 'an agent token on the Mender API');
  const asAgent = await fetch(`${f.server.url}/v1/check`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${real}` }, body: JSON.stringify({ deviceId: A, product: 'acme', channel: 'stable' }) });
  assert.equal(asAgent.status, 401, 'a Mender token on the native check');
  assert.deepEqual((await f.devices()).map((d) => d.deviceId), [mac(5)], 'no forged token recorded anything (the agent enrolled itself)');
  a.token = real;
  assert.equal((await a.inventory()).status, 200);
  assert.equal((await f.devices()).length, 2);

  // device_type naming another product: an unknown one is 404 and records nothing.
  const hop = await a.inventory('no-such-product');
  assert.equal(hop.status, 404, hop.text);

  // Rejected: its token stops at once, a new auth gets a token that stops at the same place.
  assert.equal((await runCli(['devices', 'reject', A, ...f.admin(), '--product', 'acme'])).code, 0);
  const rejected = await a.next('factory');
  assert.equal(rejected.status, 401, rejected.text);
  assert.equal(rejected.code, 'PW_MENDER_DEVICE');
  assert.equal((await a.auth()).status, 200);
  assert.equal((await a.next('factory')).code, 'PW_MENDER_DEVICE');
  assert.equal((await show(f, A)).history.length, 0);

  // Expired: the server's clock moves past the token's hour (--device-token-ttl 1h).
  const B = client(f.server.url, mac(4));
  assert.equal((await B.auth()).status, 200);
  assert.equal((await B.inventory()).status, 200);
  await clock.passTime(new Date(), 3600_000 + 60_000);
  const expired = await B.next('factory');
  assert.equal(expired.status, 401, expired.text);
  assert.equal(expired.code, 'PW_DEVICE_TOKEN');
  assert.match(expired.message ?? '', /expired at/);
  assert.equal((await B.auth()).status, 200, 'a new auth gives a new token');
  assert.equal((await B.next('factory')).status, 200);
});

test('Mender deployments under attack: statuses of a deployment never offered (a staged release, an unknown one) are refused at once; path tricks in ids; a malformed failure log loses nothing; the download serves no other blob and builds nothing for a stranger', { timeout: 300_000 }, async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-mender-attacks-d-', releases: [['1.0.0', { VERSION: '1.0.0' }]] });
  assert.equal((await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/opt/acme'])).code, 0);
  // A device outside the first phase of 1.1.0 (1%), at 1.0.0.
  const O = Array.from({ length: 50 }, (_, i) => mac(100 + i)).find((m) => rolloutPlacement(m, 'acme', '1.1.0') >= 2)!;
  const o = client(f.server.url, O);
  assert.equal((await o.auth()).status, 200);
  const first = await o.next('factory');
  assert.equal(first.status, 200, first.text);
  for (const s of ['downloading', 'installing', 'success']) assert.equal((await o.status('acme@1.0.0', s)).status, 204, s);
  assert.equal((await show(f, O)).device.version, '1.0.0');
  const staged = await f.publish('1.1.0', { VERSION: '1.1.0' }, { extra: ['--rollout', '1%,100%', '--every', '1h', '--halt-at', '10%', '--min-devices', '1'] });
  assert.equal(staged.code, 0, staged.stderr);
  assert.equal((await o.next('1.0.0')).status, 204, 'not offered: outside the phase');
  const before = (await show(f, O)).history.length;

  // Every status about 1.1.0 is refused: it was never offered to this device. `failure` was
  // answered 204 and held for its log (30 s), then dropped with a warning: the device was told
  // nothing, and a device could keep 1,000 such waits (the cap for every device) busy.
  for (const s of ['downloading', 'installing', 'success', 'already-installed', 'failure']) {
    const r = await o.status('acme@1.1.0', s);
    assert.equal(r.status, 409, `${s}: ${r.status} ${r.text}`);
    assert.equal(r.code, 'PW_NOT_OFFERED', s);
  }
  // A release that does not exist: 404 at once (it was 204, then a warning 30 s later).
  const unknown = await o.status('acme@9.9.9', 'failure');
  assert.equal(unknown.status, 404, unknown.text);
  assert.equal(unknown.code, 'PW_UNKNOWN_RELEASE');
  const rollouts = await (await f.adminGet<{ rollouts: Array<{ state: string }> }>('/rollouts?product=acme')).rollouts;
  assert.equal(rollouts[0]!.state, 'active', 'the refused failure did not halt the rollout (--min-devices 1)');

  // Deployment ids with path tricks, very long, unicode, no product, no version: 404, nothing recorded.
  for (const id of ['..%2F..%2Facme@1.0.0', 'acme@1.0.0%2F..', '%2E%2E@1.0.0', 'acme@..%2F1.0.0', `${'a'.repeat(300)}@1.0.0`, `acme@1.0.0-${'x'.repeat(300)}`,
    'acm%C3%A9@1.0.0', '@1.0.0', 'acme@', 'acme', 'acme@1.0.0@1.0.0', 'acme%001.0.0', 'acme@1.0.0%00']) {
    const r = await o.status(id, 'success');
    // Over Fastify's 100-character parameter bound: 414.
    assert.equal(r.status, id.length > 100 ? 414 : 404, `${id}: ${r.status} ${r.text}`);
  }
  assert.equal((await show(f, O)).history.length, before, 'no refused status recorded anything');

  // A legitimate failure, then a log whose messages are not objects: 400 (it was a 500 that had
  // already dropped the waiting failure, so the device's failure was never recorded); the real log
  // that follows is attached.
  const C = client(f.server.url, mac(200));
  assert.equal((await C.auth()).status, 200);
  assert.equal((await C.next('factory')).status, 200);
  assert.equal((await C.status('acme@1.0.0', 'failure')).status, 204);
  for (const messages of [[null], ['a string'], [1, { message: 'x' }], [[]]]) {
    const r = await C.log('acme@1.0.0', messages);
    assert.equal(r.status, 400, `${JSON.stringify(messages)}: ${r.status} ${r.text}`);
    assert.match(r.message ?? '', /each message is an object/);
  }
  assert.equal((await C.log('acme@1.0.0', Array.from({ length: 10_001 }, () => ({ message: 'x' })))).status, 400, 'more than 10,000 messages');
  assert.equal((await C.log('acme@1.0.0', [{ level: 'error', message: 'the real log line' }])).status, 204);
  const failed = (await show(f, mac(200))).history[0]!;
  assert.equal(failed.event, 'failed');
  assert.match(failed.error ?? '', /the real log line$/);

  // The download needs no token, so it is a stranger's: only the artifact the URL's product,
  // version and hash name is served. The release's own archive (another blob in the store, by its
  // sha), another version's artifact or a made-up hash: 404.
  const dep = JSON.parse(first.text) as { artifact: { source: { uri: string } } };
  const sha = /([0-9a-f]{64})\.mender$/.exec(dep.artifact.source.uri)![1]!;
  const [rel100] = (await f.releases()).filter((r) => r.version === '1.0.0');
  const dl = (p: string) => fetch(`${f.server.url}/api/devices/v1/download/${p}`);
  assert.equal((await dl(`acme/1.0.0/${sha}.mender`)).status, 200);
  for (const p of [`acme/1.0.0/${rel100!.sha256}.mender`, `acme/1.1.0/${sha}.mender`, `acme/1.0.0/${'0'.repeat(64)}.mender`, `acme/1.0.0/${sha}`,
    `acme/1.0.0/..%2F..%2F${sha}.mender`, `acme/..%2F1.0.0/${sha}.mender`, `beta/1.0.0/${sha}.mender`]) {
    const r = await dl(p);
    assert.equal(r.status, 404, `${p}: ${r.status}`);
  }

  // A stranger (no token) names a release no Mender device was offered and a made-up hash: the
  // server built that release's Mender artifact (decompressing and hashing its whole tree, then
  // writing a copy to the store) before it answered 404. Now nothing is built for a hash the
  // store does not hold.
  const stored = await storedArtifacts(f);
  assert.equal((await f.publish('1.2.0', { VERSION: '1.2.0', 'big.bin': randomBytes(200_000).toString('hex') })).code, 0);
  const published = await storedArtifacts(f);
  assert.ok(published > stored);
  for (let i = 0; i < 3; i++) assert.equal((await dl(`acme/1.2.0/${randomBytes(32).toString('hex')}.mender`)).status, 404);
  assert.equal(await storedArtifacts(f), published, 'no Mender artifact was built for a stranger\'s request');
  // A device offered 1.2.0 gets it built, and its URL serves it.
  const D = client(f.server.url, mac(201));
  assert.equal((await D.auth()).status, 200);
  const dep2 = await D.next('1.0.0');
  assert.equal(dep2.status, 200, dep2.text);
  assert.equal((await fetch((JSON.parse(dep2.text) as typeof dep).artifact.source.uri)).status, 200);
  assert.equal(await storedArtifacts(f), published + 1);
});

test('Mender enrolment and bodies under attack: a flood of MACs through one key meets the enrolment limit; oversize, chunked and deeply nested bodies are refused', { timeout: 300_000 }, async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-mender-attacks-e-', server: { args: ['--enrol-limit', '5/1m'] } });
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const codes: string[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 12; i++) {
    const c = client(f.server.url, mac(300 + i), keys);
    assert.equal((await c.auth()).status, 200, 'auth itself records nothing and names no product');
    const r = await c.inventory();
    codes.push(r.status === 200 ? 'ok' : r.code ?? String(r.status));
    if (r.status === 429) retryAfter = r.headers.get('retry-after');
  }
  assert.deepEqual(codes, [...Array(5).fill('ok'), ...Array(7).fill('PW_RATE_LIMITED')]);
  assert.ok(Number(retryAfter) > 0, 'Retry-After');
  assert.equal((await f.devices()).length, 5);

  const c = client(f.server.url, mac(300), keys);
  assert.equal((await c.auth()).status, 200);
  const url = `${f.server.url}/api/devices`;
  const auth = { authorization: `Bearer ${c.token}` };
  // Chunked, without Content-Length: counted as they arrive.
  assert.equal(await chunked(`${url}/v1/authentication/auth_requests`, 'POST', Array.from({ length: 20 }, () => Buffer.alloc(1024, 0x20))), 413);
  assert.equal(await chunked(`${url}/v1/inventory/device/attributes`, 'PUT', Array.from({ length: 80 }, () => Buffer.alloc(1024, 0x20)), auth), 413);
  assert.equal(await chunked(`${url}/v1/deployments/device/deployments/acme@1.0.0/log`, 'PUT', Array.from({ length: 1100 }, () => Buffer.alloc(1024, 0x20)), auth), 413);
  // A long log within its 1 MiB is taken, chunked too (the other calls' 64 KiB is not its bound).
  const longLog = Buffer.from(JSON.stringify({ messages: Array.from({ length: 5000 }, (_, i) => ({ level: 'info', message: `line ${i} ${'x'.repeat(80)}` })) }));
  assert.ok(longLog.length > 400_000 && longLog.length < 1024 * 1024);
  assert.equal(await chunked(`${url}/v1/deployments/device/deployments/acme@1.0.0/log`, 'PUT', [longLog.subarray(0, 200_000), longLog.subarray(200_000)], auth), 204);
  // Deeply nested, 1,001 attributes, not JSON.
  const deep = '['.repeat(30_000) + ']'.repeat(30_000);
  for (const b of [deep, JSON.stringify(Array.from({ length: 1001 }, (_, i) => ({ name: `a${i}`, value: 'v' }))), '{"not json', '{"device_type":"acme"}']) {
    const r = await c.call('PUT', '/v1/inventory/device/attributes', b);
    assert.equal(r.status, 400, `${b.slice(0, 20)}: ${r.text}`);
  }
  const nested = await c.call('POST', '/v2/deployments/device/deployments/next', `{"device_provides":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`);
  assert.equal(nested.status, 400, nested.text);
  // The server is still answering.
  assert.equal((await c.inventory()).status, 200);
});

for (const store of STORES) {
  test(`a NUL in a Mender client's failure log is kept as U+FFFD, not a 500 that loses the failure (${store})`, { timeout: 300_000 }, async (t) => {
    const args = store === 'postgres' ? ['--db', await tempPgDatabase(t)] : [];
    const f = await startFleet(t, { token: TOKEN, prefix: `patchwire-mender-attacks-nul-${store}-`, server: { args }, releases: [['1.0.0', { VERSION: '1.0.0' }]] });
    assert.equal((await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/opt/acme'])).code, 0);
    const c = client(f.server.url, mac(600));
    assert.equal((await c.auth()).status, 200);
    assert.equal((await c.next('factory')).status, 200);
    assert.equal((await c.status('acme@1.0.0', 'failure')).status, 204);
    // PostgreSQL text cannot hold a NUL: the report was a 500 there, after the waiting failure was taken.
    const r = await c.log('acme@1.0.0', [{ level: 'error', message: 'binary\u0000output' }]);
    assert.equal(r.status, 204, r.text);
    const failed = (await show(f, mac(600))).history[0]!;
    assert.equal(failed.event, 'failed');
    assert.match(failed.error ?? '', /error: binary\ufffdoutput$/);
  });
}
