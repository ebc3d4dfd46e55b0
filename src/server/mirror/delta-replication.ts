import type { DeltaRecord, ReleaseRecord, Store } from '../../store/store.js';
import { StoreConflictError } from '../../store/errors.js';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import type { DeltaSync } from '../../protocol/wire.js';
import { deltaTargetPath } from '../../protocol/targets.js';
import { targetUrl } from '../../protocol/urls.js';
import { compareVersions } from '../../protocol/version.js';
import { peerStream } from './peer-client.js';
import { DELTA_LIMITS } from './limits.js';

/**
 * Copies one target from the primary by content hash: the bytes are hashed while staged, at most
 * `length` of them are read, and they are kept only when they hash to `sha256` (and, unless
 * `atMost`, are exactly `length` bytes); otherwise an Error says what came and nothing is kept.
 */
export async function copyByHash(artifacts: ArtifactStore, url: string, sha256: string, length: number, atMost = false): Promise<void> {
  // A primary with --store-redirect answers 302 to a presigned S3 URL: followed once, without the
  // token, since the bytes are checked against the signed hash and length below.
  const staged = await artifacts.stage(await peerStream(url, { followStoreRedirect: true }), { maxLength: length });
  try {
    if (staged.sha256 !== sha256 || (!atMost && staged.length !== length)) {
      throw new Error(`${url} sent ${staged.length} bytes with sha256 ${staged.sha256}, expected ${length} bytes with sha256 ${sha256}`);
    }
    await staged.commit();
  } finally {
    await staged.discard().catch(() => {});
  }
}

export interface DeltaCopyOptions {
  store: Store;
  artifacts: ArtifactStore;
  upstream: string;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** What one pass did with one product's deltas. */
export interface DeltaCopyResult {
  /** Deltas copied and stored (offered once the services reload). */
  copied: number;
  /** Deltas the primary withdrew (a device could not apply them) that this mirror withdrew too. */
  withdrawn: number;
}

type SignedDeltaTarget = { length?: unknown; hashes?: { sha256?: unknown }; custom?: { patchwire?: Record<string, unknown> } };

const SHA256_RE = /^[0-9a-f]{64}$/;
/** Engine names are informational (the container names its engine); printable ASCII, bounded. */
const ENGINE_RE = /^[\x21-\x7e]{1,64}$/;
/** Distinct refusal messages remembered so that one is logged once per process, not every pass. */
const WARNED_MAX = 1000;

/**
 * The mirror's copy of its primary's deltas (issue 13). The catalog lists them; a delta is copied
 * only when everything about it is what this mirror can check itself:
 * - its `from` and `to` are releases this mirror holds in its channel, `from` lower than `to`;
 * - its target path is the one this mirror builds from those (never a path or URL from the peer):
 *   the bytes are fetched from this mirror's own `--upstream` by the path and hash;
 * - the deltas role metadata this mirror holds (copied in the same pass, the primary's signed
 *   bytes) lists the same path, length and sha256 for the same product, channel and versions, so
 *   a device that verifies the offer through TUF finds it signed;
 * - it is at most the full archive's length (the agent refuses a longer one anyway);
 * - its bytes, hashed while staged and read up to that length, match.
 * A delta that fails is not stored, so not offered (devices get the full archive), and is tried
 * again at the next pass; the pass itself goes on. At most DELTA_LIMITS.downloadsPerPass
 * downloads per pass. A delta the primary marks failed is withdrawn here too.
 */
export class DeltaCopier {
  private readonly warned = new Set<string>();
  /** Downloads left in the current pass (reset by `startPass`). */
  private budget = DELTA_LIMITS.downloadsPerPass;

  constructor(private readonly o: DeltaCopyOptions) {}

  startPass(): void {
    this.budget = DELTA_LIMITS.downloadsPerPass;
  }

