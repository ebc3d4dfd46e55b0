import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { checkEntryPath, linkTargetProblem } from './archive-paths.js';
import { gunzipBytes, readTar, type TarEntry } from './tar-reader.js';
import { ARCHIVE_LIMITS, ArchiveLimitError } from './archive-limits.js';

export { ArchiveLimitError } from './archive-limits.js';

/**
 * Extracts a gzip-compressed tar into `destDir` (which must exist and be empty), refusing
 * anything that could leave `destDir`: absolute paths, `..` components, hard links, device and
 * fifo entries, symbolic links whose target is absolute or resolves outside `destDir`, and any
 * entry whose path passes through a symbolic link. Stops with UnsafeArchiveError at the first such
 * entry (the caller deletes `destDir`). Regular files get mode 0644, or 0755 when any execute
 * bit is set. `maxBytes` bounds the total bytes of extracted files (endless-data protection).
 */
export class UnsafeArchiveError extends Error {
  override name = 'UnsafeArchiveError';
  constructor(message: string, readonly entry?: string) {
    super(message);
  }
}

export interface ExtractOptions {
  maxBytes: number;
  signal?: AbortSignal;
  /** false: the file is a plain tar (a tree stream rebuilt from a delta). Default true (gzip). */
  gzip?: boolean;
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

export async function extractArchive(archiveFile: string, destDir: string, opts: ExtractOptions): Promise<ExtractResult> {
  const st = await stat(destDir);
  if (!st.isDirectory()) throw new Error(`${destDir} is not a folder`);
  if ((await readdir(destDir)).length > 0) throw new Error(`${destDir} is not empty`);
  return walkArchive(archiveFile, destDir, opts);
}

/**
 * Reads the archive's entry list without writing anything and throws UnsafeArchiveError as
 * extractArchive would. The server uses it on the staged upload's bytes (a stream: artifact
 * stores need not keep a local file) to refuse an unsafe upload before storing it.
 */
export async function inspectArchive(archive: string | Readable, opts: ExtractOptions): Promise<ExtractResult> {
  return walkArchive(archive, null, opts);
}

type Node = { kind: 'dir' | 'file' | 'link'; explicit: boolean };

/**
 * One pass for both functions. The would-be tree is tracked in memory: since `destDir` starts
 * empty and only we write to it, the map is exactly what is on disk, so every check (symlink
 * parents, overwrites, duplicates) is decided without ever asking the file system, and inspect
 * and extract cannot disagree.
 */
async function walkArchive(archive: string | Readable, destDir: string | null, opts: ExtractOptions): Promise<ExtractResult> {
  const { maxBytes, signal } = opts;
  signal?.throwIfAborted();
  const tree = new Map<string, Node>();
  let files = 0;
  let bytes = 0;
  const plain = (): AsyncIterable<Buffer> => (typeof archive === 'string' ? createReadStream(archive) : archive);
  const source = opts.gzip === false ? plain() : gunzipBytes(archive);
  for await (const entry of readTar(source)) {
    signal?.throwIfAborted();
    const { path, parentsToCreate } = plan(entry, tree);
    if (path === null) continue; // `./`, the root itself
    if (entry.type === 'file') {
      if (bytes + entry.size > maxBytes) {
        throw new Error(`archive holds more than ${maxBytes} bytes of files at ${JSON.stringify(entry.path)} (endless data)`);
      }
      bytes += entry.size;
      files += 1;
    }
    if (destDir !== null) {
      for (const p of parentsToCreate) await makeDir(join(destDir, p));
      await write(entry, join(destDir, path), signal);
    } else {
      for await (const _ of entry.body()) signal?.throwIfAborted(); // read past the data, keep nothing
    }
  }
  return { files, bytes };
}

/** Checks one entry against the rules and the tree so far, and records it in the tree. */
function plan(entry: TarEntry, tree: Map<string, Node>): { path: string | null; parentsToCreate: string[] } {
  // A name in an error stays short: a pax path may be 64 KiB.
  const show = entry.path.length > 200 ? `${JSON.stringify(entry.path.slice(0, 200))}...` : JSON.stringify(entry.path);
  const refuse = (why: string): never => {
    throw new UnsafeArchiveError(`unsafe archive entry ${show}: ${why}`, entry.path);
  };
  if (entry.badUtf8) refuse('name or link target is not valid UTF-8');
  const checked = checkEntryPath(entry.path);
  if ('problem' in checked) {
    if (checked.limit) throw new ArchiveLimitError(checked.limit, `archive entry ${show}: ${checked.problem}`);
    return refuse(checked.problem);
  }
  const path = checked.path;
  if (entry.type !== 'file' && entry.type !== 'dir' && entry.type !== 'symlink') {
    const what: Record<string, string> = {
      hardlink: 'hard links are not allowed', char: 'character devices are not allowed',
      block: 'block devices are not allowed', fifo: 'fifos are not allowed',
    };
    refuse(what[entry.type] ?? `unknown entry type ${JSON.stringify(entry.typeflag)}`);
  }
  if (path === '') {
    if (entry.type === 'dir') return { path: null, parentsToCreate: [] };
    refuse('empty name');
  }

  // The tree holds a node only with all its parents, as folders. So the parents to check are
  // those below the deepest one already known: walking up from the entry stops there, and each
  // folder is created (and looked up) once per archive. A walk down from the root would cost the
  // square of the depth per entry (a 202-byte upload of one deep path once took 9.5 s).
  const parentsToCreate: string[] = [];
  for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
    const parent = path.slice(0, cut);
    const node = tree.get(parent);
    if (node?.kind === 'link') refuse(`its parent ${JSON.stringify(parent)} is a symbolic link`);
    if (node?.kind === 'file') refuse(`its parent ${JSON.stringify(parent)} is a file`);
    if (node) break;
    parentsToCreate.push(parent);
  }
  parentsToCreate.reverse(); // created top-down
  if (tree.size + parentsToCreate.length + 1 > ARCHIVE_LIMITS.entries) {
    throw new ArchiveLimitError('entries', `archive has more than ${ARCHIVE_LIMITS.entries} entries (files, folders and links, counting the folders its paths imply) at ${show}: the limit`);
  }

