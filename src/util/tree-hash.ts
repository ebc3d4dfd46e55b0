import { createHash } from 'node:crypto';
import { fileChunks, walkTree } from './tree-walk.js';

/**
 * The hash of a release's file tree, signed in each release target's custom field, so that an
 * agent can verify the tree it built (from a full archive or, later, a delta) before switching.
 *
 * Manifest: every entry below `dir` (not `dir` itself), sorted by its `/`-separated relative path
 * in UTF-8 byte order, one line each:
 *   `d <path>\n`                      a folder
 *   `f <mode> <size> <sha256> <path>\n` a regular file; mode is `644` or `755` (any execute bit -> 755)
 *   `l <target> <path>\n`             a symbolic link (not followed), target as stored
 * Paths and link targets are JSON-string-escaped (JSON.stringify) so that no name can forge a line.
 * The tree hash is the sha256 hex of the manifest. Anything else (sockets, devices) is an error.
 */
export interface TreeHash {
  hash: string;
  files: number;
  /** Total size of regular files. */
  bytes: number;
}

export async function hashTree(dir: string, signal?: AbortSignal): Promise<TreeHash> {
  const manifest = createHash('sha256');
  let files = 0;
  let bytes = 0;
  for (const e of await walkTree(dir, signal)) {
    signal?.throwIfAborted();
    const path = JSON.stringify(e.rel);
    if (e.kind === 'dir') {
      manifest.update(`d ${path}\n`);
    } else if (e.kind === 'link') {
      manifest.update(`l ${JSON.stringify(e.target)} ${path}\n`);
    } else {
      const { sha256, size } = await hashFile(e.abs, signal);
      manifest.update(`f ${e.exec ? '755' : '644'} ${size} ${sha256} ${path}\n`);
      files += 1;
      bytes += size;
    }
  }
  return { hash: manifest.digest('hex'), files, bytes };
}

/** The size is the bytes actually hashed, so the line is self-consistent even if the file changed. */
async function hashFile(path: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of fileChunks(path, signal)) {
    h.update(chunk);
    size += chunk.length;
  }
  return { sha256: h.digest('hex'), size };
}
