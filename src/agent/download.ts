import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from '../util/atomic-write.js';
import { errorText } from '../util/error-text.js';
import { NetworkError, ServerError, VerificationError } from './errors.js';

export interface DownloadOptions {
  url: string;
  /** Folder for downloads (`.patchwire/downloads`). */
  downloadsDir: string;
  /** sha256 hex and length from verified TUF metadata: the only sizes and hashes trusted. */
  sha256: string;
  length: number;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (received: number, total: number) => void;
}

/**
 * Downloads a signed target to `<downloadsDir>/<sha256>.part`, resuming a previous partial
 * download with `Range: bytes=N-` (a server answering 200 instead of 206 restarts it), reading
 * never more than the signed length. Then verifies length and sha256 and renames the file to
 * `<downloadsDir>/<sha256>`, whose path it returns. A mismatch deletes the file and throws
 * VerificationError; a broken connection keeps the partial file for the next attempt.
 * The update state machine runs the two halves as its `download` and `verify` states.
 */
export async function downloadTarget(opts: DownloadOptions): Promise<string> {
  checkSigned(opts);
  const done = join(opts.downloadsDir, opts.sha256);
  // A complete, verified file from an earlier attempt; a damaged one is fetched again.
  if ((await sizeOf(done)) === opts.length && (await sha256Of(done, opts.signal)) === opts.sha256) return done;
  await rm(done, { force: true });
  await fetchTarget(opts);
  return verifyDownload(opts);
}

/**
 * The `download` half: brings `<sha256>.part` to the signed length (resuming by Range), or does
 * nothing when a complete `<sha256>` from an earlier attempt is there. Checks no hash; throws
 * NetworkError or ServerError (retry later, the partial file is kept) or VerificationError
 * (more than the signed length: the partial file is deleted). Returns what this call transferred
 * and the offset it resumed from (0: from scratch; the signed length: nothing left to fetch).
 */
export async function fetchTarget(opts: DownloadOptions): Promise<Transfer> {
  const { downloadsDir, sha256, length } = opts;
  checkSigned(opts);
  await mkdir(downloadsDir, { recursive: true });
  const done = join(downloadsDir, sha256);
  const part = `${done}.part`;
  // A complete file from an earlier attempt (e.g. interrupted while installing): verify checks it.
  if ((await sizeOf(done)) === length) return { bytes: 0, resumedFrom: length };
  await rm(done, { force: true });

  let offset = await sizeOf(part) ?? 0;
  if (offset > length) {
    await rm(part, { force: true });
    offset = 0;
  }
  if (offset >= length) return { bytes: 0, resumedFrom: offset };
  const transfer: Transfer = { bytes: 0, resumedFrom: offset };
  await fetchInto(opts, part, offset, transfer);
  return transfer;
}

/** Bytes one fetchTarget call received, and the byte it resumed at (kept up to date as it goes). */
export interface Transfer {
  bytes: number;
  resumedFrom: number;
}

/**
 * The `verify` half: checks the downloaded file's length and sha256 against the signed ones and
 * returns the path of the verified `<sha256>` file (renaming `.part` to it). A mismatch deletes
 * the file and throws VerificationError, so the next attempt downloads it again.
 */
export async function verifyDownload(opts: Pick<DownloadOptions, 'url' | 'downloadsDir' | 'sha256' | 'length' | 'signal'>): Promise<string> {
  const { url, downloadsDir, sha256, length } = opts;
  checkSigned(opts);
  const done = join(downloadsDir, sha256);
  const part = `${done}.part`;
  const file = (await sizeOf(done)) !== undefined ? done : part;
  const size = (await sizeOf(file)) ?? 0;
  const actual = size === length ? await sha256Of(file, opts.signal) : undefined;
  if (actual !== sha256) {
    await rm(file, { force: true });
    throw new VerificationError(
      size !== length
        ? `download of ${url} has ${size} bytes but the signed length is ${length}: the file was deleted; the next check downloads it again`
        : `download of ${url} has sha256 ${actual} but the signed sha256 is ${sha256}: the file was deleted; the server or a mirror serves bad data`,
      file,
    );
  }
  if (file === part) {
    await rename(part, done);
    fsyncDir(downloadsDir);
  }
  return done;
}

function checkSigned(opts: { url: string; sha256: string; length: number }): void {
  if (!/^[0-9a-f]{64}$/.test(opts.sha256) || !Number.isSafeInteger(opts.length) || opts.length < 0) {
    throw new VerificationError(`refusing to download ${opts.url}: the signed sha256 or length is malformed`);
  }
}

async function fetchInto(opts: DownloadOptions, part: string, offset: number, transfer: Transfer): Promise<void> {
  const fetchFn = opts.fetch ?? fetch;
  const { url, length, signal } = opts;
  let res: Response;
  try {
    res = await fetchFn(url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new NetworkError(`cannot download ${url} (${errorText(err, { cause: true })}): the agent retries and resumes later`, url, { cause: err });
  }
  let start: number;
  if (res.status === 206 && offset > 0 && contentRangeStart(res) === offset) {
    start = offset;
  } else if (res.status === 200) {
    start = 0; // The server ignored the range: start over.
    transfer.resumedFrom = 0;
  } else if (res.status === 416 || res.status === 206) {
    // Our partial file disagrees with the server's: drop it and fetch the whole file.
    await res.body?.cancel().catch(() => {});
    await rm(part, { force: true });
    transfer.resumedFrom = 0;
    return offset > 0 ? fetchInto(opts, part, 0, transfer) : undefined;
  } else {
    await res.body?.cancel().catch(() => {});
    throw new ServerError(`downloading ${url} failed: the server answered ${res.status}; the agent retries later`, url, res.status, undefined);
  }

  const fh: FileHandle = await open(part, start === 0 ? 'w' : 'a');
  let received = start;
  try {
    opts.onProgress?.(received, length);
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        if (received + chunk.byteLength > length) {
          await res.body.cancel().catch(() => {});
          await fh.close().catch(() => {});
          await rm(part, { force: true });
          throw new VerificationError(`download of ${url} sends more than the signed length of ${length} bytes: refused (endless data)`, part);
        }
        await fh.write(chunk);
        received += chunk.byteLength;
        transfer.bytes += chunk.byteLength;
        opts.onProgress?.(received, length);
      }
    }
    await fh.sync();
  } catch (err) {
    if (err instanceof VerificationError || signal?.aborted) throw err;
    throw new NetworkError(`the download of ${url} broke after ${received} of ${length} bytes (${errorText(err, { cause: true })}): the next attempt resumes it`, url, { cause: err });
  } finally {
    await fh.close().catch(() => {});
  }
}

function contentRangeStart(res: Response): number | undefined {
  const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

async function sizeOf(path: string): Promise<number | undefined> {
  const s = await stat(path).catch(() => undefined);
  return s?.isFile() ? s.size : undefined;
}

async function sha256Of(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
