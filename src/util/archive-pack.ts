/**
 * Packs a folder into a deterministic gzip-compressed tar (ustar, with pax headers for paths
 * longer than ustar allows): entries sorted by path, mtime 0, uid/gid 0, modes 0644/0755 for
 * files and 0755 for folders; symbolic links kept as links. Same tree -> same bytes.
 * Used on the publisher's side by `patchwire publish`.
 */
export interface PackResult {
  /** sha256 hex of the written archive bytes. */
  sha256: string;
  length: number;
}

export declare function packTree(dir: string, outFile: string, signal?: AbortSignal): Promise<PackResult>;
