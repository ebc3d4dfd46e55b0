import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BLOCK, CorruptArchiveError, isZeroBlock, padding, parseHeader, parsePax } from './tar-format.js';
import { ARCHIVE_LIMITS, ArchiveLimitError } from './archive-limits.js';

/**
 * A streaming tar reader: gunzip stream -> 512-byte blocks -> entries. Only parses; every safety
 * decision (paths, types, sizes) belongs to the caller (archive-extract.ts).
 */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'unknown';

export interface TarEntry {
  path: string;
  linkpath: string;
  size: number;
  mode: number;
  type: TarEntryType;
  typeflag: string;
  /** A name or link target was not valid UTF-8 (shown with latin1 in `path`/`linkpath`). */
  badUtf8: boolean;
  /** The entry's data. Whatever the caller does not read is skipped before the next entry. */
  body(): AsyncGenerator<Buffer>;
}

export class TruncatedArchiveError extends Error {
  override name = 'TruncatedArchiveError';
  constructor() {
    super('archive is truncated');
  }
}

/**
 * Bytes that are not file data (headers, metadata bodies, padding, skipped bodies). Bounded so an
 * endless run of headers cannot keep us reading forever; the caller bounds file data itself.
 * 1 GiB is about two million entries, far beyond any release tree.
 */
const MAX_META_TOTAL = 1 << 30;

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Gunzips a file (by path) or a byte stream as chunks; zlib errors become truncated/corrupt errors. */
export async function* gunzipBytes(source: string | Readable): AsyncGenerator<Buffer> {
  const src = typeof source === 'string' ? createReadStream(source) : source;
  const gz = createGunzip();
  src.on('error', (err: Error) => gz.destroy(err));
  src.pipe(gz);
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'Z_BUF_ERROR') throw new TruncatedArchiveError();
    if (typeof e.code === 'string' && e.code.startsWith('Z_')) throw new CorruptArchiveError(e.message);
    throw err;
  } finally {
    // Runs too when the reader stops early at the end marker: stop reading the source there.
    src.destroy();
    gz.destroy();
  }
}

export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const input = new ChunkReader(source[Symbol.asyncIterator]());
  let meta = 0;
  const countMeta = (n: number) => {
    meta += n;
    if (meta > MAX_META_TOTAL) throw new Error(`archive has more than ${MAX_META_TOTAL} bytes of headers (endless data)`);
  };
  try {
    let pax = new Map<string, Uint8Array>();
    let longName: Uint8Array | undefined;
    let longLink: Uint8Array | undefined;
    // pax and GNU long-name bodies in front of the next entry, kept in memory: bounded together,
    // so neither one big header nor a run of small ones can hold more (ARCHIVE_LIMITS.metaBytes).
    let pending = 0;
    for (;;) {
      const block = await input.exact(BLOCK);
      if (block === null) throw new TruncatedArchiveError(); // no end-of-archive marker
      countMeta(BLOCK);
      // End of archive. Stop here: whatever follows (more zeros, or hidden entries) is not read.
      if (isZeroBlock(block)) return;
      const h = parseHeader(block);
      if (h.typeflag === 'x' || h.typeflag === 'g' || h.typeflag === 'L' || h.typeflag === 'K') {
        pending += h.size;
        if (pending > ARCHIVE_LIMITS.metaBytes) {
          throw new ArchiveLimitError('metaBytes', `archive has more than ${ARCHIVE_LIMITS.metaBytes} bytes of pax or long-name headers in front of one entry (the limit)`);
        }
        countMeta(h.size + padding(h.size));
        const body = await input.need(h.size);
        await input.need(padding(h.size));
        if (h.typeflag === 'x') for (const [k, v] of parsePax(body)) pax.set(k, v);
        else if (h.typeflag === 'L') longName = cString(body);
        else if (h.typeflag === 'K') longLink = cString(body);
        // 'g' (global pax) carries nothing we use: ignored.
        continue;
      }
      const name = decode(pax.get('path') ?? longName ?? h.name);
      const link = decode(pax.get('linkpath') ?? longLink ?? h.linkname);
      let size = h.size;
      const paxSize = pax.get('size');
      if (paxSize !== undefined) {
        const text = Buffer.from(paxSize).toString('latin1');
        if (!/^[0-9]{1,15}$/.test(text)) throw new CorruptArchiveError('bad pax size');
        size = Number(text);
      }
      pax = new Map();
      longName = longLink = undefined;
      pending = 0;
      const type = TYPES[h.typeflag] ?? 'unknown';

      let remaining = size;
      const body = async function* (): AsyncGenerator<Buffer> {
        while (remaining > 0) {
          const chunk = await input.some(remaining);
          remaining -= chunk.length;
          yield chunk;
        }
      };
      yield { path: name.text, linkpath: link.text, size, mode: h.mode, type, typeflag: h.typeflag, badUtf8: name.bad || link.bad, body };
      if (remaining > 0) {
        countMeta(remaining); // data the caller did not want (e.g. a folder with a size)
        await input.skip(remaining);
        remaining = 0;
      }
      countMeta(padding(size));
      await input.need(padding(size));
    }
  } finally {
    await input.close();
  }
}

function decode(bytes: Uint8Array): { text: string; bad: boolean } {
  try {
    return { text: utf8.decode(bytes), bad: false };
  } catch {
    return { text: Buffer.from(bytes).toString('latin1'), bad: true };
  }
}

/** GNU long names are NUL-terminated inside their body. */
function cString(b: Buffer): Buffer {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

/** Exact-length reads over a stream of arbitrarily sized chunks. */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** Exactly n bytes; null at a clean end of input; truncated if input ends part-way. */
  async exact(n: number): Promise<Buffer | null> {
    while (this.buf.length < n) {
      if (!(await this.fill())) {
        if (this.buf.length === 0) return null;
        throw new TruncatedArchiveError();
      }
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async need(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    const b = await this.exact(n);
    if (b === null) throw new TruncatedArchiveError();
    return b;
  }

  /** Between 1 and max bytes, whatever is at hand, so file data streams without copying. */
  async some(max: number): Promise<Buffer> {
    if (this.buf.length === 0 && !(await this.fill())) throw new TruncatedArchiveError();
    const out = this.buf.subarray(0, Math.min(max, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.some(n)).length;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
