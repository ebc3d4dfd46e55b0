import { Readable } from 'node:stream';
import type { MovedRecord, Store } from '../../store/store.js';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import { parseHttpUrl } from '../../protocol/http-url.js';
import { MOVED_TARGET_PATH } from '../../protocol/targets.js';
import type { MovedNotice } from '../../protocol/wire.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { TufMetadataService } from './tuf-metadata.js';
import type { ProductService } from './products.js';
import type { ReleaseService } from './releases.js';
import { checkOnlyTargetChanged, checkStagedMatches, commitWithArtifact } from './target-update.js';
import type { CatalogChanges } from './catalog-sync.js';

const MAX_NOTICE_BYTES = 4096;

/**
 * The moved notice: a signed TUF target saying "this product's server now lives at URL". Only the
 * publisher's key can sign it, so a hijacked server cannot send devices elsewhere.
 */
export class MovedService {
  private current = new Map<string, MovedRecord>();

  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
    private readonly tuf: TufMetadataService,
    private readonly products: ProductService,
    private readonly releases: ReleaseService,
    private readonly now: Clock,
    private readonly changes: CatalogChanges,
  ) {}

  async load(): Promise<void> {
    for (const p of this.products.list()) {
      const m = await this.store.getMoved(p);
      if (m) this.current.set(p, m);
    }
  }

  /** Reads one product's notice again (another process set it). */
  async loadProduct(product: string): Promise<void> {
    const m = await this.store.getMoved(product);
    if (m) this.current.set(product, m);
  }

  get(product: string): MovedRecord | undefined {
    return this.current.get(product);
  }

  /** `notice` is the exact text of the signed target; `targets` the next targets version listing it. */
  async set(product: string, notice: string, targets: unknown): Promise<MovedRecord> {
    this.products.require(product);
    const bytes = Buffer.from(notice, 'utf8');
    if (bytes.length > MAX_NOTICE_BYTES) throw new ApiError('PW_BAD_REQUEST', `the notice is larger than ${MAX_NOTICE_BYTES} bytes`);
    const parsed = parseNotice(notice, product);
    const staged = await this.artifacts.stage(Readable.from([bytes]), { maxLength: MAX_NOTICE_BYTES });
    try {
      return await this.tuf.exclusive(product, async () => {
        const verified = await this.tuf.verifyNextTargets(product, targets);
        await checkOnlyTargetChanged(this.store, product, verified, MOVED_TARGET_PATH);
        const entry = verified.targets[MOVED_TARGET_PATH]!;
        checkStagedMatches(staged, entry, MOVED_TARGET_PATH);
        const c = entry.custom.patchwire as Record<string, unknown> | undefined;
        if (!c || c.kind !== 'moved' || c.product !== product || c.url !== parsed.url) {
          throw new ApiError('PW_BAD_METADATA', `the signed target's custom.patchwire must be {kind:'moved', product:'${product}', url:'${parsed.url}'}`);
        }
        const record: MovedRecord = { product, url: parsed.url, target: MOVED_TARGET_PATH, sha256: entry.sha256, setAt: this.now() };
        const metadata = [
          { product, role: 'targets' as const, version: verified.version, json: verified.json, expiresAt: verified.expires },
          ...(await this.tuf.signFor(product, verified)),
        ];
        await commitWithArtifact(this.artifacts, staged, () => this.store.setMoved(record, metadata));
        this.current.set(product, record);
        this.releases.addHash(product, entry.sha256, 'notice');
        this.changes.changed(product, 'moved');
        return record;
      });
    } finally {
      await staged.discard().catch(() => {});
    }
  }
}

function parseNotice(text: string, product: string): MovedNotice {
  let n: Partial<MovedNotice>;
  try {
    n = JSON.parse(text) as Partial<MovedNotice>;
  } catch {
    throw new ApiError('PW_BAD_REQUEST', 'the moved notice is not JSON; send {product, url, issuedAt} as made by `patchwire move`');
  }
  if (n?.product !== product || typeof n.url !== 'string' || !parseHttpUrl(n.url).ok || typeof n.issuedAt !== 'string') {
    throw new ApiError('PW_BAD_REQUEST', `the moved notice must be {product:'${product}', url:'http(s)://...', issuedAt}`);
  }
  return n as MovedNotice;
}