  /** `listed`: the catalog's `deltas` of `product` as received (anything). */
  async product(product: string, listed: unknown): Promise<DeltaCopyResult> {
    const result: DeltaCopyResult = { copied: 0, withdrawn: 0 };
    if (listed === undefined) return result;
    if (!Array.isArray(listed)) {
      this.warnOnce(product, `the primary's catalog lists the deltas of ${product} as something other than a list; none copied (devices here get full archives)`);
      return result;
    }
    const entries = listed.length > DELTA_LIMITS.perProduct ? listed.slice(-DELTA_LIMITS.perProduct) : listed;
    const { store } = this.o;
    const local = new Map((await store.listDeltas(product)).map((d) => [d.target, d]));
    const releases = new Map((await store.listReleases(product)).map((r) => [`${r.channel}\u0000${r.version}`, r]));
    const signed = await this.signedTargets(product);
    const refused: string[] = [];
    let deferred = 0;
    for (const raw of entries) {
      const d = this.judge(product, raw, releases, signed, refused);
      if (!d) continue;
      const have = local.get(d.target);
      if (have) {
        if (d.failed && !have.failed && (await store.markDeltaFailed(product, d.target))) result.withdrawn++;
        continue;
      }
      if (d.failed) continue;
      if (this.budget <= 0) {
        deferred++;
        continue;
      }
      this.budget--;
      const copied = await this.copy(product, d);
      if (copied) {
        local.set(d.target, copied);
        result.copied++;
      }
    }
    if (listed.length > entries.length) {
      this.warnOnce(product, `the primary's catalog lists ${listed.length} deltas of ${product}, more than the ${DELTA_LIMITS.perProduct} a mirror reads; only the newest ${DELTA_LIMITS.perProduct} were considered`);
    }
    if (refused.length) {
      this.warnOnce(product, `this mirror refused ${refused.length} of the deltas the primary's catalog lists for ${product} (devices here get the full archive instead): ${refused.slice(0, 5).join('; ')}${refused.length > 5 ? '; ...' : ''}`);
    }
    if (deferred) {
      this.o.log.info({ product, deferred, perPass: DELTA_LIMITS.downloadsPerPass }, 'more deltas to copy than one replication pass takes; the rest follow in the next passes');
    }
    return result;
  }

  /** The targets of the deltas role metadata this mirror holds for `product` (empty when none or unreadable). */
  private async signedTargets(product: string): Promise<Map<string, SignedDeltaTarget>> {
    const record = await this.o.store.getMetadata(product, 'deltas');
    if (!record) return new Map();
    try {
      const targets = (JSON.parse(record.json) as { signed?: { targets?: Record<string, SignedDeltaTarget> } }).signed?.targets;
      return new Map(targets && typeof targets === 'object' ? Object.entries(targets) : []);
    } catch {
      return new Map();
    }
  }

