/** Errors every ArtifactStore implementation throws for the same conditions (the contract suite checks them). */

/** Thrown by stage() once more than `maxLength` bytes arrived; nothing is kept. */
export class ArtifactTooLargeError extends Error {
  override name = 'ArtifactTooLargeError';
  constructor(readonly maxLength: number) {
    super(`artifact is larger than ${maxLength} bytes`);
  }
}

/** Thrown by read() for a hash the store does not hold. */
export class ArtifactNotFoundError extends Error {
  override name = 'ArtifactNotFoundError';
  constructor(readonly sha256: string, options?: { cause?: unknown }) {
    super(`no artifact with sha256 ${sha256}`, options);
  }
}
