// The server's data-folder lock against what may stand in its place (unit; the lock between real
// `serve` processes is in e2e-server-lifecycle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataLockUnusableError, lockDataFolder } from '../src/server/data-lock.js';
import { tempDir } from './helpers/temp-dir.js';

test('a folder named .lock is refused with what to do, and kept', async (t) => {
  const data = await tempDir(t, 'pw-datalock-');
  await mkdir(join(data, '.lock'));
  await assert.rejects(lockDataFolder(data), (err: unknown) => {
    assert.ok(err instanceof DataLockUnusableError);
    assert.match(err.message, /is a folder, not patchwire's lock file: .*remove it/);
    return true;
  });
  assert.ok(existsSync(join(data, '.lock')));
});

test('an oversized file or a link in place of .lock is stale: taken over, a link target untouched', async (t) => {
  const data = await tempDir(t, 'pw-datalock-');
  const outside = join(data, '..', `${data.split('/').pop()}-outside`);
  await writeFile(outside, 'keep me');
  t.after(() => import('node:fs/promises').then((f) => f.rm(outside, { force: true })));
  for (const make of [() => writeFile(join(data, '.lock'), Buffer.alloc(1024 * 1024, 0x31)), () => symlink(outside, join(data, '.lock'))]) {
    await make();
    const lock = await lockDataFolder(data);
    assert.equal((await readFile(join(data, '.lock'), 'utf8')).trim(), String(process.pid));
    await lock.release();
  }
  assert.equal(await readFile(outside, 'utf8'), 'keep me');
});
