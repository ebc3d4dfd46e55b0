import { randomBytes } from 'node:crypto';
import type { MetadataRecord, MetadataRole, Store } from '../../store/store.js';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import type { MirrorAnnounceAnswer, MirrorCatalog } from '../../protocol/wire.js';
import { metadataBaseUrl, metadataFileName, MIRROR_PREFIX, targetUrl } from '../../protocol/urls.js';
import { applySchedules } from './schedule-sync.js';
import { applyRollouts } from './rollout-sync.js';
import { peerJson, peerText } from './peer-client.js';
import { sharedRun } from './shared-run.js';
import { copyByHash, DeltaCopier } from './delta-replication.js';

const STORE_ID = 'mirror_store_id';
/** The catalog lists every release of every product: room for some 200,000. */
const CATALOG_MAX_BYTES = 64 * 1024 ** 2;

export interface ReplicatorOptions {
  store: Store;
  artifacts: ArtifactStore;
  /** The primary's URL. */
  upstream: string;
  token: string;
  /** This mirror's URL as devices reach it (announced to the primary). */
  publicUrl: () => string;
  /** Re-reads the services' in-memory views after new data arrived. */
  reload: () => Promise<void>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Copy the primary's deltas too (issue 13); off when this mirror offers none (`--delta-from 0`). */
  deltas?: boolean;
}

export interface ReplicationResult {
  products: number;
  releases: number;
  /** Releases the primary yanked since the last pass. */
  yanked: number;
  metadata: number;
  /** Products whose admission policy changed (the primary's, applied here). */
  admission: number;
  /** Deltas copied (issue 13), and deltas the primary withdrew that this mirror withdrew too. */
  deltas: number;
  deltasWithdrawn: number;
}

/**
 * The mirror's side of replication: announce itself to the primary, then copy what the primary's
 * catalog lists and this mirror lacks. Artifacts (and deltas, delta-replication.ts) are hashed
 * while staged and refused unless they match the catalog; metadata is kept as the exact bytes the
 * primary serves (devices verify it through TUF; a mirror never signs). Order: artifacts,
 * releases, root, targets, snapshot, and the timestamp last, so devices never see metadata naming
 * something the mirror does not hold; then
 * the deltas, which are offered only once stored (a device behind the mirror is offered a delta
 * only when the mirror holds it, and otherwise the full archive).
 */
export class Replicator {
  /** The state the primary answered to the last announce (a pending mirror is told once). */
  private announcedState: string | undefined;
  private readonly deltas: DeltaCopier | undefined;

  constructor(private readonly o: ReplicatorOptions) {
    this.deltas = o.deltas ? new DeltaCopier({ store: o.store, artifacts: o.artifacts, upstream: o.upstream, log: o.log }) : undefined;
  }

  /** One pass; concurrent callers share it. */
  readonly sync = sharedRun(() => this.syncOnce());

  /** A random identity of this mirror's store, made once and kept in its settings. */
  private async storeId(): Promise<string> {
    let id = await this.o.store.getSetting(STORE_ID);
    if (!id) {
      id = randomBytes(16).toString('hex');
      await this.o.store.setSetting(STORE_ID, id);
    }
    return id;
  }

  private url(path: string): string {
    return `${this.o.upstream}${path}`;
  }

  private async syncOnce(): Promise<ReplicationResult> {
    const { token } = this.o;
    // Announcing every pass is idempotent and re-registers the mirror if the primary forgot it; the
    // store id tells the primary when this mirror's store was replaced (it then re-syncs in full).
    const announced = await peerJson<Partial<MirrorAnnounceAnswer>>(this.url(`${MIRROR_PREFIX}/announce`), { method: 'POST', token, body: { url: this.o.publicUrl(), storeId: await this.storeId() } });
    if (announced?.state === 'pending' && this.announcedState !== 'pending') {
      this.o.log.warn({ primary: this.o.upstream }, `the primary has not approved this mirror yet: it replicates, but its devices are not consolidated until the operator runs \`patchwire mirrors approve ${this.o.publicUrl()}\` on the primary (or lists it in --mirror-allow)`);
    }
    this.announcedState = announced?.state;
    const catalog = await peerJson<MirrorCatalog>(this.url(`${MIRROR_PREFIX}/catalog`), { token, maxBytes: CATALOG_MAX_BYTES });
    const result: ReplicationResult = { products: 0, releases: 0, yanked: 0, metadata: 0, admission: 0, deltas: 0, deltasWithdrawn: 0 };
    this.deltas?.startPass();
    // Rollouts before releases: a staged release never reaches this mirror without its rollout
    // (it would go to every device here).
    const rolloutsChanged = await applyRollouts(this.o.store, catalog.rollouts ?? []);
    for (const p of catalog.products) await this.product(p, result);
    const schedulesChanged = await applySchedules(this.o.store, catalog.schedules);
    if (result.products || result.releases || result.yanked || result.metadata || result.admission || result.deltas || result.deltasWithdrawn || schedulesChanged || rolloutsChanged) {
      await this.o.reload();
      this.o.log.info({ ...result, schedulesChanged, rolloutsChanged }, 'replicated from the primary');
    }
    return result;
  }

