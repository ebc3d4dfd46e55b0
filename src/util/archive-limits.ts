/**
 * Limits on what one archive may hold (docs/security.md, "Server under abuse"). The server
 * inspects every upload against them and the agent extracts under the same ones, and the packer
 * refuses a tree beyond them, so a publish fails on the publisher's machine, not on the devices.
 * Together they keep inspection linear in the archive's size: no path is longer than
 * `pathBytes`, so no per-entry step costs more than that.
 */
export const ARCHIVE_LIMITS = {
  /** Bytes of one entry path (UTF-8, as stored), and of a symbolic link's target: Linux PATH_MAX. */
  pathBytes: 4096,
  /** Bytes of one path component: NAME_MAX of every common file system. */
  componentBytes: 255,
  /** Bytes of the pax / GNU long-name headers in front of one entry; a real one is a few hundred. */
  metaBytes: 64 * 1024,
  /** Entries of one archive: files, folders and links, counting folders its paths imply. */
  entries: 100_000,
} as const;

export type ArchiveLimit = keyof typeof ARCHIVE_LIMITS;

/** Thrown while reading an archive that goes beyond one of ARCHIVE_LIMITS; `limit` names which. */
export class ArchiveLimitError extends Error {
  override name = 'ArchiveLimitError';
  constructor(readonly limit: ArchiveLimit, message: string) {
    super(message);
  }
}

export interface LimitProblem { limit: ArchiveLimit; problem: string }

/** Which limit `path` (a normalised `a/b/c`, or a link target) goes beyond, if any. Linear in its length. */
export function pathLimitProblem(path: string): LimitProblem | undefined {
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > ARCHIVE_LIMITS.pathBytes) return { limit: 'pathBytes', problem: `path of ${bytes} bytes is longer than the limit of ${ARCHIVE_LIMITS.pathBytes} bytes` };
  let start = 0;
  while (start <= path.length) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    // UTF-8 is at most 3 bytes per UTF-16 unit, so only a long-looking component is measured.
    if ((end - start) * 3 > ARCHIVE_LIMITS.componentBytes) {
      const n = Buffer.byteLength(path.slice(start, end), 'utf8');
      if (n > ARCHIVE_LIMITS.componentBytes) {
        return { limit: 'componentBytes', problem: `a path component of ${n} bytes is longer than the limit of ${ARCHIVE_LIMITS.componentBytes} bytes` };
      }
    }
    start = end + 1;
  }
  return undefined;
}
