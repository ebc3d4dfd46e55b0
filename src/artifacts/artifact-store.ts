import type { Readable } from 'node:stream';

/**
 * Content-addressed, immutable storage of artifact bytes (archives, notices), addressed by the
 * sha256 hex of the content. One interface, one folder per implementation (`disk/` now, `s3/`
 * later), one contract suite (test/artifacts-contract.test.ts).
 */
export interface ArtifactInfo {
  sha256: string;
  length: number;
}

/** Bytes received into temporary storage, hashed, not yet visible. Exactly one of commit/discard. */
export interface StagedArtifact extends ArtifactInfo {
  /** A local file holding the bytes, for inspection before commit (e.g. archive safety checks). */
  localPath: string;
  /** Makes the bytes readable under their hash. Returns true when this call created it (it was not there before). */
  commit(): Promise<boolean>;
  /** Deletes the temporary bytes. */
  discard(): Promise<void>;
}

export interface StageOptions {
  /** Refuse (ArtifactTooLargeError) once more than this many bytes arrived. */
  maxLength: number;
  signal?: AbortSignal;
}

export class ArtifactTooLargeError extends Error {
  override name = 'ArtifactTooLargeError';
  constructor(readonly maxLength: number) {
    super(`artifact is larger than ${maxLength} bytes`);
  }
}

export interface ArtifactStore {
  /** Streams `source` into temporary storage while hashing it. */
  stage(source: Readable | AsyncIterable<Uint8Array>, opts: StageOptions): Promise<StagedArtifact>;
  /** Length of the stored artifact, or undefined when there is none. */
  stat(sha256: string): Promise<ArtifactInfo | undefined>;
  /** Reads bytes `start`..`end` inclusive (whole artifact by default). */
  read(sha256: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Removes an artifact (used to undo a commit whose database write failed). */
  delete(sha256: string): Promise<void>;
}