  private async product(p: MirrorCatalog['products'][number], result: ReplicationResult): Promise<void> {
    const { store } = this.o;
    const known = await store.getProduct(p.name);
    const local = new Map((await store.listReleases(p.name)).map((r) => [`${r.channel}\u0000${r.version}`, r]));
    const missing = p.releases.filter((r) => !local.has(`${r.channel}\u0000${r.version}`));
    for (const r of missing) await this.artifact(p.name, r.target, r.sha256, r.length);
    const moved = await store.getMoved(p.name);
    const movedNew = p.moved && p.moved.sha256 !== moved?.sha256 ? p.moved : null;
    if (movedNew) await this.artifact(p.name, movedNew.target, movedNew.sha256, 4096, true);

    const roots = await this.metadata(p.name, 'root', p.metadata.root, true);
    // A mirror admits new devices as its primary does (an older primary sends no policy: auto).
    const admission = p.admission === 'approve' ? 'approve' : 'auto';
    if (!known) {
      await store.createProduct({ name: p.name, createdAt: new Date(p.createdAt), admission }, roots);
      result.products++;
    } else {
      if (roots.length) await store.putMetadata(roots);
      if ((known.admission ?? 'auto') !== admission) {
        await store.setAdmission(p.name, admission);
        result.admission++;
      }
    }
    result.metadata += roots.length;
    for (const { yankedAt: _, ...r } of missing) {
      await store.commitRelease({ product: p.name, ...r, createdAt: new Date(r.createdAt) }, []);
      result.releases++;
    }
    // A release the primary yanked is no longer offered here either (a yank is final, so only this way).
    for (const r of p.releases) {
      if (!r.yankedAt || local.get(`${r.channel}\u0000${r.version}`)?.yankedAt) continue;
      await store.yankRelease(p.name, r.channel, r.version, new Date(r.yankedAt));
      result.yanked++;
    }
    if (movedNew) await store.setMoved({ product: p.name, ...movedNew, setAt: new Date(movedNew.setAt) }, []);
    for (const role of ['targets', 'deltas', 'snapshot', 'timestamp'] as const) {
      const records = await this.metadata(p.name, role, p.metadata[role] ?? 0, false);
      if (records.length) await store.putMetadata(records);
      result.metadata += records.length;
    }
    // After the deltas role's metadata: a delta is copied only as that metadata lists it.
    if (this.deltas) {
      const d = await this.deltas.product(p.name, p.deltas);
      result.deltas += d.copied;
      result.deltasWithdrawn += d.withdrawn;
    }
  }

  /** Fetches the versions of `role` this mirror lacks: every one for root (the chain), else the newest. */
  private async metadata(product: string, role: MetadataRole, latest: number, chain: boolean): Promise<MetadataRecord[]> {
    const have = (await this.o.store.getMetadata(product, role))?.version ?? 0;
    if (latest <= have) return [];
    const versions = chain ? Array.from({ length: latest - have }, (_, i) => have + i + 1) : [latest];
    const out: MetadataRecord[] = [];
    for (const v of versions) {
      const json = await peerText(metadataBaseUrl(this.o.upstream, product) + metadataFileName(role, v));
      const signed = (JSON.parse(json) as { signed?: { _type?: string; version?: number; expires?: string } }).signed;
      // The delegated deltas role is targets metadata under another name.
      if (signed?._type !== (role === 'deltas' ? 'targets' : role) || signed.version !== v || !signed.expires) {
        throw new Error(`the primary's ${v}.${role}.json of ${product} is not ${role} version ${v}`);
      }
      out.push({ product, role, version: v, json, expiresAt: new Date(signed.expires) });
    }
    return out;
  }

  /** Copies one artifact by content hash; bytes that do not hash to `sha256` are refused, nothing kept. */
  private async artifact(product: string, target: string, sha256: string, length: number, atMost = false): Promise<void> {
    const { artifacts } = this.o;
    if (await artifacts.stat(sha256)) return;
    await copyByHash(artifacts, targetUrl(this.o.upstream, product, target, sha256), sha256, length, atMost);
  }
}
