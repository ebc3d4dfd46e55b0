import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** An open file and the inclusive byte range of it to send. */
export interface FileRange {
  handle: FileHandle;
  start: number;
  end: number;
}

/**
 * Bytes `start`..`end` of an open file as a Readable (what `ArtifactStore.read` promises), which
 * can also hand its open file to a sender that writes the range to a socket itself
 * (src/server/routes/send-file.ts: reused buffers, no stream machinery per chunk). Until then
 * nothing is read, and whoever ends up with the handle closes it: the stream on end or destroy,
 * the sender once it has written the range.
 */
export class FileRangeStream extends Readable {
  #handle: FileHandle | undefined;
  #pos: number;
  #started = false;

  constructor(handle: FileHandle, readonly start: number, readonly end: number) {
    super({ highWaterMark: 64 * 1024 });
    this.#handle = handle;
    this.#pos = start;
  }

  /** The open file and range for a sender, or undefined once reading began (then read the stream). */
  detach(): FileRange | undefined {
    const handle = this.#handle;
    if (this.#started || !handle) return undefined;
    this.#handle = undefined;
    this.destroy();
    return { handle, start: this.start, end: this.end };
  }

  override _read(size: number): void {
    this.#started = true;
    const handle = this.#handle;
    if (!handle) return;
    const want = Math.min(size, this.end + 1 - this.#pos);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafeSlow(want);
    handle.read(buf, 0, want, this.#pos).then(({ bytesRead }) => {
      // A range past the end of the file ends at the end, as fs.createReadStream does.
      if (bytesRead === 0) return void this.push(null);
      this.#pos += bytesRead;
      this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
    }, (err: Error) => this.destroy(err));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const handle = this.#handle;
    this.#handle = undefined;
    if (!handle) return cb(err);
    handle.close().then(() => cb(err), (closeErr: Error) => cb(err ?? closeErr));
  }
}
