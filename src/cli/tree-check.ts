import { dirname, join, resolve } from 'node:path';
import { CliError } from './cli-error.js';
import { checkEntryPath, linkTargetProblem } from '../util/archive-paths.js';
import { walkTree } from '../util/tree-walk.js';
import { ARCHIVE_LIMITS } from '../util/archive-limits.js';

/**
 * Refuses, before anything is signed or sent, a release folder that agents would refuse to
 * extract: bad input (exit 2) naming the entry and what to do about it. packTree refuses the same
 * entries, but as a failure with no remedy.
 */
export async function checkReleaseTree(dir: string): Promise<void> {
  const entries = await walkTree(dir);
  if (entries.length > ARCHIVE_LIMITS.entries) {
    throw new CliError(`${dir} holds ${entries.length} files, folders and links, more than the ${ARCHIVE_LIMITS.entries} a release may hold; split it into several products`);
  }
  for (const e of entries) {
    const shown = join(dir, e.rel);
    const p = checkEntryPath(e.rel);
    if ('problem' in p) throw new CliError(`${shown}: ${p.problem}; rename it or remove it from the release folder`);
    if (e.kind !== 'link') continue;
    const problem = linkTargetProblem(e.rel, e.target);
    if (!problem) continue;
    const to = resolve(dirname(resolve(dir, e.rel)), e.target);
    throw new CliError(`${shown} links outside the tree to ${to} (${problem}); replace the link by a copy or point it inside the tree`);
  }
}
