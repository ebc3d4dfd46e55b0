/**
 * Attacks on `serve --store s3://...` (docs/security.md, "S3"): a bucket endpoint that accepts
 * and never answers, one that stops in the middle of an object's body, and what a presigned
 * download URL (`--store-redirect`) lets its holder do. Real processes, a real s3rver on
 * 127.0.0.1 (behind a small HTTP relay of the test's own where the bucket misbehaves).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { startS3rver, type RunningS3 } from './helpers/s3rver.js';
import { tempDir } from './helpers/temp-dir.js';
import { freePort } from './helpers/ports.js';
import { targetUrl } from '../src/protocol/urls.js';
import { SOCKET_IDLE_MS } from '../src/artifacts/s3/s3-artifact-store.js';

const TOKEN = 'e2e-s3-attacks-token';
const suite = Cleanup.forSuite();
let s3: RunningS3;
before(async () => {
  s3 = await startS3rver(suite);
});

async function archive(f: Fleet): Promise<{ url: string; sha256: string; length: number }> {
  const [r] = await f.releases();
  assert.ok(r);
  return { url: targetUrl(f.server.url, 'acme', r.target, r.sha256), sha256: r.sha256, length: r.length };
}

test('an S3 endpoint that accepts connections and never answers: serve exits 2 saying so, instead of hanging', async (t) => {
  const sockets = new Set<Socket>();
  const mute = createTcpServer((s) => { sockets.add(s); s.on('error', () => {}); });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); mute.close(() => r()); }));
  const port = (mute.address() as AddressInfo).port;
  const data = await tempDir(t, 'patchwire-s3-attacks-');
  const started = Date.now();
  const r = await runCli(['serve', '--data', data, '--port', String(await freePort()), '--store', `s3://patchwire?endpoint=http://127.0.0.1:${port}&region=us-east-1`], {
    env: { ...s3.env, PATCHWIRE_TOKEN: TOKEN }, timeoutMs: 90_000,
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /accepted the connection but did not answer within 20 s; check that endpoint= names an S3 server/);
  assert.doesNotMatch(r.stderr, /S3RVER/, 'no credential in the message');
  assert.ok(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
});

test('a bucket that stops in the middle of an object: the download through the server is cut (not held open), and the next one is served', async (t) => {
  // A relay to s3rver that, while `stall` is set, sends an artifact's headers and first 64 KiB, then nothing.
  let stall = false;
  const held = new Set<Socket>();
  const relay = createHttpServer((req, res) => {
    const up = httpRequest(`${s3.endpoint}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!(stall && req.method === 'GET' && /\/artifacts\/[0-9a-f]{64}(\?|$)/.test(req.url ?? ''))) return void ur.pipe(res);
      held.add(res.socket!);
      let sent = 0;
      ur.on('data', (chunk: Buffer) => {
        if (sent < 65536) res.write(chunk.subarray(0, 65536 - sent));
        sent += chunk.length;
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => { for (const s of held) s.destroy(); relay.closeAllConnections(); relay.close(() => r()); }));
  const endpoint = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  // An archive of about 1 MiB of incompressible bytes, so it is far larger than what the relay lets through.
  const f = await startFleet(t, {
    token: TOKEN, prefix: 'patchwire-s3-attacks-',
    server: { args: ['--store', `s3://patchwire/stall?endpoint=${endpoint}&region=us-east-1`], env: s3.env },
    releases: [['1.0.0', { blob: randomBytes(1 << 20).toString('base64') }]],
  });
  const a = await archive(f);
  assert.ok(a.length > 300_000, `archive of ${a.length} bytes`);
  stall = true;
  const started = Date.now();
  const res = await fetch(a.url);
  assert.equal(res.status, 200);
  let got = 0;
  await assert.rejects((async () => {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) got += chunk.length;
  })(), 'the download ends in an error, never as a complete body');
  const took = Date.now() - started;
  assert.ok(got < a.length, `${got} of ${a.length} bytes`);
  assert.ok(took >= SOCKET_IDLE_MS - 1000 && took < SOCKET_IDLE_MS + 20_000, `cut after ${took} ms`);
  stall = false;
  const whole = Buffer.from(await (await fetch(a.url)).arrayBuffer());
  assert.equal(whole.length, a.length);
});

test('--store-redirect: the presigned URL is signed for a GET of exactly that object for 300 s (no other key, method or listing); no presign for a hash not served', async (t) => {
  const f = await startFleet(t, {
    token: TOKEN, prefix: 'patchwire-s3-attacks-',
    server: { args: ['--store', `s3://patchwire/presign?endpoint=${s3.endpoint}&region=us-east-1`, '--store-redirect'], env: s3.env },
    releases: [['1.0.0', { README: 'one' }], ['1.1.0', { README: 'one one' }]],
  });
  const [newer, older] = await f.releases();
  assert.ok(newer && older && newer.sha256 !== older.sha256);
  const a = { url: targetUrl(f.server.url, 'acme', newer.target, newer.sha256), sha256: newer.sha256 };
  const redirect = await fetch(a.url, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('cache-control'), 'no-store');
  const location = new URL(redirect.headers.get('location')!);
  assert.equal(location.origin, s3.endpoint);
  assert.equal(location.pathname, `/patchwire/presign/artifacts/${a.sha256}`);
  assert.equal(location.searchParams.get('X-Amz-Expires'), '300');
  assert.equal(location.searchParams.get('X-Amz-SignedHeaders'), 'host');
  assert.equal(location.searchParams.get('X-Amz-Credential')?.split('/')[0], s3.env.AWS_ACCESS_KEY_ID, 'the access key id (not secret) is in the URL; the secret never is');
  assert.ok(!location.href.includes(s3.env.AWS_SECRET_ACCESS_KEY!) || s3.env.AWS_SECRET_ACCESS_KEY === s3.env.AWS_ACCESS_KEY_ID);
  const ok = await fetch(location, { headers: { range: 'bytes=0-2' } });
  assert.equal(ok.status, 206, 'a Range the client adds passes through');
  await ok.arrayBuffer();
  // s3rver does not check SigV4 signatures, so what the URL grants is read off its signature: it
  // verifies (with the server's secret) for a GET of this path and host only; any other key,
  // method or the bucket's listing has another signature, which S3 refuses.
  const signature = location.searchParams.get('X-Amz-Signature');
  assert.equal(sigV4(location, 'GET', location.pathname), signature, 'the signature is the one SigV4 gives a GET of this object');
  for (const [method, path] of [['GET', `/patchwire/presign/artifacts/${older.sha256}`], ['GET', '/patchwire'], ['PUT', location.pathname], ['DELETE', location.pathname], ['HEAD', location.pathname]]) {
    assert.notEqual(sigV4(location, method!, path!), signature, `${method} ${path}`);
  }
  // A device cannot have the server presign anything but a served target: an unknown hash is a 404, no redirect.
  const unknown = await fetch(targetUrl(f.server.url, 'acme', 'README', 'e'.repeat(64)), { redirect: 'manual' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.headers.get('location'), null);
});

/** The SigV4 query signature S3 would expect for `method` of `path` with the presigned URL's other parameters (s3rver's secret). */
function sigV4(url: URL, method: string, path: string): string {
  const enc = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const query = [...url.searchParams].filter(([k]) => k !== 'X-Amz-Signature').map(([k, v]) => [enc(k), enc(v)]).sort(([a], [b]) => (a! < b! ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
  const canonical = [method, path, query, `host:${url.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const date = url.searchParams.get('X-Amz-Date')!;
  const scope = url.searchParams.get('X-Amz-Credential')!.split('/').slice(1);
  const toSign = ['AWS4-HMAC-SHA256', date, scope.join('/'), createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key: Buffer = Buffer.from(`AWS4${s3.env.AWS_SECRET_ACCESS_KEY}`);
  for (const part of scope) key = createHmac('sha256', key).update(part).digest();
  return createHmac('sha256', key).update(toSign).digest('hex');
}
