/**
 * The .swu of issue 12 (hawkBit / SWUpdate): the builder is deterministic and its output passes
 * the server's structure check; malformed uploads are refused by the check and, sent with a real
 * publish request, change nothing (no release, no stored artifact, no .swu record).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { buildSwu, swDescription } from '../src/cli/swu-build.js';
import { checkSwu } from '../src/server/compat/hawkbit/swu-check.js';
import { cpioEntry, cpioTrailer } from '../src/util/cpio-newc.js';
import { packTree } from '../src/util/archive-pack.js';
import { hashTree } from '../src/util/tree-hash.js';
import { ApiError } from '../src/server/api-error.js';
import { buildApp } from '../src/server/app.js';
import { createServices } from '../src/server/services/index.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { loadOrCreateOnlineKeys } from '../src/tuf/repository.js';
import { hashToken } from '../src/server/admin-auth.js';
import { systemClock } from '../src/server/clock.js';
import { generateKeyPair } from '../src/tuf/keys.js';
import { createInitialMetadata, type SignedJson } from '../src/tuf/publisher.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { writeTree, snapshotDir } from './helpers/files.js';
import { multipartBody, signNext } from './helpers/requests.js';

const hasOpenssl = (() => {
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); return true; } catch { return false; }
})();

const suite = new Cleanup();
test.after(() => suite.run());
let root: string;
let cert: string;
let key: string;

before(async () => {
  root = await tempDir(suite, 'patchwire-swu-');
  cert = join(root, 'cert.pem');
  key = join(root, 'key.pem');
  if (hasOpenssl) execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=vendor'], { stdio: 'ignore' });
});

/** A cpio newc archive of these entries, as bytes. */
function cpio(entries: Array<[string, Buffer]>, trailer = true): Buffer {
  const parts: Buffer[] = [];
  entries.forEach(([name, body], i) => {
    const e = cpioEntry(name, body.length, i + 1);
    parts.push(e.head, body, e.tail);
  });
  if (trailer) parts.push(cpioTrailer());
  return Buffer.concat(parts);
}

/** checkSwu over bytes cut into small chunks (headers split across chunks too). */
async function check(buf: Buffer, chunk = 7): Promise<string[]> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  return checkSwu(Readable.from(chunks));
}

async function refused(buf: Buffer, why: RegExp): Promise<void> {
  await assert.rejects(check(buf), (err: unknown) => err instanceof ApiError && err.code === 'PW_BAD_SWU' && why.test(err.message));
}

const desc = Buffer.from('software = { version = "1.0.0"; };\n');
const sig = Buffer.from('not really a signature');
const payload = Buffer.from('payload bytes');

test('publish --swu-* builds the same .swu from the same inputs, and the server check accepts it', { skip: hasOpenssl ? false : 'needs openssl' }, async () => {
  const tree = await writeTree(join(root, 'tree'), { VERSION: '1.0.0\n', 'bin/a.sh': 'echo a\n' });
  const out: Array<{ sha256: string; file: string }> = [];
  for (const n of [1, 2]) {
    const tmp = join(root, `build-${n}`);
    await writeTree(tmp, {});
    const packed = await packTree(tree, join(tmp, 'release.tar.gz'));
    out.push(await buildSwu({ product: 'acme', channel: 'stable', version: '1.0.0', archive: join(tmp, 'release.tar.gz'), archiveSha256: packed.sha256, tmp, swu: { cert, key, dest: '/opt/acme', hw: { board: 'board', revision: '1.0' } } }));
  }
  assert.equal(out[0]!.sha256, out[1]!.sha256, 'same inputs, same bytes (the CMS signature has no signing time)');
  const bytes = await readFile(out[0]!.file);
  assert.deepEqual(await check(bytes, 1000), ['sw-description', 'sw-description.sig', 'release.tar.gz']);
  assert.deepEqual(await check(bytes, 3), ['sw-description', 'sw-description.sig', 'release.tar.gz'], 'split headers too');
  const text = bytes.toString('latin1');
  assert.ok(text.includes('hardware-compatibility: [ "1.0" ];') && text.includes('path = "/opt/acme";') && text.includes('create-destination = "true"'));
});

test('the sw-description names the payload by its sha256', () => {
  const d = swDescription({ product: 'acme', channel: 'stable', version: '1.2.3', sha256: 'ab'.repeat(32), dest: '/opt/acme' });
  assert.match(d, /sha256 = "(ab){32}";/);
  assert.match(d, /version = "1\.2\.3";/);
  assert.doesNotMatch(d, /hardware-compatibility/);
});

