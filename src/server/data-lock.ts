import { lstat, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Another live process holds the data folder's lock. */
export class DataFolderInUseError extends Error {
  override name = 'DataFolderInUseError';
  constructor(readonly dataDir: string, readonly pid: number) {
    super(`the data folder ${dataDir} is in use by patchwire pid ${pid}; stop it first (or pass another --data)`);
  }
}

/** `<data>/.lock` is a folder (or something else no patchwire made): nothing is removed. */
export class DataLockUnusableError extends Error {
  override name = 'DataLockUnusableError';
}

/** A lock file holds a pid and a newline; anything longer is not ours and is not read whole. */
const MAX_LOCK_BYTES = 64;

/** The pid in the lock file; NaN when it holds none (stale). Throws DataLockUnusableError for a folder. */
async function lockPid(file: string): Promise<number> {
  const s = await lstat(file).catch(() => undefined);
  if (!s) return NaN;
  if (s.isDirectory()) {
    throw new DataLockUnusableError(`${file} is a folder, not patchwire's lock file: if no patchwire serves this data folder, remove it (rm -r ${file}) and start again`);
  }
  // A link or an oversized file is no lock of ours: stale (unlink removes a link, never its target).
  if (!s.isFile() || s.size > MAX_LOCK_BYTES) return NaN;
  return Number((await readFile(file, 'utf8').catch(() => '')).trim());
}

export interface DataLock {
  /** Removes the lock file (only while it still names this process). */
  release(): Promise<void>;
}

/** The lock's pid is another live process (our own pid: a lock left by a container's earlier pid 1). */
function holder(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One writer per data folder: `<data>/.lock`, created exclusively (O_EXCL) holding this process's
 * pid. SQLite's own locking is not enough: the artifacts and keys in the folder are shared too. A
 * lock whose pid is no longer alive (a killed server) is stale and taken over.
 */
export async function lockDataFolder(dataDir: string): Promise<DataLock> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true });
  const file = join(dir, '.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = await lockPid(file);
    // attempt > 0: another process took the stale lock over just now.
    if (attempt > 0 || holder(pid)) throw new DataFolderInUseError(dir, pid);
    // Stale (or half-written by a process killed between create and write): take it over.
    await unlink(file).catch(() => {});
  }
  return {
    async release() {
      const text = await readFile(file, 'utf8').catch(() => '');
      if (text.trim() === String(process.pid)) await unlink(file).catch(() => {});
    },
  };
}
