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

export declare function hashTree(dir: string, signal?: AbortSignal): Promise<TreeHash>;
