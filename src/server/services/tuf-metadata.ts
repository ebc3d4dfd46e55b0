import type { MetadataRecord, MetadataRole, Store } from '../../store/store.js';
import type { KeyPair } from '../../tuf/keys.js';
import { signDeltas, signSnapshot, signTimestamp, verifyTargets, TufError, type VerifiedTargets } from '../../tuf/repository.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { CatalogChanges } from './catalog-sync.js';

/**
 * How long a process reuses the timestamp record it read for signed check answers (issue 10: the
 * read was one store round trip per signed check, ~170 us of server CPU on PostgreSQL). Within this
 * process every write of a product's metadata runs in `exclusive`, which drops the record; another
 * process's re-sign or publish arrives as a catalog notification (reloadProduct drops it); this
 * bound holds when a notification is lost, so an answer never names an older timestamp than the
 * store holds for longer than this.
 */
export const TIMESTAMP_REUSE_MS = 1000;

export interface OnlineKeyPairs {
  snapshot: KeyPair;
  timestamp: KeyPair;
  /** Signs the delegated `deltas` role. */
  deltas: KeyPair;
}

export interface ExpiryPolicy {
  snapshotSeconds: number;
  timestampSeconds: number;
}

/** TufError codes are ApiError codes already; this keeps the message and the cause. */
export function toApiError(err: unknown): unknown {
  return err instanceof TufError ? new ApiError(err.code, err.message, { cause: err }) : err;
}

/**
 * The server's part of every product's TUF repository: verifies targets the publisher signed,
 * signs snapshot and timestamp with the online keys, and re-signs them before they expire
 * (when less than half their lifetime is left). Work on one product is serialised across every
 * process on the database (`exclusive`).
 */
export class TufMetadataService {
  constructor(
    private readonly store: Store,
    /** null on a mirror: it serves the primary's metadata verbatim and never signs. */
    private readonly keys: OnlineKeyPairs | null,
    private readonly expiry: ExpiryPolicy,
    private readonly now: Clock,
    /** Tells the other processes of a re-sign (their cached timestamp record is dropped). */
    private readonly changes?: CatalogChanges,
  ) {}

  /** The current timestamp record per product, as read at `at` under generation `gen`. */
  readonly #timestamps = new Map<string, { record: MetadataRecord; at: number; gen: number }>();
  /** Bumped when a product's metadata may have changed; a read that saw another generation is not kept. */
  readonly #gens = new Map<string, number>();
  /** Products with an `exclusive` section in progress in this process: nothing read meanwhile is kept. */
  readonly #writing = new Map<string, number>();

  /** Drops the cached timestamp record of `product` (a write here, or another process's notification). */
  forgetTimestamp(product: string): void {
    this.#gens.set(product, (this.#gens.get(product) ?? 0) + 1);
    this.#timestamps.delete(product);
  }

  /**
   * Runs `fn` holding the product's lock in every process on this database (`product:<name>`):
   * publish, yank, move, schedule, admission and delta signing take it, so two processes changing
   * one product queue up instead of one failing on the other's metadata version.
   */
  exclusive<T>(product: string, fn: () => Promise<T>): Promise<T> {
    return this.store.coordination.withLock(`product:${product}`, async () => {
      // Every write of a product's metadata runs here: the cached timestamp record is dropped
      // before and after it, and none is kept while it runs (the commit may land at any point).
      this.#writing.set(product, (this.#writing.get(product) ?? 0) + 1);
      this.forgetTimestamp(product);
      try {
        return await fn();
      } finally {
        const n = this.#writing.get(product)! - 1;
        if (n === 0) this.#writing.delete(product); else this.#writing.set(product, n);
        this.forgetTimestamp(product);
      }
    });
  }

  private signingKeys(): OnlineKeyPairs {
    if (!this.keys) throw new ApiError('PW_MIRROR_READ_ONLY', 'this server is a mirror: it never signs; publish, schedule and move on the primary');
    return this.keys;
  }

  /**
   * A metadata file's exact bytes as served to devices and mirrors (`version` undefined: the
   * newest, served so only for timestamp.json, which is re-signed first when due); undefined
   * when there is no such version.
   */
  async served(product: string, role: MetadataRole, version?: number): Promise<string | undefined> {
    if (role === 'timestamp') await this.refresh(product);
    return (await this.store.getMetadata(product, role, version))?.json;
  }

