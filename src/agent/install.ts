import { assertSafeFolders } from './folder-safety.js';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isVersion, type ReleaseTargetCustom } from '../protocol/index.js';
import { ArchiveLimitError, extractArchive, UnsafeArchiveError } from '../util/archive-extract.js';
import { fsyncDir } from '../util/atomic-write.js';
import { hashTree } from '../util/tree-hash.js';
import { VerificationError } from './errors.js';
import { agentPaths } from './paths.js';

export interface ApplyResult {
  version: string;
  files: number;
  bytes: number;
}

/**
 * Installs a verified full archive: stageRelease (extract into `versions/<v>.partial`, bounded by
 * the signed tree size, check the tree hash against the signed one, fsync, rename the folder to
 * `versions/<v>`), then switchCurrent. A kill at any instant leaves `current` at the old
 * or the new version. A tree hash mismatch or an unsafe archive deletes `.partial`, leaves
 * `current` alone and throws VerificationError. Earlier versions are kept (for rollback).
 */
export async function applyRelease(
  dir: string,
  archivePath: string,
  custom: ReleaseTargetCustom,
  opts: { signal?: AbortSignal } = {},
): Promise<ApplyResult> {
  const staged = await stageRelease(dir, archivePath, custom, opts);
  await switchCurrent(dir, staged.version);
  return staged;
}

/**
 * The `stage` step: builds `versions/<v>` from a verified full archive without touching
 * `current`. Extracts into `versions/<v>.partial` (bounded by the signed tree size), checks the
 * tree hash against the signed one, fsyncs, and renames the folder to `versions/<v>`. An intact
 * `versions/<v>` from an earlier attempt is reused (the archive is then not read). A tree hash
 * mismatch or an unsafe archive deletes `.partial` and throws VerificationError.
 */
export async function stageRelease(
  dir: string,
  archivePath: string,
  custom: ReleaseTargetCustom,
  opts: { signal?: AbortSignal; gzip?: boolean } = {},
): Promise<ApplyResult> {
  const { signal } = opts;
  const { version, treeHash, treeBytes } = custom.patchwire;
  if (!isVersion(version)) throw new VerificationError(`signed release version ${JSON.stringify(version)} is not a valid version`);
  const paths = agentPaths(dir);
  const final = join(paths.versions, version);
  const partial = `${final}.partial`;
  await mkdir(paths.versions, { recursive: true });
  // Again right before writing (folder-safety.ts, TOCTOU): mkdir accepts a link to a folder.
  await assertSafeFolders(paths, ['dir', 'versions']);

  // Already built (a kill between building and switching): reuse it if still intact.
  if (await isDir(final)) {
    const existing = await hashTree(final, signal).catch(() => undefined);
    if (existing?.hash === treeHash) return { version, files: existing.files, bytes: existing.bytes };
  }

  await rm(partial, { recursive: true, force: true });
  await mkdir(partial);
  let tree;
  try {
    await extractArchive(archivePath, partial, { maxBytes: treeBytes, signal, gzip: opts.gzip });
    tree = await hashTree(partial, signal);
    if (tree.hash !== treeHash) {
      throw new VerificationError(
        `release ${version}: the extracted tree hash ${tree.hash} differs from the signed ${treeHash}: nothing was switched; the release is broken, ask the publisher`,
        partial,
      );
    }
    await fsyncTree(partial);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    if (err instanceof UnsafeArchiveError || err instanceof ArchiveLimitError) {
      throw new VerificationError(`release ${version}: the archive is unsafe (${err.message}): nothing was switched`, archivePath, { cause: err });
    }
    throw err;
  }

  if (await exists(final)) {
    // A damaged earlier copy: move it aside (rename cannot replace a non-empty folder).
    const aside = join(paths.versions, `.${version}.old-${randomBytes(4).toString('hex')}`);
    await rename(final, aside);
    await rename(partial, final);
    await rm(aside, { recursive: true, force: true });
  } else {
    await rename(partial, final);
  }
  fsyncDir(paths.versions);
  return { version, files: tree.files, bytes: tree.bytes };
}

/**
 * Deletes `versions/<version>` so that a kill never leaves a half-deleted tree under a version's
 * name: the folder is first renamed to `versions/.<version>.old-<random>` (which the next start
 * removes if the kill came before the delete finished).
 */
export async function removeVersion(dir: string, version: string): Promise<void> {
  const paths = agentPaths(dir);
  if (!isVersion(version)) return;
  const final = join(paths.versions, version);
  if (!(await exists(final))) return;
  await assertSafeFolders(paths, ['dir', 'versions']);
  const aside = join(paths.versions, `.${version}.old-${randomBytes(4).toString('hex')}`);
  await rename(final, aside);
  fsyncDir(paths.versions);
  await rm(aside, { recursive: true, force: true });
}

/** Removes the `current` link (a rollback of a first install: there is no older version to point at). */
export async function removeCurrent(dir: string): Promise<void> {
  await rm(agentPaths(dir).current, { force: true });
  fsyncDir(agentPaths(dir).dir);
}

/**
 * Points `current` at `versions/<version>` (a relative link, so the install folder can be moved):
 * creates a temporary link and renames it over `current`, which is atomic, then fsyncs the folder.
 */
export async function switchCurrent(dir: string, version: string): Promise<void> {
  const paths = agentPaths(dir);
  if (!isVersion(version) || !(await isDir(join(paths.versions, version)))) {
    throw new Error(`cannot switch to version ${version}: ${join(paths.versions, version)} is not an installed version`);
  }
  const tmp = join(paths.dir, `.current.${randomBytes(6).toString('hex')}.tmp`);
  await symlink(`versions/${version}`, tmp);
  try {
    await rename(tmp, paths.current);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  fsyncDir(paths.dir);
}

/** The version `current` points at, or null when there is no `current` link (or it is not ours). */
export async function readCurrent(dir: string): Promise<string | null> {
  let target: string;
  try {
    target = await readlink(agentPaths(dir).current);
  } catch {
    return null;
  }
  const m = /^versions\/([^/]+)$/.exec(target);
  return m && isVersion(m[1]) ? m[1]! : null;
}

/** fsyncs every file and folder below `root` (and `root`), so the data is durable before the rename. */
async function fsyncTree(root: string): Promise<void> {
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const p = join(root, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) {
      const fh = await open(p, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }
  fsyncDir(root);
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}
