import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ReleaseTargetCustom, ReportRequest } from '../src/protocol/index.js';
import { packTree } from '../src/util/archive-pack.js';
import { hashTree } from '../src/util/tree-hash.js';
import { applyRelease, readCurrent, switchCurrent } from '../src/agent/install.js';
import { initAgent } from '../src/agent/init.js';
import { rollback } from '../src/agent/rollback.js';
import { loadState, saveState } from '../src/agent/state.js';
import { RollbackUnavailableError, VerificationError } from '../src/agent/errors.js';
import type { Owner } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';

/** Builds a release tree for `version`, packs it, and returns the archive and its signed custom field. */
async function release(base: string, version: string, extra = ''): Promise<{ archive: string; custom: ReleaseTargetCustom }> {
  const src = join(base, `src-${version}`);
  await mkdir(join(src, 'bin'), { recursive: true });
  await writeFile(join(src, 'VERSION'), `${version}\n${extra}`);
  await writeFile(join(src, 'bin', 'run'), '#!/bin/sh\necho run\n');
  await chmod(join(src, 'bin', 'run'), 0o755);
  await symlink('bin/run', join(src, 'start'));
  const archive = join(base, `${version}.tar.gz`);
  await packTree(src, archive);
  const tree = await hashTree(src);
  return {
    archive,
    custom: { patchwire: { kind: 'full', product: 'acme', channel: 'stable', version, treeHash: tree.hash, treeBytes: tree.bytes, treeFiles: tree.files } },
  };
}

async function listVersions(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'versions'))).sort();
}

test('applyRelease installs a real archive and switches current, a relative symlink', async (t) => {
  const base = await tempDir(t, 'pw-install-');
  const dir = join(base, 'install');
  await mkdir(dir);
  assert.equal(await readCurrent(dir), null);

  const r1 = await release(base, '1.0.0');
  const applied = await applyRelease(dir, r1.archive, r1.custom);
  assert.deepEqual(applied, { version: '1.0.0', files: 2, bytes: r1.custom.patchwire.treeBytes });
  assert.ok((await lstat(join(dir, 'current'))).isSymbolicLink());
  assert.equal(await readlink(join(dir, 'current')), 'versions/1.0.0');
  assert.equal(await readCurrent(dir), '1.0.0');
  assert.equal(await readFile(join(dir, 'current', 'VERSION'), 'utf8'), '1.0.0\n');
  assert.equal((await hashTree(join(dir, 'current'))).hash, r1.custom.patchwire.treeHash);
  assert.equal((await stat(join(dir, 'current', 'bin', 'run'))).mode & 0o777, 0o755);

  // A leftover .partial from a killed earlier attempt is replaced.
  await mkdir(join(dir, 'versions', '1.1.0.partial', 'junk'), { recursive: true });
  const r2 = await release(base, '1.1.0');
  await applyRelease(dir, r2.archive, r2.custom);
  assert.equal(await readlink(join(dir, 'current')), 'versions/1.1.0');
  assert.deepEqual(await listVersions(dir), ['1.0.0', '1.1.0'], 'previous version kept, no .partial left');
  assert.deepEqual((await readdir(dir)).sort(), ['current', 'versions'], 'no temporary links left');

  // The install folder can be moved: the link is relative.
  const moved = join(base, 'moved');
  assert.equal(spawnSync('mv', [dir, moved]).status, 0);
  assert.equal(await readFile(join(moved, 'current', 'VERSION'), 'utf8'), '1.1.0\n');
});

test('applyRelease reuses an intact already-built version (kill between build and state save)', async (t) => {
  const base = await tempDir(t, 'pw-install-');
  const dir = join(base, 'install');
  const r1 = await release(base, '1.0.0');
  await mkdir(dir);
  await applyRelease(dir, r1.archive, r1.custom);
  await rm(r1.archive);
  await applyRelease(dir, r1.archive, r1.custom); // archive gone: must not be needed
  assert.equal(await readCurrent(dir), '1.0.0');
});

test('a tree hash mismatch leaves current unchanged and removes .partial', async (t) => {
  const base = await tempDir(t, 'pw-install-');
  const dir = join(base, 'install');
  await mkdir(dir);
  const r1 = await release(base, '1.0.0');
  await applyRelease(dir, r1.archive, r1.custom);

  const r2 = await release(base, '1.1.0');
  const wrong: ReleaseTargetCustom = { patchwire: { ...r2.custom.patchwire, treeHash: 'f'.repeat(64) } };
  await assert.rejects(applyRelease(dir, r2.archive, wrong), (err: unknown) => {
    assert.ok(err instanceof VerificationError, String(err));
    assert.match(err.message, /tree hash/);
    return true;
  });
  assert.equal(await readlink(join(dir, 'current')), 'versions/1.0.0');
  assert.deepEqual(await listVersions(dir), ['1.0.0']);

  // More bytes than the signed tree size: refused while extracting (endless data).
  const small: ReleaseTargetCustom = { patchwire: { ...r2.custom.patchwire, treeBytes: 3 } };
  await assert.rejects(applyRelease(dir, r2.archive, small));
  assert.equal(await readCurrent(dir), '1.0.0');
  assert.deepEqual(await listVersions(dir), ['1.0.0']);
});

