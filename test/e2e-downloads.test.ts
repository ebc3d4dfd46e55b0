/**
 * Large artifact downloads from a real `patchwire serve` (issue 10): the file is written to the
 * socket in reused 1 MiB chunks (src/server/routes/send-file.ts). The bytes must be exact across
 * chunk seams and ranges, also when more downloads run than there are pooled buffers, and a reader
 * that stops reading must not make the server hold the file in memory (backpressure), nor leak
 * the open file once it hangs up.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet, type ProductInfo } from './helpers/fleet.js';
import { sha256 } from './helpers/requests.js';
import { waitFor } from './helpers/wait-for.js';

const TOKEN = 'downloads-admin-token';
const suite = Cleanup.forSuite();
const MiB = 1024 * 1024;

let fleet: Fleet;
let url: string;
let release: ProductInfo['releases'][number];
let bytes: Buffer;

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(fleet.server.url + path, { headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

async function procStatus(pid: number, field: string): Promise<number> {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}
/** How many descriptors of the server have the archive's file open. */
async function openArchives(pid: number): Promise<number> {
  let n = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target.endsWith(release.sha256)) n++;
  }
  return n;
}

/** A raw GET that reads the answer's first bytes and then stops reading (the socket stays open). */
function stalledGet(path: string): Promise<Socket> {
  const { hostname, port } = new URL(fleet.server.url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: hostname, port: Number(port) });
    s.once('error', reject);
    s.once('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    s.once('data', (d) => {
      s.pause();
      assert.match(d.toString('latin1'), /^HTTP\/1\.1 200 /);
      resolve(s);
    });
  });
}

before(async () => {
  // ~24 MB of archive (base64 of random bytes compresses to ~3/4): more than the kernel buffers a
  // stalled loopback connection, so the server really has to wait for the reader.
  fleet = await startFleet(suite, {
    token: TOKEN,
    prefix: 'patchwire-downloads-',
    releases: [['1.0.0', { 'payload.txt': randomBytes(24 * MiB).toString('base64') }]],
  });
  release = (await fleet.releases()).find((r) => r.version === '1.0.0')!;
  url = `/v1/products/acme/targets/stable/${release.sha256}.1.0.0.tar.gz`;
  const full = await get(url);
  assert.equal(full.status, 200);
  bytes = full.body;
  assert.ok(bytes.length > 20 * MiB, `the archive is ${bytes.length} bytes, meant to be over 20 MiB`);
});

describe('large downloads', () => {
  test('the whole archive: the signed bytes and length', () => {
    assert.equal(bytes.length, release.length);
    assert.equal(sha256(bytes), release.sha256);
  });

  test('ranges across the 1 MiB chunk seams and to the end: 206 with exactly those bytes', async () => {
    for (const [start, end] of [[MiB - 1, MiB], [MiB - 10, 3 * MiB + 10], [0, 2 * MiB - 1], [5 * MiB + 3, bytes.length - 1]] as const) {
      const r = await get(url, { range: `bytes=${start}-${end}` });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${bytes.length}`);
      assert.equal(r.headers.get('content-length'), String(end - start + 1));
      assert.ok(r.body.equals(bytes.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
    const tail = await get(url, { range: `bytes=-${2 * MiB + 1}` });
    assert.ok(tail.body.equals(bytes.subarray(bytes.length - 2 * MiB - 1)));
  });

  test('34 downloads at once (more than the 32 pooled buffers): every one gets the signed bytes', async () => {
    const all = await Promise.all(Array.from({ length: 34 }, (_, i) => get(url, i % 2 ? {} : { range: `bytes=${i}-` })));
    for (const [i, r] of all.entries()) {
      if (i % 2) assert.equal(sha256(r.body), release.sha256, `download ${i}`);
      else assert.ok(r.body.equals(bytes.subarray(i)), `ranged download ${i}`);
    }
  });

  test('readers that stop reading: the server holds a bounded buffer each, not the file; after they hang up no file stays open and downloads go on', async () => {
    const pid = fleet.server.proc.pid!;
    assert.equal(await openArchives(pid), 0, 'no download in progress yet');
    const stalled = await Promise.all(Array.from({ length: 40 }, () => stalledGet(url)));
    // Give the server time to fill every socket and wait on it.
    await new Promise((r) => setTimeout(r, 1500));
    // Absolute, not growth: the pool may already be full from the test before. The server idles at
    // ~120-140 MiB here; its chunks are at most 32 MiB of pool plus 64 KiB per download beyond it,
    // while holding the archive per download would be 40 x 24 MB (and a 32 MiB chunk, 1 GiB).
    const rss = await procStatus(pid, 'VmRSS');
    assert.ok(rss < 320 * MiB, `server RSS is ${(rss / MiB).toFixed(1)} MiB with 40 stalled downloads`);
    assert.equal(await openArchives(pid), 40, 'the server is still in the middle of every stalled download');
    for (const s of stalled) s.destroy();
    await waitFor(async () => (await openArchives(pid)) === 0, { what: 'the server to close the files of the hung-up downloads' });
    const after = await get(url);
    assert.equal(sha256(after.body), release.sha256);
  });
});
