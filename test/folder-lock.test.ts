import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { withFolderLock } from '../src/agent/folder-lock.js';
import { AgentStateError, AlreadyInitialisedError, FolderLockedError } from '../src/agent/errors.js';
import { initAgent } from '../src/agent/init.js';
import { rollback } from '../src/agent/rollback.js';
import { retry } from '../src/agent/retry.js';
import { runCheck } from '../src/agent/check.js';
import { tempDir } from './helpers/temp-dir.js';

async function meta(t: { after(fn: () => unknown): void }): Promise<string> {
  const m = join(await tempDir(t, 'pw-lock-'), '.patchwire');
  await mkdir(m);
  return m;
}

/** The pid of a process that has ended (and been reaped). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

const holder = (pid: number, startTicks: string | null = null) =>
  JSON.stringify({ pid, startTicks, host: hostname(), command: 'check', since: '2030-01-01T00:00:00.000Z' });

test('the lock is held while fn runs and removed after, also when fn throws; no temporary file stays', async (t) => {
  const m = await meta(t);
  const seen = await withFolderLock(m, { command: 'check' }, async () => existsSync(join(m, 'lock')));
  assert.equal(seen, true);
  await assert.rejects(withFolderLock(m, { command: 'check' }, async () => { throw new Error('boom'); }), /boom/);
  assert.deepEqual(await readdir(m), []);
});

test('a lock held by a live process: FolderLockedError naming its pid and command', async (t) => {
  const m = await meta(t);
  await writeFile(join(m, 'lock'), holder(process.ppid));
  await assert.rejects(withFolderLock(m, { command: 'check', waitMs: 0 }, async () => 1), (err: unknown) => {
    assert.ok(err instanceof FolderLockedError);
    assert.equal(err.holderPid, process.ppid);
    assert.match(err.message, new RegExp(`pid ${process.ppid}, \`check\``));
    return true;
  });
});

test('a stale lock (dead pid, reused pid, unreadable) is taken over', async (t) => {
  const m = await meta(t);
  for (const content of [holder(deadPid()), holder(process.ppid, 'not-its-start-time'), 'garbage']) {
    await writeFile(join(m, 'lock'), content);
    assert.equal(await withFolderLock(m, { command: 'check', waitMs: 0 }, async () => 'ran'), 'ran', content);
    assert.equal(existsSync(join(m, 'lock')), false);
  }
});

test('a temporary lock file left by a killed process is removed by the next holder', async (t) => {
  const m = await meta(t);
  const left = join(m, `.lock-${deadPid()}-0badc0de`);
  await writeFile(left, holder(1));
  await withFolderLock(m, { command: 'check' }, async () => 1);
  assert.equal(existsSync(left), false);
});

test('a folder without .patchwire: AgentStateError saying to run init', async (t) => {
  const m = join(await tempDir(t, 'pw-lock-'), '.patchwire');
  await assert.rejects(withFolderLock(m, { command: 'check' }, async () => 1), (err: unknown) => err instanceof AgentStateError && /patchwire init/.test(err.message));
});

test('rollback, retry and init wait for the same lock: with no wait they refuse a busy folder and change nothing', async (t) => {
  const base = await tempDir(t, 'pw-lock-');
  const rootFile = join(base, 'root.json');
  await writeFile(rootFile, '{"signatures":[],"signed":{"_type":"root","version":1}}\n');
  const dir = join(base, 'install');
  await initAgent({ dir, server: 'http://127.0.0.1:9', product: 'acme', rootFile, deviceId: '02:00:00:00:09:01' });
  const state = await readFile(join(dir, '.patchwire', 'state.json'), 'utf8');
  await writeFile(join(dir, '.patchwire', 'lock'), holder(process.ppid));
  const busy = (err: unknown) => err instanceof FolderLockedError && err.holderPid === process.ppid;
  await assert.rejects(rollback({ dir, lockWaitMs: 0 }), busy);
  await assert.rejects(retry({ dir, lockWaitMs: 0 }), busy);
  await assert.rejects(runCheck({ dir, lockWaitMs: 0 }), busy);
  await assert.rejects(initAgent({ dir, server: 'http://127.0.0.1:9', product: 'acme', rootFile, lockWaitMs: 0, deviceId: '02:00:00:00:09:01' }), AlreadyInitialisedError);
  assert.equal(await readFile(join(dir, '.patchwire', 'state.json'), 'utf8'), state);
});

test('hostile things in place of the lock: a dangling or outside link and an oversized file are taken over (link removed, target kept); a folder is refused and kept', { timeout: 30_000 }, async (t) => {
  const m = await meta(t);
  const outside = join(m, '..', 'outside.txt');
  await writeFile(outside, 'keep me');
  const { symlink } = await import('node:fs/promises');
  for (const target of [join(m, '..', 'nothing-here'), outside]) {
    await symlink(target, join(m, 'lock'));
    // Bounded by waitMs: a link used to make the waiter spin forever.
    assert.equal(await withFolderLock(m, { command: 'check', waitMs: 500 }, async () => 'ran'), 'ran', target);
  }
  assert.equal(await readFile(outside, 'utf8'), 'keep me');
  await writeFile(join(m, 'lock'), Buffer.alloc(1024 * 1024, 0x20)); // not read whole
  assert.equal(await withFolderLock(m, { command: 'check', waitMs: 500 }, async () => 'ran'), 'ran');
  await mkdir(join(m, 'lock'));
  await writeFile(join(m, 'lock', 'inner'), 'x');
  await assert.rejects(withFolderLock(m, { command: 'check', waitMs: 500 }, async () => 'ran'), (err: unknown) => {
    assert.ok(err instanceof AgentStateError);
    assert.match(err.message, /is a folder, not patchwire's lock file: .*remove it/);
    return true;
  });
  assert.equal(await readFile(join(m, 'lock', 'inner'), 'utf8'), 'x');
});
