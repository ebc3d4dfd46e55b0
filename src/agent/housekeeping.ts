import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { compareVersions, isVersion } from '../protocol/index.js';
import type { AgentPaths } from './paths.js';
import { removeVersion } from './install.js';

/**
 * Removes what a killed run can leave behind: `versions/<v>.partial` folders, `versions/.<v>.old-*`
 * folders (a delete or replace cut short), temporary `current` links (`.current.*.tmp`) and
 * temporary files of atomic writes (`.*.tmp`) in `.patchwire/` and `.patchwire/tuf/`. Never
 * touches `current`, a `versions/<v>` folder, or a partial download (`downloads/*.part`, kept for a
 * Range resume). Returns the names removed.
 */
export async function removeLeftovers(paths: AgentPaths): Promise<string[]> {
  const removed: string[] = [];
  const sweep = async (dir: string, match: (name: string) => boolean) => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!match(name)) continue;
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(join(dir, name));
    }
  };
  await sweep(paths.versions, (n) => n.endsWith('.partial') || /^\..+\.old-[0-9a-f]+$/.test(n));
  await sweep(paths.dir, (n) => /^\.current\.[0-9a-f]+\.tmp$/.test(n));
  const atomicTmp = (n: string) => /^\..+\.[0-9a-f]{12}\.tmp$/.test(n);
  await sweep(paths.meta, atomicTmp);
  await sweep(paths.tuf, atomicTmp);
  return removed;
}

/**
 * Keeps `current`, the rollback target and the `keep` highest versions below `current`; deletes
 * every other `versions/<v>` folder (each atomically, see removeVersion). Returns the versions deleted.
 */
export async function pruneVersions(paths: AgentPaths, opts: { current: string; rollbackTarget: string | null; keep: number }): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(paths.versions);
  } catch {
    return [];
  }
  const versions = names.filter((n) => isVersion(n));
  const older = versions.filter((v) => compareVersions(v, opts.current) < 0).sort(compareVersions).reverse();
  const keep = new Set([opts.current, ...older.slice(0, opts.keep)]);
  if (opts.rollbackTarget) keep.add(opts.rollbackTarget);
  const deleted: string[] = [];
  for (const v of versions) {
    if (keep.has(v)) continue;
    await removeVersion(paths.dir, v);
    deleted.push(v);
  }
  return deleted;
}