test('an archive entry leaving the install folder is refused as VerificationError', async (t) => {
  const base = await tempDir(t, 'pw-install-');
  const dir = join(base, 'install');
  await mkdir(dir);
  await writeFile(join(base, 'evil'), 'x');
  const archive = join(base, 'evil.tar.gz');
  // GNU tar writes `../../evil` as given (it only strips it when extracting).
  const tar = spawnSync('tar', ['-czf', archive, '-C', base, '--transform', 's,^,../../,', 'evil']);
  assert.equal(tar.status, 0, String(tar.stderr));
  assert.match(spawnSync('tar', ['-tzf', archive]).stdout.toString(), /^\.\.\/\.\.\/evil$/m);
  const custom: ReleaseTargetCustom = { patchwire: { kind: 'full', product: 'acme', channel: 'stable', version: '6.6.6', treeHash: 'a'.repeat(64), treeBytes: 100, treeFiles: 1 } };
  await assert.rejects(applyRelease(dir, archive, custom), VerificationError);
  assert.equal(await readCurrent(dir), null);
  assert.deepEqual(await listVersions(dir), []);
  // `versions/6.6.6.partial/../../evil` would be `install/evil`.
  await assert.rejects(stat(join(dir, 'evil')), { code: 'ENOENT' });
});

test('switchCurrent refuses a version that is not installed', async (t) => {
  const base = await tempDir(t, 'pw-install-');
  await mkdir(join(base, 'versions'));
  await assert.rejects(switchCurrent(base, '9.9.9'), /not an installed version/);
  await assert.rejects(stat(join(base, 'current')), { code: 'ENOENT' });
});

/** A real HTTP server that records the reports it receives (with the token its /v1/auth gave). */
async function reportServer(t: Owner): Promise<{ url: string; reports: ReportRequest[] }> {
  const reports: ReportRequest[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/auth') {
        // The device signs its auth and gets a token (here a fixed one); the report must carry it.
        const expiresAt = new Date(Date.now() + 3600_000).toISOString();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'test-token', expiresAt, status: 'accepted', keyId: 'k' }));
      } else if (req.method === 'POST' && req.url === '/v1/report' && req.headers.authorization === 'Bearer test-token') {
        const r = JSON.parse(body) as ReportRequest;
        reports.push(r);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, version: r.version }));
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reports };
}

async function installedAgent(t: Owner, server: string) {
  const base = await tempDir(t, 'pw-install-');
  const dir = join(base, 'install');
  const rootFile = join(base, 'root.json');
  await writeFile(rootFile, '{"signatures":[],"signed":{"_type":"root","version":1}}');
  await initAgent({ dir, server, product: 'acme', rootFile, deviceId: '02:00:00:00:00:01' });
  const statePath = join(dir, '.patchwire', 'state.json');
  const r1 = await release(base, '1.0.0');
  const r2 = await release(base, '1.1.0');
  await applyRelease(dir, r1.archive, r1.custom);
  await applyRelease(dir, r2.archive, r2.custom);
  // What a check that updated 1.0.0 -> 1.1.0 leaves behind.
  await saveState(statePath, { ...(await loadState(statePath)), version: '1.1.0', previousVersion: '1.0.0' });
  return { dir, statePath };
}

test('rollback switches back to the previous version, remembers the version left, and reports', async (t) => {
  const srv = await reportServer(t);
  const { dir, statePath } = await installedAgent(t, srv.url);
  const r = await rollback({ dir });
  // The shape of `check`'s rolled-back result (issue 8): result and previousVersion added, heldBack named.
  assert.deepEqual(r, { result: 'rolled-back', version: '1.0.0', previousVersion: '1.1.0', rolledBackFrom: '1.1.0', heldBack: '1.1.0', server: srv.url, reported: true });
  assert.equal(await readlink(join(dir, 'current')), 'versions/1.0.0');
  const state = await loadState(statePath);
  assert.equal(state.version, '1.0.0');
  assert.equal(state.previousVersion, null);
  assert.equal(state.rolledBack, '1.1.0');
  assert.equal(state.pendingReport, null);
  assert.deepEqual(srv.reports, [
    { deviceId: '02:00:00:00:00:01', product: 'acme', channel: 'stable', event: 'rolled-back', version: '1.0.0', previousVersion: '1.1.0' },
  ]);
  // Nothing further back to go to.
  await assert.rejects(rollback({ dir }), RollbackUnavailableError);
  assert.equal(await readCurrent(dir), '1.0.0');
});

test('rollback keeps the report pending when the server is down, and refuses a missing version folder', async (t) => {
  const srv = await reportServer(t);
  const down = `${srv.url.replace(/:\d+$/, '')}:1`; // port 1: nothing listens there
  const { dir, statePath } = await installedAgent(t, down);
  const r = await rollback({ dir });
  assert.equal(r.reported, false);
  const state = await loadState(statePath);
  assert.equal(state.pendingReport?.event, 'rolled-back');
  assert.equal(state.version, '1.0.0');

  // A previous version whose folder is gone: clear error, nothing changed.
  await saveState(statePath, { ...state, version: '1.1.0', previousVersion: '0.9.0' });
  await switchCurrent(dir, '1.1.0');
  await assert.rejects(rollback({ dir }), (err: unknown) => {
    assert.ok(err instanceof RollbackUnavailableError);
    assert.match(err.message, /0\.9\.0/);
    return true;
  });
  assert.equal(await readCurrent(dir), '1.1.0');
  assert.equal((await loadState(statePath)).version, '1.1.0');
});
