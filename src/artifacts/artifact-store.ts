import type { Readable } from 'node:stream';

/**
 * Content-addressed, immutable storage of artifact bytes (archives, notices), addressed by the
 * sha256 hex of the content. One interface, one folder per implementation (`disk/`, `s3/`),
 * one contract suite (test/contracts/artifacts-contract.ts).
 */
export interface ArtifactInfo {
  sha256: string;
  length: number;
}

/** Bytes received into temporary storage, hashed, not yet visible. Exactly one of commit/discard. */
export interface StagedArtifact extends ArtifactInfo {
  /** The staged bytes from the start, for inspection before commit (e.g. archive safety checks). */
  read(): Promise<Readable>;
  /**
   * Makes the bytes readable under their hash if no artifact has that hash yet (create-if-absent,
   * as an object store's conditional put does; the same hash means the same bytes, so one already
   * there is left as it is). Returns true when this call created it: of concurrent commits of one
   * hash exactly one gets true, and only that one may delete it again to undo its database write.
   */
  commit(): Promise<boolean>;
  /** Deletes the temporary bytes. */
  discard(): Promise<void>;
}

export interface StageOptions {
  /** Refuse (ArtifactTooLargeError) once more than this many bytes arrived. */
  maxLength: number;
  signal?: AbortSignal;
}

export interface DownloadUrlOptions {
  /** How long the URL stays valid. */
  expiresInSeconds: number;
}

export interface ArtifactStore {
  /** Streams `source` into temporary storage while hashing it. */
  stage(source: Readable | AsyncIterable<Uint8Array>, opts: StageOptions): Promise<StagedArtifact>;
  /** Length of the stored artifact, or undefined when there is none. */
  stat(sha256: string): Promise<ArtifactInfo | undefined>;
  /** Reads bytes `start`..`end` inclusive (whole artifact by default); ArtifactNotFoundError when there is none. */
  read(sha256: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Removes an artifact (used to undo a commit whose database write failed). */
  delete(sha256: string): Promise<void>;
  /**
   * Capability (absent: not supported): a URL from which a client GETs exactly this artifact's
   * bytes directly, Range included, for `expiresInSeconds` (an object store's presigned URL), so
   * the server can answer a download with a redirect instead of streaming it.
   */
  downloadUrl?(sha256: string, opts: DownloadUrlOptions): Promise<string>;
}
