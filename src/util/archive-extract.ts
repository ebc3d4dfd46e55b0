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
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

export declare function extractArchive(archiveFile: string, destDir: string, opts: ExtractOptions): Promise<ExtractResult>;

/**
 * Reads the archive's entry list without writing anything and throws UnsafeArchiveError as
 * extractArchive would. The server uses it to refuse an unsafe upload before storing it.
 */
export declare function inspectArchive(archiveFile: string, opts: ExtractOptions): Promise<ExtractResult>;
