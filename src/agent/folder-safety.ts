import { lstat } from 'node:fs/promises';
import { UnsafeFolderError } from './errors.js';
import { agentPaths, type AgentPaths } from './paths.js';
import { withFolderLock, type LockOptions } from './folder-lock.js';

/**
 * Refuses to work on an install folder whose own folders are not plainly the agent's: the install
 * folder itself (the parent of `current`), `versions/` and `.patchwire/` must each be a real
 * directory (lstat: a symlink is refused, never followed) owned by the user the agent runs as.
 * Otherwise whoever placed the link would make the agent install, prune or keep its state
 * elsewhere. Folders above the install folder are not checked (a symlinked /home is common).
 * `versions/` may be absent (created at the first install). Throws UnsafeFolderError.
 *
 * TOCTOU: Node has no openat()/O_NOFOLLOW for folders, so the check is repeated right before the
 * steps that write or delete under `versions/` (stage, prune: install.ts); a swap between that
 * check and the operation is possible only for someone who can already write the install folder.
 */
export async function assertSafeFolders(paths: AgentPaths, which: Array<'dir' | 'versions' | 'meta'> = ['dir', 'versions', 'meta']): Promise<void> {
  const uid = process.getuid?.();
  for (const key of which) {
    const path = paths[key];
    const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    // A missing folder: `versions/` before the first install; the others are reported by the code that needs them.
    if (!st) continue;
    const fix = `make ${path} a plain folder owned by the user running patchwire (uid ${uid ?? '?'}), or run \`patchwire init\` in a fresh folder; nothing was changed`;
    if (st.isSymbolicLink()) throw new UnsafeFolderError(`${path} is a symbolic link: patchwire refuses to install, prune or keep state through it; ${fix}`, path);
    if (!st.isDirectory()) throw new UnsafeFolderError(`${path} is not a folder; ${fix}`, path);
    if (uid !== undefined && st.uid !== uid) throw new UnsafeFolderError(`${path} is owned by uid ${st.uid}, not by this user (uid ${uid}); ${fix}`, path);
  }
}

/**
 * Runs `fn` holding the install folder's lock, after checking that the folder, `versions/` and
 * `.patchwire/` are safe: before the lock, since a symlinked `.patchwire/` would put even the
 * lock file elsewhere. Every command that changes an install folder (check, rollback, retry) goes
 * through here.
 */
export async function withSafeFolderLock<T>(dir: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const paths = agentPaths(dir);
  await assertSafeFolders(paths);
  return withFolderLock(paths.meta, opts, fn);
}
