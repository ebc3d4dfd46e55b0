import type { Readable } from 'node:stream';
import type { StagedArtifact } from './artifact-store.js';

/** What a store does with its staged bytes; stagedOnce() adds the "exactly one of commit/discard" rule. */
export interface StagedOps {
  read(): Promise<Readable>;
  commit(): Promise<boolean>;
  discard(): Promise<void>;
}

/** A StagedArtifact whose read, commit and discard are refused once it was committed or discarded. */
export function stagedOnce(sha256: string, length: number, ops: StagedOps): StagedArtifact {
  let done = false;
  const check = (finish: boolean): void => {
    if (done) throw new Error('staged artifact was already committed or discarded');
    if (finish) done = true;
  };
  return {
    sha256,
    length,
    read: async () => (check(false), ops.read()),
    commit: async () => (check(true), ops.commit()),
    discard: async () => (check(true), ops.discard()),
  };
}
