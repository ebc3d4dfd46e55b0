import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Owner } from './cleanup.js';

/** A fresh, empty folder under the system temp folder, removed with all it holds when `owner` cleans up. */
export async function tempDir(owner: Owner, prefix = 'patchwire-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  owner.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
