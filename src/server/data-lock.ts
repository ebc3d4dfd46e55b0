import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Another live process holds the data folder's lock. */
export class DataFolderInUseError extends Error {
  override name = 'DataFolderInUseError';
  constructor(readonly dataDir: string, readonly pid: number) {
    super(`the data folder ${dataDir} is in use by patchwire pid ${pid}; stop it first (or pass another --data)`);
  }
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
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
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
