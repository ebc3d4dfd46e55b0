import type { AdmissionPolicy, Store } from '../../store/store.js';
import { StoreConflictError } from '../../store/errors.js';
import { verifyInitialRoot, verifyTargets } from '../../tuf/repository.js';
import { isName } from '../../protocol/names.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import { toApiError, type OnlineKeyPairs, type TufMetadataService } from './tuf-metadata.js';
import type { CatalogChanges } from './catalog-sync.js';

/** Products: each one a TUF repository whose root the publisher signed with its offline key. */
export class ProductService {
  private names = new Set<string>();
  private admissions = new Map<string, AdmissionPolicy>();
  private menderDests = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly tuf: TufMetadataService,
    private readonly keys: OnlineKeyPairs | null,
    private readonly now: Clock,
    private readonly changes: CatalogChanges,
  ) {}

  async load(): Promise<void> {
    for (const p of await this.store.listProducts()) {
      this.names.add(p.name);
      this.admissions.set(p.name, p.admission ?? 'auto');
      this.keepMenderDest(p.name, p.menderDest);
    }
  }

  /** Reads one product again (another process created it or changed its admission). */
  async loadProduct(name: string): Promise<boolean> {
    const p = await this.store.getProduct(name);
    if (!p) return false;
    this.names.add(p.name);
    this.admissions.set(p.name, p.admission ?? 'auto');
    this.keepMenderDest(p.name, p.menderDest);
    return true;
  }

  /** Runs `fn` holding the product's lock in every process (TufMetadataService.exclusive). */
  exclusive<T>(product: string, fn: () => Promise<T>): Promise<T> {
    return this.tuf.exclusive(product, fn);
  }

  /** How the product admits a device it has never seen (`auto` unless set). */
  admissionOf(name: string): AdmissionPolicy {
    return this.admissions.get(name) ?? 'auto';
  }

  /** `patchwire product admission P auto|approve`: applies to devices not enrolled yet. */
  async setAdmission(name: string, policy: AdmissionPolicy): Promise<void> {
    this.require(name);
    await this.tuf.exclusive(name, () => this.store.setAdmission(name, policy));
    this.admissions.set(name, policy);
    this.changes.changed(name, 'admission');
  }

  /** The folder the product's Mender artifacts install into (`--mender-dest`), undefined when not set (docs/compat.md). */
  menderDestOf(name: string): string | undefined {
    return this.menderDests.get(name);
  }

  /** `patchwire product create|update --mender-dest DIR` (checked by the caller); null clears it. */
  async setMenderDest(name: string, dest: string | null): Promise<void> {
    this.require(name);
    await this.tuf.exclusive(name, () => this.store.setMenderDest(name, dest));
    this.keepMenderDest(name, dest);
    this.changes.changed(name, 'product');
  }

  private keepMenderDest(name: string, dest: string | null | undefined): void {
    if (dest) this.menderDests.set(name, dest);
    else this.menderDests.delete(name);
  }

  onlineKeys(): { snapshot: string; timestamp: string; deltas: string } {
    if (!this.keys) throw new ApiError('PW_MIRROR_READ_ONLY', 'this server is a mirror and holds no online keys; create products on the primary');
    return { snapshot: this.keys.snapshot.publicHex, timestamp: this.keys.timestamp.publicHex, deltas: this.keys.deltas.publicHex };
  }

  exists(name: string): boolean {
    return this.names.has(name);
  }

  /** Throws PW_UNKNOWN_PRODUCT unless the product exists. */
  require(name: string): void {
    if (!this.names.has(name)) {
      throw new ApiError('PW_UNKNOWN_PRODUCT', `unknown product '${name}': create it with \`patchwire product create\`, or check the name`);
    }
  }

  list(): string[] {
    return [...this.names].sort();
  }

  /** Verifies root v1 and targets v1 from the publisher, signs snapshot and timestamp, stores all four. */
  async create(name: string, root: unknown, targets: unknown, admission: AdmissionPolicy = 'auto'): Promise<void> {
    if (!isName(name)) throw new ApiError('PW_BAD_REQUEST', `invalid product name '${name}': use 1-64 of a-z 0-9 . _ - starting with a letter or digit`);
    await this.tuf.exclusive(name, async () => {
      const now = this.now();
      let verifiedRoot, verifiedTargets;
      try {
        verifiedRoot = verifyInitialRoot(root, this.onlineKeys(), now);
        verifiedTargets = verifyTargets(verifiedRoot.json, targets, 1, now);
      } catch (err) {
        throw toApiError(err);
      }
      const signed = this.tuf.sign(name, verifiedTargets, 1, 1);
      try {
        await this.store.createProduct({ name, createdAt: now, admission }, [
          { product: name, role: 'root', version: 1, json: verifiedRoot.json, expiresAt: verifiedRoot.expires },
          { product: name, role: 'targets', version: 1, json: verifiedTargets.json, expiresAt: verifiedTargets.expires },
          ...signed,
        ]);
      } catch (err) {
        if (err instanceof StoreConflictError) throw new ApiError('PW_PRODUCT_EXISTS', `product '${name}' exists already; publish to it, or pick another name`, { cause: err });
        throw err;
      }
      this.names.add(name);
      this.admissions.set(name, admission);
    });
    this.changes.changed(name, 'product');
  }
}