  const existing = tree.get(path);
  if (existing) {
    if (existing.kind === 'dir' && !existing.explicit && entry.type === 'dir') {
      existing.explicit = true; // created earlier as a parent; now the folder's own entry
      return { path: null, parentsToCreate: [] };
    }
    if (existing.explicit) refuse(`duplicate entry (would replace a ${existing.kind === 'link' ? 'symbolic link' : existing.kind === 'dir' ? 'folder' : 'file'})`);
    refuse('would replace a folder that earlier entries are in');
  }
  if (entry.type === 'symlink') {
    const problem = linkTargetProblem(path, entry.linkpath);
    if (problem) refuse(problem);
  }

  for (const p of parentsToCreate) tree.set(p, { kind: 'dir', explicit: false });
  tree.set(path, { kind: entry.type === 'symlink' ? 'link' : entry.type === 'dir' ? 'dir' : 'file', explicit: true });
  return { path, parentsToCreate };
}

/** chmod after mkdir/open: the process umask must not change modes (the tree hash sees them). */
async function makeDir(abs: string): Promise<void> {
  await mkdir(abs, { mode: 0o755 });
  await chmod(abs, 0o755);
}

async function write(entry: TarEntry, abs: string, signal?: AbortSignal): Promise<void> {
  if (entry.type === 'dir') return makeDir(abs);
  if (entry.type === 'symlink') return symlink(entry.linkpath, abs);
  const mode = entry.mode & 0o111 ? 0o755 : 0o644;
  // 'wx' (O_CREAT|O_EXCL) never follows a link nor replaces anything already there.
  const fh = await open(abs, 'wx', mode);
  try {
    await fh.chmod(mode);
    for await (const chunk of entry.body()) {
      signal?.throwIfAborted();
      for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}
