/**
 * The server under abuse (issue 9, docs/security.md "Server under abuse"), against real
 * `patchwire serve` processes on 127.0.0.1: slow clients and socket floods, wrong-token floods,
 * hostile archives, and listings of many devices. Each attack is refused the documented way and
 * changes nothing; honest clients keep being answered meanwhile.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { runCli, startServer, type ServerProcess } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait-for.js';
import { startFleet, type Fleet, type ProductInfo } from './helpers/fleet.js';
import { assertError, multipartBody, releaseTarget, sha256, signNext } from './helpers/requests.js';
import { readKeyFile, type KeyPair } from '../src/tuf/keys.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { BLOCK, encodeHeader, encodePax, padding } from '../src/util/tar-format.js';

const TOKEN = 'server-abuse-admin-token';
const MIRROR_TOKEN = 'server-abuse-mirror-token';
const suite = Cleanup.forSuite();

async function serve(name: string, args: string[] = []): Promise<ServerProcess> {
  const s = await startServer(join(await tempDir(suite, `patchwire-abuse-${name}-`), 'data'), { token: TOKEN, args });
  suite.after(() => s.stop());
  return s;
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** A raw TCP connection that records how it ended; the test never closes it itself before that. */
interface Raw { socket: Socket; closed: boolean; received: string }
function open(url: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const r: Raw = { socket: connect(hostPort(url)), closed: false, received: '' };
    r.socket.on('data', (d) => (r.received += d.toString('latin1')));
    r.socket.on('error', () => {}); // a reset by the server is one way of being closed
    r.socket.on('close', () => (r.closed = true));
    r.socket.once('connect', () => resolve(r));
    r.socket.once('error', reject);
  });
}

const checkBody = (deviceId: string) => JSON.stringify({ deviceId, product: 'nothing-here', channel: 'stable', version: null });

