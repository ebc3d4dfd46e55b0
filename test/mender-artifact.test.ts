import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { packTree } from '../src/util/archive-pack.js';
import { measureTree, menderArtifact } from '../src/server/compat/mender/artifact.js';
import { crc32, storedGzipMember } from '../src/server/compat/mender/gzip-stored.js';
import { tempDir } from './helpers/temp-dir.js';

const MENDER_ARTIFACT = '/usr/bin/mender-artifact';

async function build(root: string, tree: string, dest: string, name = '1.1.0'): Promise<Buffer> {
  const gz = join(root, `${name}.tar.gz`);
  const packed = await packTree(tree, gz);
  const digest = await measureTree(createReadStream(gz), 1 << 30);
  const a = menderArtifact({ artifactName: name, deviceType: 'demo', destDir: dest, tree: async () => createReadStream(gz), treeLength: packed.length }, digest);
  const chunks: Buffer[] = [];
  for await (const c of a.stream()) chunks.push(c);
  const out = Buffer.concat(chunks);
  assert.equal(out.length, a.length, 'the announced length is the written one');
  return out;
}

async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await writeFile(join(dir, 'bin', 'app'), '#!/bin/sh\necho 1.1.0\n', { mode: 0o755 });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ v: 1 }));
  await writeFile(join(dir, 'big.bin'), Buffer.alloc(200_000, 7)); // more than one stored block around it
}

test('stored gzip members decompress to their input, concatenated too', () => {
  for (const n of [0, 1, 511, 65535, 65536, 200_000]) {
    const data = Buffer.alloc(n, 0x61);
    assert.deepEqual(gunzipSync(storedGzipMember(data)), data, `${n} bytes`);
  }
  const two = Buffer.concat([storedGzipMember(Buffer.from('ab')), storedGzipMember(Buffer.from('cd'))]);
  assert.equal(gunzipSync(two).toString(), 'abcd');
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926); // the standard check value
});

test('the artifact is byte-stable: the same release gives the same bytes, another folder other bytes', async (t) => {
  const root = await tempDir(t);
  const tree = join(root, 'tree');
  await makeTree(tree);
  const a = await build(root, tree, '/opt/demo');
  const b = await build(root, tree, '/opt/demo');
  assert.ok(a.equals(b), 'two builds of one release are identical');
  assert.ok(a.length >= 4096, 'the client refuses artifacts under 4096 bytes');
  const c = await build(root, tree, '/opt/other');
  assert.ok(!a.equals(c));
});

test('mender-artifact reads and validates what the writer wrote', async (t) => {
  if (!existsSync(MENDER_ARTIFACT)) return t.skip('mender-artifact is not installed (apt-get install mender-artifact)');
  const root = await tempDir(t);
  const tree = join(root, 'tree');
  await makeTree(tree);
  const file = join(root, 'demo.mender');
  await writeFile(file, await build(root, tree, '/opt/demo'));
  const read = spawnSync(MENDER_ARTIFACT, ['read', file], { encoding: 'utf8' });
  assert.equal(read.status, 0, read.stderr);
  assert.match(read.stdout, /Name: 1\.1\.0/);
  assert.match(read.stdout, /Compatible devices: '\[demo\]'/);
  assert.match(read.stdout, /Type:\s+directory/);
  assert.match(read.stdout, /rootfs-image\.directory\.version: 1\.1\.0/);
  assert.match(read.stdout, /name:\s+update\.tar/);
  assert.match(read.stdout, /name:\s+dest_dir/);
  const valid = spawnSync(MENDER_ARTIFACT, ['validate', file], { encoding: 'utf8' });
  assert.equal(valid.status, 0, `${valid.stdout}${valid.stderr}`);

  // The payload, as the directory module gets it: update.tar is the release's tree.
  const out = join(root, 'out');
  await mkdir(out);
  const x = spawnSync('/usr/bin/tar', ['-xf', file, '-C', out]);
  assert.equal(x.status, 0);
  const y = spawnSync('/usr/bin/tar', ['-xzf', join(out, 'data/0000.tar.gz'), '-C', out]);
  assert.equal(y.status, 0, String(y.stderr));
  assert.equal(await readFile(join(out, 'dest_dir'), 'utf8'), '/opt/demo');
  const list = spawnSync('/usr/bin/tar', ['-tf', join(out, 'update.tar')], { encoding: 'utf8' });
  assert.deepEqual(list.stdout.trim().split('\n').sort(), ['big.bin', 'bin/', 'bin/app', 'config.json']);
});

test('a corrupted payload fails mender-artifact validate (the manifest sha256 lines are checked)', async (t) => {
  if (!existsSync(MENDER_ARTIFACT)) return t.skip('mender-artifact is not installed (apt-get install mender-artifact)');
  const root = await tempDir(t);
  const tree = join(root, 'tree');
  await makeTree(tree);
  const good = await build(root, tree, '/opt/demo');
  // The manifest names update.tar's hash: change one hex digit of that line.
  const text = good.toString('latin1');
  const at = text.indexOf('  data/0000/update.tar') - 1;
  const bad = Buffer.from(good);
  bad[at] = bad[at] === 0x30 ? 0x31 : 0x30;
  const file = join(root, 'bad.mender');
  await writeFile(file, bad);
  const valid = spawnSync(MENDER_ARTIFACT, ['validate', file], { encoding: 'utf8' });
  assert.notEqual(valid.status, 0, 'a wrong checksum must not validate');
});

test('measureTree refuses a tree larger than its bound', async () => {
  const big = Readable.from([storedGzipMember(Buffer.alloc(10_000))]);
  await assert.rejects(measureTree(big, 1000), /more than 1000 bytes/);
});
