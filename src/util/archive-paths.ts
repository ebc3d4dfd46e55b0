/**
 * Path rules shared by the packer (refuse to publish what agents would refuse) and the extractor
 * (never trust a path from an archive, docs/design.md sections 3 and 6). Functions return a reason
 * string rather than throw, so each caller picks its own error class.
 */
import { pathLimitProblem, type ArchiveLimit } from './archive-limits.js';

/**
 * Normalises an archive entry path to `a/b/c` (no `.` or empty components, no trailing `/`).
 * Returns `{ path: '' }` for the archive root (`./`, as GNU tar writes it).
 */
export function checkEntryPath(raw: string): { path: string } | { problem: string; limit?: ArchiveLimit } {
  if (raw === '') return { problem: 'empty name' };
  const common = commonProblem(raw);
  if (common) return { problem: common };
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { problem: 'path has a ".." component' };
  const path = parts.join('/');
  return pathLimitProblem(path) ?? { path };
}

/**
 * A link target must be relative and stay inside the tree. Stricter than a lexical resolve: a
 * `..` may only lead the target (`../../x/y`). `a/../b` is refused because the kernel resolves
 * `a` first, and if `a` is itself a link (perhaps one created later in the archive) the `..`
 * climbs from wherever `a` points, which lexical checking cannot see. With `..` only leading,
 * the climb goes through the link's own real parent folders, and every other link is checked
 * the same way, so resolution can never leave the tree.
 */
export function linkTargetProblem(linkPath: string, target: string): string | undefined {
  if (target === '') return 'symbolic link has an empty target';
  const long = pathLimitProblem(target);
  if (long) return `symbolic link target: ${long.problem}`;
  const common = commonProblem(target);
  if (common) return `symbolic link target ${JSON.stringify(target)}: ${common}`;
  let depth = linkPath.split('/').length - 1; // folders between the tree root and the link
  let seenName = false;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (seenName) return `symbolic link target ${JSON.stringify(target)} has ".." after a name`;
      depth -= 1;
      if (depth < 0) return `symbolic link target ${JSON.stringify(target)} resolves outside the destination`;
    } else {
      seenName = true;
    }
  }
  return undefined;
}

function commonProblem(p: string): string | undefined {
  if (p.includes('\0')) return 'contains a NUL byte';
  if (p.startsWith('/')) return 'absolute path';
  // On Windows `\` separates and `C:` roots a path; refuse both so a tree means the same everywhere.
  if (p.includes('\\')) return 'contains a backslash';
  if (/^[A-Za-z]:/.test(p)) return 'Windows drive path';
  return undefined;
}
