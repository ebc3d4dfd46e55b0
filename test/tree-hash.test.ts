import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashTree } from '../src/util/tree-hash.js';
import { tempDir } from './helpers/temp-dir.js';

async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'empty-dir'));
  await writeFile(join(root, 'bin', 'run'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await chmod(join(root, 'bin', 'run'), 0o755);
  await writeFile(join(root, 'a.txt'), 'hello');
  await symlink('bin/run', join(root, 'run-link'));
}

test('tree hash is deterministic and independent of creation order', async (t) => {
  const root = await tempDir(t, 'pw-treehash-');
  const a = join(root, 'a');
  const b = join(root, 'b');
  await mkdir(a);
  await makeTree(a);
  await mkdir(b);
  // Same tree, built in a different order.
  await symlink('bin/run', join(b, 'run-link'));
  await writeFile(join(b, 'a.txt'), 'hello');
  await mkdir(join(b, 'empty-dir'));
  await mkdir(join(b, 'bin'));
  await writeFile(join(b, 'bin', 'run'), '#!/bin/sh\necho hi\n');
  await chmod(join(b, 'bin', 'run'), 0o700); // any execute bit counts as 755
  const h1 = await hashTree(a);
  assert.deepEqual(await hashTree(a), h1);
  assert.deepEqual(await hashTree(b), h1);
  assert.match(h1.hash, /^[0-9a-f]{64}$/);
  assert.equal(h1.files, 2);
  assert.equal(h1.bytes, 5 + '#!/bin/sh\necho hi\n'.length);
});

test('tree hash matches the documented manifest format', async (t) => {
  const root = await tempDir(t, 'pw-treehash-');
  await makeTree(root);
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const run = '#!/bin/sh\necho hi\n';
  const manifest =
    `f 644 5 ${sha('hello')} "a.txt"\n` +
    `d "bin"\n` +
    `f 755 ${run.length} ${sha(run)} "bin/run"\n` +
    `d "empty-dir"\n` +
    `l "bin/run" "run-link"\n`;
  assert.equal((await hashTree(root)).hash, sha(manifest));
});

test('tree hash changes with a byte, a mode, a name, a link target', async (t) => {
  const root = await tempDir(t, 'pw-treehash-');
  await makeTree(root);
  const base = (await hashTree(root)).hash;
  const seen = new Set([base]);
  const expectNew = async (what: string) => {
    const h = (await hashTree(root)).hash;
    assert.ok(!seen.has(h), `hash did not change after ${what}`);
    seen.add(h);
  };

  await writeFile(join(root, 'a.txt'), 'hellp');
  await expectNew('a byte changed');
  await chmod(join(root, 'a.txt'), 0o744);
  await expectNew('an execute bit was set');
  await rename(join(root, 'a.txt'), join(root, 'b.txt'));
  await expectNew('a rename');
  await rm(join(root, 'run-link'));
  await symlink('bin/other', join(root, 'run-link'));
  await expectNew('a link target changed');
  await mkdir(join(root, 'new-empty'));
  await expectNew('an empty folder was added');
});

test('tree hash does not follow symbolic links', async (t) => {
  const root = await tempDir(t, 'pw-treehash-');
  const tree = join(root, 'tree');
  const outside = join(root, 'outside');
  await mkdir(tree);
  await mkdir(outside);
  await writeFile(join(outside, 'f'), 'one');
  await symlink(outside, join(tree, 'to-dir'));
  await symlink(join(outside, 'f'), join(tree, 'to-file'));
  const before = await hashTree(tree);
  assert.equal(before.files, 0);
  await writeFile(join(outside, 'f'), 'two, longer');
  await writeFile(join(outside, 'g'), 'new');
  assert.deepEqual(await hashTree(tree), before);
});

test('a name containing a newline or a quote cannot forge manifest lines', async (t) => {
  const root = await tempDir(t, 'pw-treehash-');
  const e3 = createHash('sha256').update('').digest('hex');
  const one = join(root, 'one');
  const two = join(root, 'two');
  await mkdir(one);
  await mkdir(two);
  // Without escaping, one file named `a\nf 644 0 <e3> b` would print the same manifest as two
  // empty files `a` and `b`; the quoted variant targets a naive quoting scheme.
  await writeFile(join(two, 'a'), '');
  await writeFile(join(two, 'b'), '');
  await writeFile(join(one, `a\nf 644 0 ${e3} b`), '');
  const three = join(root, 'three');
  await mkdir(three);
  await writeFile(join(three, `a"\nf 644 0 ${e3} "b`), '');
  const hashes = new Set([(await hashTree(one)).hash, (await hashTree(two)).hash, (await hashTree(three)).hash]);
  assert.equal(hashes.size, 3);
});

test('tree hash refuses fifos', async (t) => {
  const root = await tempDir(t, 'pw-treehash-');
  const r = spawnSync('mkfifo', [join(root, 'pipe')]);
  if (r.status !== 0) return t.skip('mkfifo unavailable');
  await assert.rejects(hashTree(root), /pipe is a fifo/);
});

test('tree hash honours an aborted signal', async (t) => {
  const root = await tempDir(t, 'pw-treehash-');
  await makeTree(root);
  await assert.rejects(hashTree(root, AbortSignal.abort()), { name: 'AbortError' });
});