test('malformed .swu files are refused, saying why', async () => {
  assert.deepEqual(await check(cpio([['sw-description', desc], ['sw-description.sig', sig], ['p.tar.gz', payload]])), ['sw-description', 'sw-description.sig', 'p.tar.gz']);
  await refused(Buffer.from('PK\u0003\u0004 a zip, not a cpio archive, long enough to hold a header '.repeat(3)), /magic/);
  await refused(Buffer.alloc(0), /not a cpio newc archive/);
  await refused(cpio([['p.tar.gz', payload], ['sw-description', desc], ['sw-description.sig', sig]]), /first entry is 'p\.tar\.gz'/);
  await refused(cpio([['sw-description', desc], ['p.tar.gz', payload]]), /second entry .* not sw-description\.sig/);
  await refused(cpio([['sw-description', desc], ['sw-description.sig', sig]]), /no payload/);
  await refused(cpio([['sw-description', desc], ['sw-description.sig', sig], ['p', payload]], false), /ends before its TRAILER/);
  await refused(Buffer.concat([cpio([['sw-description', desc], ['sw-description.sig', sig], ['p', payload]]), Buffer.from('junk')]), /follow its TRAILER/);
  await refused(cpio([['sw-description', desc], ['sw-description.sig', sig], ['../etc/x', payload]]), /not a plain file name/);
  await refused(cpio([['sw-description', desc], ['sw-description.sig', sig], ['p', payload], ['p', payload]]), /appears twice/);
  const many: Array<[string, Buffer]> = [['sw-description', desc], ['sw-description.sig', sig]];
  for (let i = 0; i < 70; i++) many.push([`p${i}`, payload]);
  await refused(cpio(many), /more than 64 entries/);
  const whole = cpio([['sw-description', desc], ['sw-description.sig', sig], ['p', payload]]);
  await refused(whole.subarray(0, whole.length - 150), /ends/);
  await refused(cpio([['sw-description', Buffer.alloc(300 * 1024, 0x20)], ['sw-description.sig', sig], ['p', payload]]), /sw-description is 307200 bytes/);
});

test('a publish whose .swu is malformed or not the one hashed changes nothing', async () => {
  const dataDir = join(root, 'data');
  const store = await SqliteStore.open(join(dataDir, 'patchwire.db'));
  suite.after(() => store.close());
  await store.migrate();
  const artifacts = await DiskArtifactStore.open(join(dataDir, 'artifacts'));
  const keys = await loadOrCreateOnlineKeys(dataDir);
  const services = createServices({
    store, artifacts, keys, clock: systemClock, publicUrl: () => 'http://127.0.0.1:1',
    expiry: { snapshotSeconds: 7 * 86400, timestampSeconds: 86400 }, sightingFlushMs: 50, log: { info: () => {}, warn: () => {}, error: () => {} },
  });
  await services.load();
  suite.after(() => services.close());
  const app = await buildApp({ services, adminTokenHash: hashToken('t') });
  suite.after(() => app.close());
  const publisher = generateKeyPair();
  const { root: r, targets: t0 } = createInitialMetadata({ publisher, online: services.products.onlineKeys(), now: new Date() });
  assert.equal((await app.inject({ method: 'POST', url: '/v1/admin/products', headers: { authorization: 'Bearer t' }, payload: { product: 'acme', root: r, targets: t0 } })).statusCode, 201);

  const publish = async (swu: Buffer, claimed: { sha256: string; length: number }) => {
    const dir = await writeTree(join(root, `tree-${Math.random().toString(36).slice(2)}`), { VERSION: '1.0.0' });
    const archive = join(root, `a-${Math.random().toString(36).slice(2)}.tar.gz`);
    const packed = await packTree(dir, archive);
    const tree = await hashTree(dir);
    const current = JSON.parse((await store.getMetadata('acme', 'targets'))!.json) as SignedJson;
    const targets = signNext(current, publisher, {
      'stable/1.0.0.tar.gz': { length: packed.length, sha256: packed.sha256, custom: { patchwire: { kind: 'full', product: 'acme', channel: 'stable', version: '1.0.0', treeHash: tree.hash, treeBytes: tree.bytes, treeFiles: tree.files } } },
    });
    const { body, contentType } = await multipartBody([
      ['metadata', JSON.stringify({ channel: 'stable', version: '1.0.0', targets, swu: claimed })],
      ['archive', await readFile(archive), 'release.tar.gz'],
      ['swu', swu, 'release.swu'],
    ]);
    return app.inject({ method: 'POST', url: '/v1/admin/products/acme/releases', headers: { authorization: 'Bearer t', 'content-type': contentType }, payload: body });
  };
  const stored = async () => ({
    releases: await store.listReleases('acme'),
    swu: await store.hawkbit.listSwu('acme'),
    artifacts: [...(await snapshotDir(join(dataDir, 'artifacts'))).keys()].filter((p) => !p.includes('/tmp')).sort(),
  });
  const before = await stored();
  const hashOf = (b: Buffer) => ({ sha256: createHash('sha256').update(b).digest('hex'), length: b.length });

  const notCpio = Buffer.from('x'.repeat(500));
  const bad = await publish(notCpio, hashOf(notCpio));
  assert.equal(bad.statusCode, 400, bad.body);
  assert.equal(bad.json().code, 'PW_BAD_SWU');
  assert.deepEqual(await stored(), before, 'a malformed .swu: nothing stored');

  const good = cpio([['sw-description', desc], ['sw-description.sig', sig], ['p.tar.gz', payload]]);
  const swapped = await publish(good, { ...hashOf(good), sha256: 'ab'.repeat(32) });
  assert.equal(swapped.statusCode, 400, swapped.body);
  assert.equal(swapped.json().code, 'PW_ARTIFACT_MISMATCH');
  assert.deepEqual(await stored(), before, 'a .swu other than the one hashed: nothing stored');

  const ok = await publish(good, hashOf(good));
  assert.equal(ok.statusCode, 201, ok.body);
  const swu = (await store.hawkbit.listSwu('acme'))[0]!;
  assert.deepEqual(ok.json().swu, { actionId: swu.actionId, sha256: hashOf(good).sha256, length: good.length });
  assert.equal(swu.sha1, createHash('sha1').update(good).digest('hex'));
});
