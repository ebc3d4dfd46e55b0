/**
 * A real `patchwire serve --store s3://...` process over a real s3rver on 127.0.0.1: a release
 * published, an agent applies it, once streaming through the server and once with
 * `--store-redirect` (the agent follows a 302 to a presigned S3 URL); ranged, conditional and
 * cached downloads through the server.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { readCurrent } from './helpers/files.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { startS3rver, type RunningS3 } from './helpers/s3rver.js';
import { targetUrl } from '../src/protocol/urls.js';

const TOKEN = 'e2e-s3-admin-token';
const suite = Cleanup.forSuite();
let s3: RunningS3;
before(async () => {
  s3 = await startS3rver(suite);
});

let runs = 0;
/** A server whose artifacts live under a prefix of their own in the bucket, with acme 1.0.0 published. */
async function s3Fleet(t: { after(fn: () => unknown): void }, extra: string[] = []): Promise<{ f: Fleet; prefix: string }> {
  const prefix = `e2e-${++runs}`;
  const f = await startFleet(t, {
    token: TOKEN,
    prefix: 'patchwire-e2e-s3-',
    server: { args: ['--store', `s3://patchwire/${prefix}?endpoint=${s3.endpoint}&region=us-east-1`, ...extra], env: s3.env },
    releases: [['1.0.0', { 'bin/app': '#!/bin/sh\necho 1.0.0\n', 'README': 'version one from S3' }]],
  });
  return { f, prefix };
}

/** The release's archive URL on the server, and its sha256 and length. */
async function archive(f: Fleet): Promise<{ url: string; sha256: string; length: number }> {
  const [r] = await f.releases();
  assert.ok(r);
  return { url: targetUrl(f.server.url, 'acme', r.target, r.sha256), sha256: r.sha256, length: r.length };
}

/** s3rver requests for the artifact object, since `from` (an index into s3.seen). */
const artifactGets = (prefix: string, sha256: string, from: number) =>
  s3.seen.slice(from).filter((r) => r.method === 'GET' && r.url.startsWith(`/patchwire/${prefix}/artifacts/${sha256}`));

test('streaming: the release is stored in the bucket, the agent applies it through the server', async (t) => {
  const { f, prefix } = await s3Fleet(t);
  const a = await archive(f);
  const mark = s3.seen.length;
  const dir = await f.initAgent('streamed', 'AA-BB-CC-00-53-01');
  const r = await f.check(dir);
  assert.equal(r.result, 'updated');
  assert.equal(r.version, '1.0.0');
  assert.equal(await readCurrent(dir, 'README'), 'version one from S3');
  // The server read the object with its own signed request; the agent never talked to S3.
  const gets = artifactGets(prefix, a.sha256, mark);
  assert.ok(gets.length >= 1, 'the server fetched the archive from the bucket');
  assert.ok(gets.every((g) => String(g.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')), 'only the server, signing with its key');
  await assert.rejects(access(join(f.root, 'server', 'artifacts')), 'nothing of it on the server\'s disk');
});

test('streaming keeps Range, If-Range, ETag, 304 and immutable caching', async (t) => {
  const { f } = await s3Fleet(t);
  const a = await archive(f);
  const full = Buffer.from(await (await fetch(a.url)).arrayBuffer());
  assert.equal(full.length, a.length);
  assert.equal(createHash('sha256').update(full).digest('hex'), a.sha256);

  const etag = `"${a.sha256}"`;
  const ranged = await fetch(a.url, { headers: { range: 'bytes=10-99' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get('content-range'), `bytes 10-99/${a.length}`);
  assert.equal(ranged.headers.get('etag'), etag);
  assert.equal(ranged.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), full.subarray(10, 100));

  const first = await fetch(a.url, { headers: { range: 'bytes=0-0' } });
  assert.deepEqual(Buffer.from(await first.arrayBuffer()), full.subarray(0, 1), 'a one-byte range is one byte');

  const resumed = await fetch(a.url, { headers: { range: 'bytes=100-', 'if-range': etag } });
  assert.equal(resumed.status, 206);
  assert.deepEqual(Buffer.from(await resumed.arrayBuffer()), full.subarray(100));

  const changed = await fetch(a.url, { headers: { range: 'bytes=100-', 'if-range': '"something-else"' } });
  assert.equal(changed.status, 200, 'an If-Range that does not match sends the whole body');
  assert.equal(Buffer.from(await changed.arrayBuffer()).length, a.length);

  const cached = await fetch(a.url, { headers: { 'if-none-match': etag } });
  assert.equal(cached.status, 304);

  const past = await fetch(a.url, { headers: { range: `bytes=${a.length}-` } });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get('content-range'), `bytes */${a.length}`);
});

test('--store-redirect: downloads answer 302 to a presigned S3 URL; the agent follows it without its device token', async (t) => {
  const { f, prefix } = await s3Fleet(t, ['--store-redirect']);
  const a = await archive(f);

  const res = await fetch(a.url, { redirect: 'manual' });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('cache-control'), 'no-store', 'the redirect expires, so it is not cached');
  const location = new URL(res.headers.get('location')!);
  assert.equal(location.origin, s3.endpoint);
  assert.equal(location.pathname, `/patchwire/${prefix}/artifacts/${a.sha256}`, 'signed for exactly this object');
  assert.ok(Number(location.searchParams.get('X-Amz-Expires')) <= 300, 'a short expiry');
  // HEAD is answered by the server (a presigned GET does not sign HEAD).
  const head = await fetch(a.url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(a.length));
  // Range passes through: the client sends it to S3 after the redirect.
  const ranged = await fetch(a.url, { headers: { range: 'bytes=5-9' } });
  assert.equal(ranged.status, 206);
  assert.equal((await ranged.arrayBuffer()).byteLength, 5);

  const mark = s3.seen.length;
  const dir = await f.initAgent('redirected', 'AA-BB-CC-00-53-02');
  const r = await f.check(dir);
  assert.equal(r.result, 'updated');
  assert.equal(await readCurrent(dir, 'README'), 'version one from S3');
  const gets = artifactGets(prefix, a.sha256, mark);
  assert.equal(gets.length, 1, 'the agent fetched the archive from S3 itself');
  assert.ok(gets[0]!.url.includes('X-Amz-Signature='), 'with the presigned URL');
  assert.equal(gets[0]!.headers.authorization, undefined, 'and no Authorization header: the device token stays with the server');
});

test('--store-redirect without --store s3:// is refused before anything starts', async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-e2e-s3-' });
  await assert.rejects(f.serve('redirect-on-disk', { args: ['--store-redirect'] }), /--store-redirect needs --store s3:\/\//);
});
