import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { BaseFetcher } from 'tuf-js';
import { writeFileAtomic, fsyncDir } from '../util/atomic-write.js';

/**
 * tuf-js (and @tufjs/models, minimatch, debug) load on the first refresh, not with this module:
 * an up-to-date check verifies a signed answer and never refreshes, and a `patchwire check`
 * process should not pay for them (bench/README.md, issue 13).
 */
async function loadTuf() {
  const [{ BaseFetcher, Updater }, { DownloadHTTPError }] = await Promise.all([
    import('tuf-js'),
    // tuf-js's Updater recognises "no newer root" only by `instanceof DownloadHTTPError`, and its
    // index does not export that class; tuf-js has no `exports` map, so this deep import is public.
    import('tuf-js/dist/error.js'),
  ]);
  /** Passes the caller's AbortSignal to every request (tuf-js's own fetcher takes none). */
  class AbortableFetcher extends BaseFetcher {
    constructor(private readonly signal: AbortSignal | undefined) {
      super();
    }

    override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
      const timeout = AbortSignal.timeout(FETCH_TIMEOUT_MS);
      const response = await fetch(url, { signal: this.signal ? AbortSignal.any([this.signal, timeout]) : timeout });
      if (!response.ok || !response.body) {
        await response.body?.cancel().catch(() => {});
        throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
      }
      return response.body as ReadableStream<Uint8Array<ArrayBuffer>>;
    }
  }
  return { Updater, fetcher: (signal: AbortSignal | undefined): BaseFetcher => new AbortableFetcher(signal) };
}

/** A refusal of the server's TUF metadata; the message says what failed, `cause` holds the tuf-js error. */
export class TufVerificationError extends Error {
  override name = 'TufVerificationError';
}

export interface VerifiedTarget {
  path: string;
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
}

/** Bounds one metadata download, so a server that trickles bytes cannot hold the agent forever. */
const FETCH_TIMEOUT_MS = 60_000;
/** root.json is the trust anchor: it is never deleted, and copied back before anything else. */
const ROOT = 'root.json';
const COPY_ORDER = [ROOT, 'timestamp.json', 'snapshot.json', 'targets.json'];

/** One refresh at a time per metadata folder in this process: scratch clean-up must not hit a live one. */
const busy = new Map<string, Promise<unknown>>();

/** Trusted TUF metadata of one product kept in `metadataDir` (the agent's `.patchwire/tuf/`, which holds at least root.json). */
export class TrustedRepository {
  readonly #dir: string;
  readonly #baseUrl: string;

  constructor(opts: { metadataDir: string; metadataBaseUrl: string }) {
    this.#dir = resolve(opts.metadataDir);
    // tuf-js joins file names onto the base URL; without the slash the last segment would be lost.
    this.#baseUrl = opts.metadataBaseUrl.endsWith('/') ? opts.metadataBaseUrl : `${opts.metadataBaseUrl}/`;
  }