/** An honest client: /healthz and a check (404: no such product, an answer all the same). */
async function honest(url: string): Promise<void> {
  const h = await fetch(`${url}/healthz`);
  assert.equal(h.status, 200);
  const c = await fetch(`${url}/v1/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: checkBody('aa:bb:cc:dd:00:01') });
  assertError(c.status, await c.text(), { status: 404, code: 'PW_UNKNOWN_PRODUCT' });
}

describe('slow clients', () => {
  test('hundreds of sockets trickling headers or a body are closed by the server; honest clients are answered meanwhile, an honest slow body is not cut', async () => {
    const s = await serve('slow', ['--headers-timeout', '1s', '--body-timeout', '1s', '--min-body-rate', '1024', '--idle-timeout', '1s']);
    const headers: Raw[] = [];
    const bodies: Raw[] = [];
    for (let i = 0; i < 200; i++) headers.push(await open(s.url));
    for (let i = 0; i < 100; i++) {
      const r = await open(s.url);
      r.socket.write(`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`);
      bodies.push(r);
    }
    // Slowloris: one byte per socket every 50 ms, the header line never ends (20 B/s on each body too).
    const header = `POST /v1/check HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(100_000)}`;
    let at = 0;
    const trickle = setInterval(() => {
      for (const r of headers) if (!r.closed) r.socket.write(header[at]!);
      for (const r of bodies) if (!r.closed) r.socket.write(' ');
      at++;
    }, 50);
    try {
      // An honest body slower than one window but above the minimum rate: 4 KiB/s for 2 s.
      const slowHonest = await open(s.url);
      const body = `${checkBody('aa:bb:cc:dd:00:02').slice(0, -1)}${' '.repeat(8 * 1024)}}`;
      slowHonest.socket.write(`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`);
      let sent = 0;
      const feed = setInterval(() => {
        slowHonest.socket.write(body.slice(sent, sent + 1024));
        sent += 1024;
        if (sent >= body.length) clearInterval(feed);
      }, 250);
      for (let i = 0; i < 5; i++) await honest(s.url);
      await waitFor(() => headers.every((r) => r.closed) && bodies.every((r) => r.closed), {
        what: 'the server to close every slow socket',
        timeout: 20_000,
        detail: () => `open: ${headers.filter((r) => !r.closed).length} header tricklers, ${bodies.filter((r) => !r.closed).length} body tricklers`,
      });
      await honest(s.url);
      await waitFor(() => slowHonest.closed, { what: 'the honest slow request to finish' });
      clearInterval(feed);
      assert.match(slowHonest.received, /^HTTP\/1\.1 404 /, 'the honest slow body was read whole and answered');
      assert.match(headers[0]!.received, /^(HTTP\/1\.1 408|$)/, 'a header trickler gets 408 or nothing');
    } finally {
      clearInterval(trickle);
      for (const r of [...headers, ...bodies]) r.socket.destroy();
    }
  });

  test('an idle keep-alive connection is closed after --idle-timeout', async () => {
    const s = await serve('idle', ['--idle-timeout', '1s']);
    const r = await open(s.url);
    r.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => r.received.includes('{"ok":true}'), { what: 'the healthz answer' });
    assert.match(r.received, /keep-alive/i, 'the connection was kept open after the answer');
    await waitFor(() => r.closed, { what: 'the server to close the idle connection', timeout: 10_000 });
  });

  test('--max-connections: a connection beyond the limit is closed at once; below it the server answers again', async () => {
    const s = await serve('maxconn', ['--max-connections', '20', '--headers-timeout', '60s']);
    const held: Raw[] = [];
    for (let i = 0; i < 20; i++) held.push(await open(s.url));
    await waitFor(async () => {
      const extra = await open(s.url);
      await waitFor(() => extra.closed, { what: 'the 21st connection to be closed', timeout: 5_000 });
      return true;
    }, { what: 'a connection over the limit to be closed' });
    await assert.rejects(fetch(`${s.url}/healthz`), 'over the limit, no answer');
    assert.ok(held.every((r) => !r.closed), 'the connections within the limit stay');
    for (const r of held) r.socket.destroy();
    await waitFor(async () => (await fetch(`${s.url}/healthz`)).status === 200, { what: 'the server to answer again' });
  });
});

/** Rows of the server's SQLite database, read directly (the admin API refuses this address by then). */
function dbRows(dataDir: string, sql: string): unknown[] {
  const db = new Database(join(dataDir, 'patchwire.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

describe('wrong-token floods', () => {
  async function flood(url: string, path: string, token: string, right: { token: string; path: string }, dataDir: string, which: string) {
    const before = dbRows(dataDir, 'SELECT * FROM products ORDER BY name');
    const send = (t: string) => fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: JSON.stringify({ product: 'evil', root: {}, targets: {} }) });
    for (let i = 0; i < 10; i++) {
      const r = await send(`${token}-${i}`);
      assertError(r.status, await r.text(), { status: 401, code: 'PW_UNAUTHORIZED', message: new RegExp(`wrong ${which}`) });
    }
    for (let i = 0; i < 5; i++) {
      const r = await send(`${token}-more-${i}`);
      const retry = Number(r.headers.get('retry-after'));
      assertError(r.status, await r.text(), { status: 429, code: 'PW_RATE_LIMITED', message: /too many wrong tokens.*wait \d+ s.*right token/ });
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    }
    // The right token from the blocked address is refused the same way: 200 against 429 would tell a guesser which guess was right.
    const r = await fetch(`${url}${right.path}`, { headers: { authorization: `Bearer ${right.token}` } });
    assertError(r.status, await r.text(), { status: 429, code: 'PW_RATE_LIMITED' });
    assert.deepEqual(dbRows(dataDir, 'SELECT * FROM products ORDER BY name'), before, 'nothing changed');
  }

  test('wrong admin tokens: 401 ten times, then 429 PW_RATE_LIMITED with Retry-After (the right token too), logged once per window, nothing changed', async () => {
    const dir = join(await tempDir(suite, 'patchwire-abuse-admin-'), 'data');
    const s = await startServer(dir, { token: TOKEN });
    suite.after(() => s.stop());
    await flood(s.url, '/v1/admin/products', 'guess', { token: TOKEN, path: '/v1/admin/products' }, dir, 'admin token');
    const lines = s.output().split('\n');
    assert.equal(lines.filter((l) => l.includes('wrong admin token from 127.0.0.1')).length, 1, s.output());
    assert.equal(lines.filter((l) => l.includes('too many wrong tokens from 127.0.0.1')).length, 1, s.output());
    assert.ok(!s.output().includes('guess-'), 'no submitted token in the log');
  });

  test('wrong mirror tokens on the mirror API: the same limit', async () => {
    const dir = join(await tempDir(suite, 'patchwire-abuse-mirror-'), 'data');
    const s = await startServer(dir, { token: TOKEN, args: ['--mirror-token', MIRROR_TOKEN] });
    suite.after(() => s.stop());
    await flood(s.url, '/v1/mirror/announce', 'mirror-guess', { token: MIRROR_TOKEN, path: '/v1/mirror/catalog' }, dir, 'mirror token');
    assert.deepEqual(dbRows(dir, 'SELECT * FROM mirrors'), [], 'no mirror announced');
    assert.equal(s.output().split('\n').filter((l) => l.includes('wrong mirror token from 127.0.0.1')).length, 1, s.output());
  });
});

// ---------------------------------------------------------------------------------------------
// Archives: every limit, and the deep path that once took seconds
// ---------------------------------------------------------------------------------------------

type TarPart = { path: string; type?: '0' | '5'; pax?: Array<[string, string]> };

/** A tar.gz whose entries carry their paths in pax headers (any length), written as given. */
function paxTarGz(parts: TarPart[]): Buffer {
  const blocks: Buffer[] = [];
  for (const p of parts) {
    const pax = encodePax([...(p.pax ?? []), ['path', p.path]]);
    blocks.push(encodeHeader({ name: 'PaxHeader', mode: 0o644, size: pax.length, typeflag: 'x' }), pax, Buffer.alloc(padding(pax.length)));
    blocks.push(encodeHeader({ name: 'x', mode: p.type === '5' ? 0o755 : 0o644, size: 0, typeflag: p.type ?? '0' }));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

describe('archive inspection', () => {
  let f: Fleet;
  let publisher: KeyPair;
  let dataDir: string;
  const auth = { authorization: `Bearer ${TOKEN}` };

  before(async () => {
    f = await startFleet(suite, { token: TOKEN, prefix: 'patchwire-abuse-tar-', server: { name: 'data' }, releases: [['1.0.0', { README: 'one' }]] });
    publisher = await readKeyFile(f.key);
    dataDir = join(f.root, 'data');
  });

  const product = async () => (await (await fetch(`${f.server.url}/v1/admin/products/acme`, { headers: auth })).json()) as ProductInfo;

  async function upload(version: string, archive: Buffer, treeFiles: number) {
    const current = (await product()).targets;
    const targets = signNext(current, publisher, { [`stable/${version}.tar.gz`]: releaseTarget(archive, { product: 'acme', channel: 'stable', version, treeBytes: 0, treeFiles }) });
    const { body, contentType } = await multipartBody([['metadata', JSON.stringify({ channel: 'stable', version, targets })], ['archive', archive, 'release.tar.gz']]);
    const res = await fetch(`${f.server.url}/v1/admin/products/acme/releases`, { method: 'POST', headers: { ...auth, 'content-type': contentType }, body: new Uint8Array(body) });
    return { status: res.status, text: await res.text() };
  }

  async function refusedUpload(archive: Buffer, treeFiles: number, message: RegExp) {
    const before = await product();
    // A probe answers while the archive is inspected.
    const [res] = await Promise.all([upload('1.1.0', archive, treeFiles), honest(f.server.url)]);
    assertError(res.status, res.text, { status: 400, code: 'PW_ARCHIVE_LIMIT', message });
    assert.match(res.text, /split the release or shorten its paths/);
    const after = await product();
    assert.deepEqual(after.releases, before.releases, 'no release stored');
    assert.equal(after.targets.signed.version, before.targets.signed.version);
    const sha = sha256(archive);
    await assert.rejects(access(join(dataDir, 'artifacts', sha.slice(0, 2), sha)), 'the bytes are not stored');
    assert.deepEqual(await readdir(join(dataDir, 'artifacts', 'tmp')), [], 'nothing left in staging');
  }

  test('the deep path of a ~200-byte upload (30,000 levels; 15.7 s of inspection before the fix) is refused at once', async () => {
    const archive = paxTarGz([{ path: `${'a/'.repeat(30_000)}f` }]);
    assert.ok(archive.length < 300, `${archive.length} bytes`);
    await refusedUpload(archive, 1, /path of 60001 bytes is longer than the limit of 4096 bytes/);
  });

  test('a path component over 255 bytes: PW_ARCHIVE_LIMIT', () =>
    refusedUpload(paxTarGz([{ path: `dir/${'n'.repeat(256)}` }]), 1, /path component of 256 bytes.*limit of 255 bytes/));

  test('pax headers over 64 KiB in front of one entry: PW_ARCHIVE_LIMIT', () =>
    refusedUpload(paxTarGz([{ path: 'README', pax: [['comment', 'c'.repeat(70_000)]] }]), 1, /more than 65536 bytes of pax or long-name headers/));

  test('more than 100,000 entries, counting the folders deep paths imply: PW_ARCHIVE_LIMIT', () =>
    refusedUpload(paxTarGz(Array.from({ length: 50 }, (_, i) => ({ path: `d${i}/${'a/'.repeat(2040)}f` }))), 50, /more than 100000 entries/));

  test('a path at the limits (2,047 levels, 4,095 bytes) is accepted and published', async () => {
    const archive = paxTarGz([{ path: `${'a/'.repeat(2047)}f` }]);
    const [res] = await Promise.all([upload('1.2.0', archive, 1), honest(f.server.url)]);
    assert.equal(res.status, 201, res.text);
    assert.ok((await product()).releases.some((r) => r.version === '1.2.0'));
  });
});

// ---------------------------------------------------------------------------------------------
// Listings: bounded pages whatever the client asks; the CLI pages through
// ---------------------------------------------------------------------------------------------

describe('device listings', () => {
  const DEVICES = 5_100;
  const id = (i: number) => `aa:bb:cc:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  let s: ServerProcess;

  before(async () => {
    const dir = join(await tempDir(suite, 'patchwire-abuse-list-'), 'data');
    const first = await startServer(dir, { token: TOKEN, args: ['--mirror-token', MIRROR_TOKEN] });
    await first.stop();
    // Written straight into the store (as bench/check.ts does): 5,100 devices of two products.
    const store = await SqliteStore.open(join(dir, 'patchwire.db'));
    const seenAt = new Date();
    await store.recordSightings(Array.from({ length: DEVICES }, (_, i) => ({ deviceId: id(i), product: i % 2 ? 'beta-app' : 'acme', channel: 'stable', seenAt, source: 'http://127.0.0.1' })));
    await store.close();
    s = await startServer(dir, { token: TOKEN, args: ['--mirror-token', MIRROR_TOKEN] });
    suite.after(() => s.stop());
  });

  const get = async (path: string, token = TOKEN) => {
    const r = await fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, text: await r.text() };
  };

  test('GET /v1/admin/devices: 500 by default, at most 1000 whatever limit asks, every device once across the pages; a forged cursor is 400', async () => {
    const first = JSON.parse((await get('/v1/admin/devices')).text) as { devices: unknown[]; next: string | null };
    assert.equal(first.devices.length, 500);
    const seen = new Set<string>();
    let after: string | null = null;
    let pages = 0;
    do {
      const r = await get(`/v1/admin/devices?limit=1000000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      assert.equal(r.status, 200, r.text);
      const page = JSON.parse(r.text) as { devices: Array<{ deviceId: string; product: string }>; next: string | null };
      assert.ok(page.devices.length <= 1000, `a page of ${page.devices.length}`);
      for (const d of page.devices) seen.add(`${d.deviceId}/${d.product}`);
      after = page.next;
      pages++;
    } while (after !== null);
    assert.equal(seen.size, DEVICES);
    assert.equal(pages, 6);
    const bad = await get('/v1/admin/devices?after=forged');
    assertError(bad.status, bad.text, { status: 400, code: 'PW_BAD_REQUEST', message: /next.*previous page|start over/ });
  });

  test('GET /v1/mirror/devices: a limit of 100,000 gets a page of 5000 and a cursor', async () => {
    const r = await get('/v1/mirror/devices?limit=100000', MIRROR_TOKEN);
    assert.equal(r.status, 200, r.text);
    const page = JSON.parse(r.text) as { records: unknown[]; next: string | null };
    assert.equal(page.records.length, 5000);
    assert.equal(typeof page.next, 'string');
  });

  test('patchwire devices pages through: every device once, by product then device id, as before', async () => {
    const r = await runCli(['devices', '--server', s.url, '--token', TOKEN, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as Array<{ deviceId: string; product: string }>;
    assert.equal(list.length, DEVICES);
    const keys = list.map((d) => `${d.product} ${d.deviceId}`);
    assert.deepEqual(keys, [...keys].sort());
    assert.equal(new Set(keys).size, DEVICES);
  });
});
