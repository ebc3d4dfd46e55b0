import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ArtifactInfo, ArtifactStore, DownloadUrlOptions, StageOptions, StagedArtifact } from '../artifact-store.js';
import { ArtifactNotFoundError } from '../errors.js';
import { checkSha256 } from '../sha256-key.js';
import { hashAndBound } from '../hash-and-bound.js';
import { byteWindow } from './byte-window.js';
import { stagedOnce } from '../staged-once.js';
import { describeS3Location, type S3Credentials, type S3Location } from './s3-location.js';
import { isConditionalConflict, isNotFound, isPreconditionFailed, S3StoreError, s3Status } from './s3-errors.js';

/** lib-storage's part size: S3's minimum is 5 MiB; 8 MiB parts keep a 1 GiB upload at 128 parts. */
export const PART_SIZE = 8 * 1024 ** 2;
/** Parts in flight at once: memory for one upload is about (QUEUE_SIZE + 1) x PART_SIZE. */
const QUEUE_SIZE = 2;
/** CopyObject's limit; larger artifacts would need a multipart copy (not built: --max-upload is 1 GiB by default). */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
/** With other processes on the bucket, a staged object younger than this may be another's upload in progress. */
const STALE_STAGING_MS = 24 * 3600_000;
/** Pages of 1000 keys read when clearing staging on open (a bound on the loop, not an expected size). */
const MAX_LIST_PAGES = 1000;
const CONFLICT_RETRIES = 5;
/**
 * A request to the bucket whose socket is idle this long fails: no answer, or a body that stopped
 * (a download streamed through is cut; the device resumes it by Range). A device that stops
 * reading for this long stalls the object's socket too, and its download is cut the same way.
 */
export const SOCKET_IDLE_MS = 30_000;
/** The bucket must answer its first request (HeadBucket, at open) within this, retries included. */
export const OPEN_TIMEOUT_MS = 20_000;

/** Runs `fn` holding a lock named `name` in every server process (Store.coordination.withLock). */
export type WithLock = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

export interface S3ArtifactStoreOptions {
  location: S3Location;
  credentials: S3Credentials;
  /**
   * Other server processes may use the bucket (Store.coordination.shared): opening then clears
   * only staged objects older than a day, never another process's upload in progress.
   */
  shared?: boolean;
  /**
   * Serialises commits of one hash across processes when the server ignores If-None-Match
   * (default: an in-process lock, enough for one process).
   */
  withLock?: WithLock;
  /** Multipart part size (default PART_SIZE; at least 5 MiB for S3). */
  partSize?: number;
}