  /** Refreshes root/timestamp/snapshot/targets from the server, verifying everything, and returns the verified target or undefined if the signed targets do not list it. */
  getTarget(path: string, signal?: AbortSignal): Promise<VerifiedTarget | undefined> {
    return serialised(this.#dir, () => this.#getTarget(path, signal));
  }

  /** Refreshes root/timestamp/snapshot/targets from the server, verifying everything (TufVerificationError when refused). */
  refresh(signal?: AbortSignal): Promise<void> {
    return serialised(this.#dir, async () => { await this.#getTarget(undefined, signal); });
  }

  /** The folder of the trusted metadata (root.json and the verified timestamp/snapshot/targets). */
  get metadataDir(): string {
    return this.#dir;
  }

  /** Forgets timestamp/snapshot/targets (keeps the newest trusted root) — used after following a signed moved notice to a new server, whose freshness counters start anew. */
  resetFreshness(): Promise<void> {
    return serialised(this.#dir, async () => {
      // Idempotent: after a crash half-way, calling it again finishes the job.
      for (const name of await metadataFiles(this.#dir)) {
        if (name !== ROOT) await unlink(join(this.#dir, name)).catch(ignoreMissing);
      }
      fsyncDir(this.#dir);
    });
  }

  async #getTarget(path: string | undefined, signal?: AbortSignal): Promise<VerifiedTarget | undefined> {
    signal?.throwIfAborted();
    await removeStaleScratch(this.#dir);
    const before = await readMetadata(this.#dir);
    if (!before.has(ROOT)) {
      throw new TufVerificationError(`no trusted ${ROOT} in ${this.#dir}; initialise the agent with \`patchwire init --root FILE\``);
    }
    // tuf-js writes metadata with plain writeFileSync while it verifies: let it work on a copy,
    // and move only a fully verified set into the real folder.
    const scratch = `${this.#dir}.work-${randomBytes(6).toString('hex')}`;
    await mkdir(scratch, { mode: 0o700 });
    try {
      for (const [name, bytes] of before) await writeFile(join(scratch, name), bytes);
      let target;
      const { Updater, fetcher } = await loadTuf();
      try {
        const updater = new Updater({
          metadataDir: scratch,
          metadataBaseUrl: this.#baseUrl,
          fetcher: fetcher(signal),
          config: { fetchRetries: 0, fetchRetry: 0, fetchTimeout: FETCH_TIMEOUT_MS },
        });
        await updater.refresh();
        if (path !== undefined) target = await updater.getTargetInfo(path);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new TufVerificationError(`TUF metadata from ${this.#baseUrl} refused: ${describe(err)}`, { cause: err });
      }
      signal?.throwIfAborted();
      const result = target && toVerified(target);
      await copyBackChanged(scratch, this.#dir, before);
      return result;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

function toVerified(t: { path: string; length: number; hashes: Record<string, string>; custom: Record<string, unknown> }): VerifiedTarget {
  const sha256 = t.hashes.sha256;
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new TufVerificationError(`signed target ${t.path} carries no sha256 hash; the publisher must publish it again with \`patchwire publish\``);
  }
  return { path: t.path, length: t.length, sha256, custom: t.custom };
}

/** Names the attack or fault behind a tuf-js error; tuf-js wraps some errors into message text. */
function describe(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const text = `${e.constructor.name}: ${e.message}`;
  const kinds: [RegExp, string][] = [
    [/Expired|is expired/i, 'expired metadata (a freeze attack, or the server stopped re-signing; check the server and the device clock)'],
    [/EqualVersion|BadVersion|less than current|does not match snapshot version|doesn't match timestamp|Expected version/i, 'rollback: the server offers older metadata than this device already trusts'],
    [/Max length reached|LengthMismatch/i, 'response too large for its signed or maximum length'],
    [/Unsigned|signed by \d+\/\d+ keys|failed to verify/i, 'bad signature: metadata is not signed by the trusted keys'],
    [/hash|length/i, 'metadata bytes do not match the signed hash or length (tampered in transit or on the server)'],
    [/DownloadHTTPError|HTTP \d+/i, 'the server did not serve the metadata'],
    [/fetch failed|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|aborted|timeout/i, 'the server could not be reached'],
  ];
  const kind = kinds.find(([re]) => re.test(text))?.[1] ?? 'invalid metadata';
  return `${kind} (${e.message})`;
}

async function serialised<T>(dir: string, job: () => Promise<T>): Promise<T> {
  const previous = busy.get(dir) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(job);
  busy.set(dir, run);
  try {
    return await run;
  } finally {
    if (busy.get(dir) === run) busy.delete(dir);
  }
}

/** Scratch folders left behind by a crash or kill in an earlier refresh. */
async function removeStaleScratch(dir: string): Promise<void> {
  const prefix = `${basename(dir)}.work-`;
  const siblings = await readdir(dirname(dir)).catch(() => [] as string[]);
  for (const name of siblings) {
    if (name.startsWith(prefix)) await rm(join(dirname(dir), name), { recursive: true, force: true });
  }
}

/** Metadata file names in `dir`; dot-files are temporaries of writeFileAtomic, never metadata. */
async function metadataFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names.filter((n) => n.endsWith('.json') && !n.startsWith('.'));
}

async function readMetadata(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await metadataFiles(dir)) out.set(name, await readFile(join(dir, name)));
  return out;
}

/**
 * Copies the verified files that changed, root first: if a crash stops the copy half-way, the
 * folder holds a newer root with older freshness files, which tuf-js re-checks and replaces.
 */
async function copyBackChanged(scratch: string, dir: string, before: Map<string, Buffer>): Promise<void> {
  const after = await readMetadata(scratch);
  const rank = (n: string) => (COPY_ORDER.includes(n) ? COPY_ORDER.indexOf(n) : COPY_ORDER.length);
  const names = [...after.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const name of names) {
    const bytes = after.get(name)!;
    if (!before.get(name)?.equals(bytes)) await writeFileAtomic(join(dir, name), bytes);
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