  /**
   * The product's current timestamp record, re-signed first when less than half its lifetime is
   * left (as `served` does): signed check answers name it, and must never name an expired one.
   * Read from the store at most once per TIMESTAMP_REUSE_MS per product when nothing changes.
   */
  async currentTimestamp(product: string): Promise<MetadataRecord | undefined> {
    const now = this.now().getTime();
    const ts = this.#cachedTimestamp(product, now) ?? (await this.#readTimestamp(product, now));
    if (!ts || ts.expiresAt.getTime() - now >= (this.expiry.timestampSeconds * 1000) / 2) return ts;
    await this.refresh(product);
    return this.store.getMetadata(product, 'timestamp');
  }

  #cachedTimestamp(product: string, now: number): MetadataRecord | undefined {
    const c = this.#timestamps.get(product);
    // A clock that went back (a test clock, a corrected system clock) reads again.
    return c && c.gen === (this.#gens.get(product) ?? 0) && now >= c.at && now - c.at < TIMESTAMP_REUSE_MS ? c.record : undefined;
  }

  async #readTimestamp(product: string, now: number): Promise<MetadataRecord | undefined> {
    const gen = this.#gens.get(product) ?? 0;
    const writing = this.#writing.has(product);
    const ts = await this.store.getMetadata(product, 'timestamp');
    // Kept only when no write began or ended while it was read (nor was running).
    if (ts && !writing && gen === (this.#gens.get(product) ?? 0)) this.#timestamps.set(product, { record: ts, at: now, gen });
    return ts;
  }

  /** The product's current signed targets metadata, as stored and served. */
  async targetsJson(product: string): Promise<string> {
    const targets = await this.store.getMetadata(product, 'targets');
    if (!targets) throw new ApiError('PW_UNKNOWN_PRODUCT', `product '${product}' has no metadata; create it with \`patchwire product create\``);
    return targets.json;
  }

  /** Verifies `targets` as the next targets version of `product` (call inside `exclusive`). */
  async verifyNextTargets(product: string, targets: unknown): Promise<VerifiedTargets> {
    const [root, current] = await Promise.all([
      this.store.getMetadata(product, 'root'),
      this.store.getMetadata(product, 'targets'),
    ]);
    if (!root || !current) throw new ApiError('PW_UNKNOWN_PRODUCT', `product '${product}' has no metadata; create it with \`patchwire product create\``);
    try {
      return verifyTargets(root.json, targets, current.version + 1, this.now());
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** Snapshot and timestamp records that publish `targets` (the next targets version). */
  async signFor(product: string, targets: { version: number; json: string; expires: Date }): Promise<MetadataRecord[]> {
    const [snap, ts, deltas] = await Promise.all([
      this.store.getMetadata(product, 'snapshot'),
      this.store.getMetadata(product, 'timestamp'),
      this.store.getMetadata(product, 'deltas'),
    ]);
    return this.sign(product, { version: targets.version, json: targets.json }, (snap?.version ?? 0) + 1, (ts?.version ?? 0) + 1, deltas);
  }

  /**
   * Signs the next version of the delegated deltas role with `targets` (every delta of the
   * product), plus the snapshot and timestamp that publish it (call inside `exclusive`).
   */
  async signDeltasFor(product: string, targets: Parameters<typeof signDeltas>[0]['targets']): Promise<MetadataRecord[]> {
    const keys = this.signingKeys();
    const [current, tgts, snap, ts] = await Promise.all([
      this.store.getMetadata(product, 'deltas'),
      this.store.getMetadata(product, 'targets'),
      this.store.getMetadata(product, 'snapshot'),
      this.store.getMetadata(product, 'timestamp'),
    ]);
    const d = signDeltas({
      version: (current?.version ?? 0) + 1, targets, key: keys.deltas,
      expires: new Date(this.now().getTime() + this.expiry.snapshotSeconds * 1000),
    });
    const deltas = { product, role: 'deltas' as const, version: d.version, json: d.json, expiresAt: d.expires };
    return [deltas, ...this.sign(product, tgts!, (snap?.version ?? 0) + 1, (ts?.version ?? 0) + 1, deltas)];
  }

  /** Builds snapshot v`snapshotVersion` naming the given targets, and timestamp v`timestampVersion` naming it. */
  sign(
    product: string,
    targets: { version: number; json: string },
    snapshotVersion: number,
    timestampVersion: number,
    deltas?: { version: number; json: string },
  ): MetadataRecord[] {
    const keys = this.signingKeys();
    const now = this.now().getTime();
    const snapshot = signSnapshot({
      version: snapshotVersion,
      targetsVersion: targets.version,
      targetsJson: targets.json,
      deltas,
      key: keys.snapshot,
      expires: new Date(now + this.expiry.snapshotSeconds * 1000),
    });
    const timestamp = signTimestamp({
      version: timestampVersion,
      snapshotVersion,
      snapshotJson: snapshot.json,
      key: keys.timestamp,
      expires: new Date(now + this.expiry.timestampSeconds * 1000),
    });
    return [
      { product, role: 'snapshot', version: snapshot.version, json: snapshot.json, expiresAt: snapshot.expires },
      { product, role: 'timestamp', version: timestamp.version, json: timestamp.json, expiresAt: timestamp.expires },
    ];
  }

  /**
   * Re-signs the product's timestamp (and snapshot) when less than half of its lifetime is left.
   * Returns true when it wrote new metadata. One process at a time re-signs a product
   * (`resign:<product>`); the others return at once and read what is stored (still valid: it is
   * re-signed at half its lifetime), waiting for the signer only when that has expired.
   */
  async refresh(product: string): Promise<boolean> {
    if (!this.keys) return false;
    // Nothing due (nearly always): no lock taken, which with PostgreSQL would cost round trips.
    if (!(await this.due(product))) return false;
    const lock = `resign:${product}`;
    const r = await this.store.coordination.tryLock(lock, () => this.exclusive(product, () => this.resign(product, this.keys!)));
    if (r.ran) {
      // The other processes drop the timestamp record they reuse for signed answers.
      if (r.value) this.changes?.changed(product, 'timestamp');
      return r.value;
    }
    const ts = await this.store.getMetadata(product, 'timestamp');
    if (ts && ts.expiresAt.getTime() <= this.now().getTime()) await this.store.coordination.withLock(lock, async () => {});
    return false;
  }

  /** True when the snapshot or the timestamp has less than half its lifetime left. */
  private async due(product: string): Promise<boolean> {
    const [snap, ts] = await Promise.all([this.store.getMetadata(product, 'snapshot'), this.store.getMetadata(product, 'timestamp')]);
    if (!snap || !ts) return false;
    const now = this.now().getTime();
    return snap.expiresAt.getTime() - now < (this.expiry.snapshotSeconds * 1000) / 2 || ts.expiresAt.getTime() - now < (this.expiry.timestampSeconds * 1000) / 2;
  }

  /** The re-signing itself (holding both locks): reads what is stored now, signs what is due. */
  private async resign(product: string, keys: OnlineKeyPairs): Promise<boolean> {
    const [targets, snap, ts, deltas] = await Promise.all([
      this.store.getMetadata(product, 'targets'),
      this.store.getMetadata(product, 'snapshot'),
      this.store.getMetadata(product, 'timestamp'),
      this.store.getMetadata(product, 'deltas'),
    ]);
    if (!targets || !snap || !ts) return false;
    const now = this.now().getTime();
    const halfSnap = (this.expiry.snapshotSeconds * 1000) / 2;
    const halfTs = (this.expiry.timestampSeconds * 1000) / 2;
    if (snap.expiresAt.getTime() - now < halfSnap) {
      await this.store.putMetadata(this.sign(product, targets, snap.version + 1, ts.version + 1, deltas));
      return true;
    }
    if (ts.expiresAt.getTime() - now < halfTs) {
      const timestamp = signTimestamp({
        version: ts.version + 1,
        snapshotVersion: snap.version,
        snapshotJson: snap.json,
        key: keys.timestamp,
        expires: new Date(now + this.expiry.timestampSeconds * 1000),
      });
      await this.store.putMetadata([{ product, role: 'timestamp', version: timestamp.version, json: timestamp.json, expiresAt: timestamp.expires }]);
      return true;
    }
    return false;
  }
}