/**
 * Artifacts as objects in one bucket: `PREFIX/artifacts/<sha256>`, uploaded first to
 * `PREFIX/staging/<random>` (multipart for anything over one part) while hashed, then copied to
 * their final key by commit(). commit() is create-if-absent: a conditional copy (If-None-Match: *)
 * where the server honours it (probed on open), else a HeadObject then copy under a lock keyed by
 * the hash (docs/architecture.md, "S3 artifact store", says what each guarantees).
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #partSize: number;
  readonly #withLock: WithLock;
  /** True when the server refuses a copy onto an existing key with 412 (set by open()). */
  #conditional = false;

  private constructor(readonly location: S3Location, client: S3Client, o: S3ArtifactStoreOptions) {
    this.#client = client;
    this.#bucket = location.bucket;
    this.#prefix = location.prefix;
    this.#partSize = o.partSize ?? PART_SIZE;
    this.#withLock = o.withLock ?? localLock();
  }

  /**
   * Checks the bucket (HeadBucket: reachable, exists, credentials accepted), clears staged objects
   * left by a crash, and probes whether conditional copies are honoured. Throws S3StoreError with
   * what to do.
   */
  static async open(o: S3ArtifactStoreOptions): Promise<S3ArtifactStore> {
    // The SDK is pinned, so its "later versions will need Node 22" warning asks nothing of an operator.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const loc = o.location;
    const client = new S3Client({
      region: loc.region,
      ...(loc.endpoint ? { endpoint: loc.endpoint, forcePathStyle: true } : {}),
      credentials: o.credentials,
      // We hash every byte ourselves; S3-compatible servers often reject the SDK's default
      // streaming checksums (aws-chunked trailers).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // An endpoint that accepts and then says nothing (or stops mid-body) must not hold a start,
      // a download or an upload for ever (found by an attacker: `serve` hung without a word).
      requestHandler: { connectionTimeout: 5000, socketTimeout: SOCKET_IDLE_MS },
    });
    const store = new S3ArtifactStore(loc, client, o);
    try {
      await store.#checkBucket();
      await store.#clearStaging(o.shared ? STALE_STAGING_MS : 0);
      store.#conditional = await store.#probeConditionalCopy();
    } catch (err) {
      client.destroy();
      throw err;
    }
    return store;
  }

  /** True when commits rely on the server's If-None-Match (false: HeadObject + lock). */
  get conditionalCommits(): boolean {
    return this.#conditional;
  }

  async stage(source: Readable | AsyncIterable<Uint8Array>, opts: StageOptions): Promise<StagedArtifact> {
    opts.signal?.throwIfAborted();
    const key = `${this.#prefix}staging/${randomBytes(12).toString('hex')}`;
    const { chunks, hashed } = hashAndBound(source, opts.maxLength, opts.signal);
    // The body's own error (too large, the source failing) is the one to report: lib-storage
    // replaces it with its abort request's error when that fails (s3rver answers it 405).
    let sourceError: unknown;
    const body = Readable.from((async function* () {
      try {
        yield* chunks;
      } catch (err) {
        sourceError = err;
        throw err;
      }
    })(), { objectMode: false });
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key: key, Body: body, ContentType: 'application/octet-stream' },
      partSize: this.#partSize,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      body.destroy(); // stops reading the source (an abort leaves it mid-way)
      // lib-storage aborts its multipart upload on failure; repeated here (harmless when done)
      // with the object itself in case the last request landed just before the failure.
      const uploadId = (upload as unknown as { uploadId?: string }).uploadId;
      if (uploadId) await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId })).catch(() => {});
      await this.#deleteKey(key).catch(() => {});
      if (opts.signal?.aborted) throw abortError(opts.signal);
      throw sourceError ?? err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    return this.#staged(key, hashed.sha256(), hashed.length());
  }

  async stat(sha256: string): Promise<ArtifactInfo | undefined> {
    checkSha256(sha256);
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(sha256) }));
      return { sha256, length: head.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(sha256: string, range?: { start: number; end: number }): Promise<Readable> {
    checkSha256(sha256);
    if (range && !(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`bad byte range ${range.start}-${range.end}`);
    }
    try {
      const res = await this.#client.send(new GetObjectCommand({
        Bucket: this.#bucket, Key: this.#key(sha256), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
      }));
      const body = res.Body as Readable;
      // A server that ignored the Range (no Content-Range) sent the whole object: cut it here.
      return range && !res.ContentRange ? byteWindow(body, range.start, range.end) : body;
    } catch (err) {
      if (isNotFound(err)) throw new ArtifactNotFoundError(sha256, { cause: err });
      throw err;
    }
  }

  async delete(sha256: string): Promise<void> {
    checkSha256(sha256);
    await this.#deleteKey(this.#key(sha256));
  }

  /** A presigned GET of exactly this artifact's object, valid `expiresInSeconds`; a Range header the client adds passes through. */
  async downloadUrl(sha256: string, opts: DownloadUrlOptions): Promise<string> {
    checkSha256(sha256);
    return getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(sha256) }), { expiresIn: opts.expiresInSeconds });
  }

  close(): void {
    this.#client.destroy();
  }

  #key(sha256: string): string {
    return `${this.#prefix}artifacts/${sha256}`;
  }

  async #deleteKey(key: string): Promise<void> {
    // DeleteObject of a missing key succeeds on S3; some compatible servers answer 404.
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }

  #staged(key: string, sha256: string, length: number): StagedArtifact {
    return stagedOnce(sha256, length, {
      read: async () => (await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }))).Body as Readable,
      commit: async () => {
        try {
          return await this.#commit(key, sha256, length);
        } finally {
          await this.#deleteKey(key).catch(() => {});
        }
      },
      discard: () => this.#deleteKey(key),
    });
  }

  async #commit(staging: string, sha256: string, length: number): Promise<boolean> {
    if (length > MAX_COPY_BYTES) throw new S3StoreError(`artifact of ${length} bytes is larger than the 5 GiB one S3 copy can commit; keep --max-upload at or below ${MAX_COPY_BYTES}`);
    if (this.#conditional) return this.#copyIfAbsent(staging, this.#key(sha256));
    // The server ignores If-None-Match: check then copy, with every commit of this hash (in every
    // process that shares the lock) waiting its turn, so exactly one sees the key absent.
    return this.#withLock(`artifact:${sha256}`, async () => {
      if (await this.stat(sha256)) return false;
      await this.#copy(staging, this.#key(sha256));
      return true;
    });
  }

  /** CopyObject with If-None-Match: *; false when the key exists (412). */
  async #copyIfAbsent(from: string, to: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#copy(from, to, true);
        return true;
      } catch (err) {
        if (isPreconditionFailed(err)) return false;
        if (!isConditionalConflict(err) || attempt >= CONFLICT_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  #copy(from: string, to: string, ifAbsent = false): Promise<unknown> {
    return this.#client.send(new CopyObjectCommand({
      Bucket: this.#bucket, Key: to, CopySource: `${this.#bucket}/${from}`, ...(ifAbsent ? { IfNoneMatch: '*' } : {}),
    }));
  }

  async #checkBucket(): Promise<void> {
    const where = describeS3Location(this.location);
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }), { abortSignal: AbortSignal.timeout(OPEN_TIMEOUT_MS) });
    } catch (err) {
      const status = s3Status(err);
      if ((err as Error | null)?.name === 'AbortError' || (err as Error | null)?.name === 'TimeoutError') {
        throw new S3StoreError(`--store ${where}: the S3 endpoint accepted the connection but did not answer within ${OPEN_TIMEOUT_MS / 1000} s; check that endpoint= names an S3 server and that it is healthy`, { cause: err });
      }
      if (status === 404) throw new S3StoreError(`--store ${where}: the bucket ${this.#bucket} does not exist; create it first (e.g. \`aws s3 mb s3://${this.#bucket}\`)`, { cause: err });
      if (status === 403 || status === 401) throw new S3StoreError(`--store ${where}: access to the bucket was refused (${status}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy`, { cause: err });
      if (status === 301 || status === 400) throw new S3StoreError(`--store ${where}: the bucket answered ${status}; check the region (&region=) and the endpoint`, { cause: err });
      const reason = (err as { code?: string; message?: string }).code ?? (err as Error).message;
      throw new S3StoreError(`--store ${where}: cannot reach the S3 endpoint (${String(reason).slice(0, 200)}); check that it runs and that endpoint= is right`, { cause: err });
    }
  }

  /** Deletes staged objects last modified more than `olderThanMs` ago (0: all of them). */
  async #clearStaging(olderThanMs: number): Promise<void> {
    const before = Date.now() - olderThanMs;
    let token: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const res = await this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: `${this.#prefix}staging/`, ContinuationToken: token }));
      for (const o of res.Contents ?? []) {
        if (o.Key && (olderThanMs === 0 || (o.LastModified?.getTime() ?? 0) < before)) await this.#deleteKey(o.Key);
      }
      if (!res.IsTruncated || !res.NextContinuationToken) return;
      token = res.NextContinuationToken;
    }
  }

  /**
   * Copies a probe object twice onto one new key with If-None-Match: *: a server that honours it
   * refuses the second copy with 412. One that ignores it (or rejects the header) gets the fallback.
   */
  async #probeConditionalCopy(): Promise<boolean> {
    const probe = `${this.#prefix}staging/probe-${randomBytes(8).toString('hex')}`;
    const target = `${probe}.copy`;
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: probe, Body: 'probe' }));
      try {
        await this.#copy(probe, target, true);
        await this.#copy(probe, target, true);
        return false;
      } catch (err) {
        return isPreconditionFailed(err);
      }
    } finally {
      await this.#deleteKey(probe).catch(() => {});
      await this.#deleteKey(target).catch(() => {});
    }
  }
}

/** An in-process lock per name: enough when one process uses the bucket. */
function localLock(): WithLock {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const previous = tails.get(name) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    tails.set(name, tail);
    try {
      return await run;
    } finally {
      if (tails.get(name) === tail) tails.delete(name);
    }
  };
}

/** The caller's abort as an AbortError (the contract's name), whatever lib-storage threw. */
function abortError(signal: AbortSignal): Error {
  const reason = signal.reason as unknown;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException('the upload was aborted', 'AbortError');
}