  /** The entry when it may be copied (or withdrawn); else undefined, with why in `refused` (or nothing: not yet signed). */
  private judge(product: string, raw: unknown, releases: Map<string, ReleaseRecord>, signed: Map<string, SignedDeltaTarget>, refused: string[]): DeltaSync | undefined {
    const d = raw as Partial<DeltaSync> | null;
    const name = typeof d?.target === 'string' ? `'${d.target.slice(0, 200)}'` : 'an entry';
    const refuse = (why: string) => void refused.push(`${name} ${why}`);
    if (!d || typeof d !== 'object' || typeof d.channel !== 'string' || typeof d.from !== 'string' || typeof d.to !== 'string' || typeof d.target !== 'string') {
      return refuse('is not { channel, from, to, target, sha256, length, engine, createdAt, failed }');
    }
    if (typeof d.sha256 !== 'string' || !SHA256_RE.test(d.sha256)) return refuse('has no sha256 of 64 lowercase hex digits');
    if (typeof d.length !== 'number' || !Number.isSafeInteger(d.length) || d.length < 1) return refuse('has a length that is not a positive whole number');
    if (typeof d.engine !== 'string' || !ENGINE_RE.test(d.engine)) return refuse('has an engine that is not 1-64 printable characters');
    if (typeof d.failed !== 'boolean') return refuse('has a `failed` that is not true or false');
    const createdAt = typeof d.createdAt === 'string' ? new Date(d.createdAt) : new Date(NaN);
    if (Number.isNaN(createdAt.getTime()) || createdAt.getUTCFullYear() < 2000 || createdAt.getUTCFullYear() > 2999) {
      return refuse('has a createdAt that is not an ISO-8601 time between 2000 and 2999');
    }
    const from = releases.get(`${d.channel}\u0000${d.from}`);
    const to = releases.get(`${d.channel}\u0000${d.to}`);
    // The releases are replicated before the deltas: one this mirror lacks is no release of the primary's.
    if (!from || !to) return refuse(`names releases this mirror does not hold (channel ${d.channel.slice(0, 64)}, ${d.from.slice(0, 64)} to ${d.to.slice(0, 64)})`);
    if (compareVersions(from.version, to.version) >= 0) return refuse(`goes from ${from.version} to ${to.version}, not to a higher version`);
    if (d.target !== deltaTargetPath(to.channel, from.version, to.version)) {
      return refuse(`is not the delta path of ${to.channel} ${from.version} to ${to.version} (${deltaTargetPath(to.channel, from.version, to.version)})`);
    }
    if (d.length > to.length) return refuse(`is ${d.length} bytes, longer than the full archive of ${to.version} (${to.length} bytes)`);
    const s = signed.get(d.target);
    if (!s) {
      // The catalog and the metadata are read one after the other: the next pass copies the deltas metadata that lists it.
      this.o.log.info({ product, target: d.target }, 'a delta the catalog lists is not in the deltas metadata this mirror holds yet; copied at a later pass');
      return undefined;
    }
    const p = s.custom?.patchwire;
    if (s.length !== d.length || s.hashes?.sha256 !== d.sha256 || p?.kind !== 'delta' || p.product !== product || p.channel !== to.channel || p.from !== from.version || p.to !== to.version) {
      return refuse('is not what the signed deltas metadata lists for that path (length, sha256, product, channel, versions)');
    }
    return { ...(d as DeltaSync), createdAt: createdAt.toISOString() };
  }

  /** Downloads and stores one delta; undefined (logged) when its bytes were refused or did not come. */
  private async copy(product: string, d: DeltaSync): Promise<DeltaRecord | undefined> {
    const { store, artifacts } = this.o;
    const url = targetUrl(this.o.upstream, product, d.target, d.sha256);
    try {
      if (!(await artifacts.stat(d.sha256))) await copyByHash(artifacts, url, d.sha256, d.length);
    } catch (err) {
      this.o.log.warn({ product, target: d.target, err: (err as Error).message },
        'a delta from the primary was refused (its bytes do not match the signed deltas metadata, or did not come); it is not offered here (devices get the full archive) and is fetched again at the next pass');
      return undefined;
    }
    const record: DeltaRecord = {
      product, channel: d.channel, fromVersion: d.from, toVersion: d.to, target: d.target,
      sha256: d.sha256, length: d.length, engine: d.engine, createdAt: new Date(d.createdAt), failed: false,
    };
    try {
      // The deltas metadata is the primary's, copied with the other roles: none is added here.
      await store.addDelta(record, []);
    } catch (err) {
      if (!(err instanceof StoreConflictError)) throw err;
      return undefined;
    }
    this.o.log.info({ product, target: d.target, bytes: d.length }, 'copied a delta from the primary');
    return record;
  }

  private warnOnce(product: string, msg: string): void {
    if (this.warned.has(msg)) return;
    if (this.warned.size >= WARNED_MAX) this.warned.clear();
    this.warned.add(msg);
    this.o.log.warn({ product }, msg);
  }
}
