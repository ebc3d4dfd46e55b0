/**
 * Attacks on artifact downloads from a real `patchwire serve` on disk (docs/security.md,
 * "Downloads"): Range headers at and past the edges, and an artifact file truncated under a
 * download in flight (the server must cut the connection, never end a short body as if whole, and later
 * downloads are refused rather than served short with immutable caching).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet, type ProductInfo } from './helpers/fleet.js';

const TOKEN = 'downloads-attacks-token';
const suite = Cleanup.forSuite();
const MiB = 1024 * 1024;

let fleet: Fleet;
let release: ProductInfo['releases'][number];
let path: string;
let bytes: Buffer;

async function get(headers: Record<string, string> = {}) {
  const res = await fetch(fleet.server.url + path, { headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

before(async () => {
  fleet = await startFleet(suite, { token: TOKEN, prefix: 'patchwire-dl-attacks-', releases: [['1.0.0', { 'payload.txt': randomBytes(12 * MiB).toString('base64') }]] });
  release = (await fleet.releases()).find((r) => r.version === '1.0.0')!;
  path = `/v1/products/acme/targets/stable/${release.sha256}.1.0.0.tar.gz`;
  bytes = (await get()).body;
  assert.equal(bytes.length, release.length);
});

test('Range at and past the edges: exact bytes, 416 with the length, or the whole body for what is not one satisfiable range', async () => {
  const L = bytes.length;
  const cases: Array<[string, number, [number, number] | 'whole' | 'none']> = [
    ['bytes=0-0', 206, [0, 0]],
    [`bytes=${L - 1}-`, 206, [L - 1, L - 1]],
    [`bytes=${L - 1}-${L + 1000}`, 206, [L - 1, L - 1]],
    [`bytes=-${L + 5}`, 206, [0, L - 1]],
    ['bytes=-1', 206, [L - 1, L - 1]],
    ['bytes=-99999999999999999999999', 206, [0, L - 1]],
    ['bytes=0-99999999999999999999999', 206, [0, L - 1]],
    [`bytes=${L}-`, 416, 'none'],
    ['bytes=-0', 416, 'none'],
    ['bytes=99999999999999999999999-', 416, 'none'],
    ['bytes=5-2', 200, 'whole'],
    ['bytes=0-1,5-6', 200, 'whole'],
    ['bytes=abc', 200, 'whole'],
    ['bytes=-', 200, 'whole'],
    ['items=0-1', 200, 'whole'],
  ];
  for (const [range, status, want] of cases) {
    const r = await get({ range });
    assert.equal(r.status, status, range);
    if (want === 'whole') assert.ok(r.body.equals(bytes), `${range}: the whole body`);
    else if (want === 'none') {
      assert.equal(r.headers.get('content-range'), `bytes */${L}`, range);
      assert.equal(JSON.parse(r.body.toString()).code, 'PW_RANGE_NOT_SATISFIABLE', range);
    } else {
      assert.equal(r.headers.get('content-range'), `bytes ${want[0]}-${want[1]}/${L}`, range);
      assert.ok(r.body.equals(bytes.subarray(want[0], want[1] + 1)), `${range}: exactly those bytes`);
    }
  }
});

test('an artifact file truncated under a download: the connection is cut short of its Content-Length; later downloads are refused, not served short', async () => {
  const { hostname, port } = new URL(fleet.server.url);
  const s = connect({ host: hostname, port: Number(port) });
  let received = 0;
  let head = '';
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await new Promise<void>((r) => s.once('data', (d: Buffer) => {
    head = d.toString('latin1');
    received += d.length;
    s.pause();
    r();
  }));
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, new RegExp(`content-length: ${bytes.length}\\r\\n`, 'i'));
  // The reader stalls; meanwhile the file shrinks to 1 MiB (an operator's mistake, a failing disk).
  await truncate(join(fleet.root, 'server', 'artifacts', release.sha256.slice(0, 2), release.sha256), MiB);
  s.on('data', (d: Buffer) => (received += d.length));
  s.resume();
  await closed;
  assert.ok(received < bytes.length, `the client got ${received} bytes of ${bytes.length}: not a whole body`);
  assert.equal(fleet.server.proc.exitCode, null, 'the server runs');
  const check = await fleet.rawCheck('aa:bb:cc:33:00:01', null);
  assert.equal(check.status, 200);
  // Later downloads are refused, not answered with the 1 MiB left as a whole, immutable 200.
  const later = await get();
  assert.equal(later.status, 404);
  assert.equal(later.headers.get('cache-control'), null, 'nothing for a cache to keep');
  const err = JSON.parse(later.body.toString()) as { code: string; message: string };
  assert.equal(err.code, 'PW_NOT_FOUND');
  assert.match(err.message, new RegExp(`are ${MiB} bytes, not the ${bytes.length} its signature names: the stored artifact is damaged`));
});
