import { createHash } from 'node:crypto';
import { ArtifactTooLargeError } from './errors.js';

/** What hashAndBound() saw once its source ended: the sha256 hex and byte count. */
export interface Hashed {
  sha256(): string;
  length(): number;
}

/**
 * Passes `source` through, hashing and counting it; throws ArtifactTooLargeError as soon as more
 * than `maxLength` bytes arrived (per chunk, so an oversized upload stops before it is stored) and
 * the signal's AbortError once it is aborted.
 */
export function hashAndBound(
  source: AsyncIterable<Uint8Array | string>,
  maxLength: number,
  signal?: AbortSignal,
): { chunks: AsyncGenerator<Uint8Array>; hashed: Hashed } {
  const hash = createHash('sha256');
  let length = 0;
  let digest: string | undefined;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      length += bytes.length;
      if (length > maxLength) throw new ArtifactTooLargeError(maxLength);
      hash.update(bytes);
      yield bytes;
    }
    signal?.throwIfAborted();
    digest = hash.digest('hex');
  }
  return {
    chunks: chunks(),
    hashed: {
      sha256: () => {
        if (digest === undefined) throw new Error('the source has not ended yet');
        return digest;
      },
      length: () => length,
    },
  };
}
