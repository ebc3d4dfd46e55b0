import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir } from '../../util/atomic-write.js';
import type { ArtifactInfo, ArtifactStore, StageOptions, StagedArtifact } from '../artifact-store.js';
import { ArtifactNotFoundError, ArtifactTooLargeError } from '../errors.js';
import { checkSha256 } from '../sha256-key.js';


/**
 * Artifacts as files under one folder: `<dir>/<sha256[0..2]>/<sha256>`, staged in `<dir>/tmp/`
 * (same file system, so committing is a rename or link, never a copy).
 */
export class DiskArtifactStore implements ArtifactStore {
  readonly #tmp: string;

  private constructor(readonly dir: string) {
    this.#tmp = join(dir, 'tmp');
  }

  /** Opens (creating when missing) the folder and deletes staged files left by a crash. */
  static async open(dir: string): Promise<DiskArtifactStore> {
    const store = new DiskArtifactStore(dir);
    await mkdir(store.#tmp, { recursive: true });
    for (const name of await readdir(store.#tmp)) await rm(join(store.#tmp, name), { recursive: true, force: true });
    return store;
  }

  async stage(source: Readable | AsyncIterable<Uint8Array>, opts: StageOptions): Promise<StagedArtifact> {
    opts.signal?.throwIfAborted();
    const tmp = join(this.#tmp, randomBytes(12).toString('hex'));
    const hash = createHash('sha256');
    let length = 0;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array | string>) {
          for await (const chunk of chunks) {
            const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            length += bytes.length;
            // Checked per chunk, so an oversized upload stops before it fills the disk.
            if (length > opts.maxLength) throw new ArtifactTooLargeError(opts.maxLength);
            hash.update(bytes);
            yield bytes;
          }
        },
        createWriteStream(tmp, { flags: 'wx' }),
        { signal: opts.signal },
      );
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return this.#staged(tmp, hash.digest('hex'), length);
  }

  async stat(sha256: string): Promise<ArtifactInfo | undefined> {
    checkSha256(sha256);
    try {
      return { sha256, length: (await stat(this.#path(sha256))).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async read(sha256: string, range?: { start: number; end: number }): Promise<Readable> {
    checkSha256(sha256);
    if (range && !(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`bad byte range ${range.start}-${range.end}`);
    }
    // Opening first makes a missing artifact fail here rather than later on the stream.
    let fh;
    try {
      fh = await open(this.#path(sha256), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ArtifactNotFoundError(sha256, { cause: err });
      throw err;
    }
    return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async delete(sha256: string): Promise<void> {
    checkSha256(sha256);
    await rm(this.#path(sha256), { force: true });
  }

  #path(sha256: string): string {
    return join(this.dir, sha256.slice(0, 2), sha256);
  }

  #staged(tmp: string, sha256: string, length: number): StagedArtifact {
    let done = false;
    const finish = (): void => {
      if (done) throw new Error('staged artifact was already committed or discarded');
      done = true;
    };
    const store = this;
    return {
      sha256,
      length,
      async read(): Promise<Readable> {
        if (done) throw new Error('staged artifact was already committed or discarded');
        return createReadStream(tmp);
      },
      async commit(): Promise<boolean> {
        finish();
        return store.#commit(tmp, sha256);
      },
      async discard(): Promise<void> {
        finish();
        await rm(tmp, { force: true });
      },
    };
  }

  async #commit(tmp: string, sha256: string): Promise<boolean> {
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const shard = join(this.dir, sha256.slice(0, 2));
    const created = await mkdir(shard, { recursive: true });
    if (created !== undefined) fsyncDir(this.dir);
    const final = join(shard, sha256);
    try {
      // link() fails with EEXIST atomically, so of two concurrent commits of the same bytes
      // exactly one reports true (and only that one may delete it to undo its database write).
      await link(tmp, final);
      await unlink(tmp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        await rm(tmp, { force: true });
        return false;
      }
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') {
        await rm(tmp, { force: true });
        throw err;
      }
      // File systems without hard links: check, then rename (same bytes, so a lost race is harmless).
      if (await this.stat(sha256)) {
        await rm(tmp, { force: true });
        return false;
      }
      await rename(tmp, final);
    }
    fsyncDir(shard);
    return true;
  }
}
