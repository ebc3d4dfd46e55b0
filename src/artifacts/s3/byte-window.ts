import { Readable } from 'node:stream';

/**
 * Bytes `start`..`end` (inclusive) of a stream of a whole object: for S3-compatible servers that
 * answer a Range request with the whole object (s3rver does for `bytes=0-0`). Stops reading, and
 * destroys the source, once `end` has passed.
 */
export function byteWindow(source: Readable, start: number, end: number): Readable {
  async function* window(): AsyncGenerator<Buffer> {
    let offset = 0;
    try {
      for await (const chunk of source) {
        const bytes = chunk as Buffer;
        const from = Math.max(0, start - offset);
        const to = Math.min(bytes.length, end + 1 - offset);
        if (to > from) yield bytes.subarray(from, to);
        offset += bytes.length;
        if (offset > end) return;
      }
    } finally {
      source.destroy();
    }
  }
  return Readable.from(window(), { objectMode: false });
}
