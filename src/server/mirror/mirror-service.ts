import type { MirrorState, Store } from '../../store/store.js';
import { InvalidCursorError } from '../../store/errors.js';
import { COMPACT_FORMAT, type CompactDeviceSyncPage, type MirrorCatalog, type MirrorView } from '../../protocol/wire.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { ProductService } from '../services/products.js';
import type { SightingBatcher } from '../services/sighting-batcher.js';
import type { TufMetadataService } from '../services/tuf-metadata.js';
import { toCompactSync, toDeviceSync } from '../views/device-view.js';
import type { MirrorIdentity } from './mirror-identity.js';
import { toMirrorView } from '../views/mirror-view.js';
import { buildCatalog } from './catalog.js';
import type { DeviceSyncPage } from './device-sync.js';
import { RecordRules, SkipTally } from './record-rules.js';

/**
 * This server's half of the mirror surface (routes/mirror-api.ts): what a primary answers its
 * mirrors (announce, catalog) and what both answer each other (device change pages, merges).
 */
export class MirrorService {
  constructor(
    private readonly store: Store,
    private readonly products: ProductService,
    private readonly tuf: TufMetadataService,
    private readonly sightings: SightingBatcher,
    private readonly now: Clock,
    private readonly identities: MirrorIdentity,
    /** `serve --mirror-allow`: normalised mirror URLs approved when they announce. */
    private readonly allow: ReadonlySet<string> = new Set(),
  ) {}

  /**
   * A mirror says where devices reach it; `storeId` tells when its store was replaced. A new
   * mirror is pending (never contacted) until the operator approves it, unless its URL is on
   * `--mirror-allow` (`allow`: normalised URLs), which approves it now.
   */
  async announce(url: string, storeId?: string): Promise<MirrorState> {
    const now = this.now();
    const state = await this.store.upsertMirror(url, now, storeId);
    if (state === 'pending' && this.allow.has(url) && (await this.store.approveMirror(url, now))) return 'approved';
    return state;
  }

  /** `patchwire mirrors approve`: the primary consolidates it from the next run on. */
  async approve(url: string): Promise<MirrorView> {
    if (!(await this.store.approveMirror(url, this.now()))) {
      throw new ApiError('PW_UNKNOWN_MIRROR', `no mirror ${url} has announced itself here; start it with --public-url ${url} (\`patchwire mirrors list\` shows the URLs announced), or list it in \`serve --mirror-allow\``);
    }
    return toMirrorView((await this.store.listMirrors()).find((m) => m.url === url)!);
  }

  /** The mirrors that announced themselves (`patchwire mirrors list`). */
  async list(): Promise<MirrorView[]> {
    return (await this.store.listMirrors()).map(toMirrorView);
  }

  /**
   * Forgets a mirror (`patchwire mirrors remove`): it is no longer consolidated. A mirror that is
   * still running announces itself on its next replication pass and comes back as pending
   * (approved at once only when it is on `--mirror-allow`), synced anew from the start.
   */
  async remove(url: string): Promise<void> {
    if (!(await this.store.removeMirror(url))) {
      throw new ApiError('PW_UNKNOWN_MIRROR', `no mirror ${url} is known here; \`patchwire mirrors list\` shows the URLs mirrors announced`);
    }
  }

  async catalog(): Promise<MirrorCatalog> {
    // Mirrors copy the timestamp the catalog names: make sure it is a fresh one (a primary re-signs
    // at half its lifetime; a mirror's refresh is a no-op, it never signs).
    for (const p of this.products.list()) await this.tuf.refresh(p);
    return buildCatalog(this.store);
  }

  /**
   * One page of this store's device changes after `after` (a cursor this server handed out), in
   * format 1 (objects) or, `compact`, format 2 (arrays: wire.ts CompactDeviceSyncPage).
   */
  async changes(after: string | null, limit: number, compact = false): Promise<DeviceSyncPage | CompactDeviceSyncPage> {
    await this.sightings.flush();
    try {
      // The page's bindings come with it (one read, Store.listDeviceChanges `bindings`).
      const { devices, next, bindings } = await this.store.listDeviceChanges(after, limit);
      if (compact) return { format: COMPACT_FORMAT, records: devices.map((d, i) => toCompactSync(d, bindings[i])), next };
      return { records: devices.map((d, i) => toDeviceSync(d, bindings[i])), next };
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new ApiError('PW_BAD_REQUEST', `${err.message}; start over without \`after\``, { cause: err });
      throw err;
    }
  }

  /**
   * Merges records another server sent. Each is validated (record-rules.ts); an invalid one is
   * skipped and counted, never merged. `fromUpstream`: the primary pushed them (it holds them
   * already, see Store.mergeDevices; only their form is judged, as this mirror may lag behind its
   * primary's products and releases), and the
   * identities it carries are applied (mirror-identity.ts); otherwise the identity rule of a pull
   * decides which records are merged. `compact`: the records are of format 2 (arrays, wire.ts
   * CompactDeviceSync), with the same checks. Returns how many records changed, and the skipped ones.
   */
  async merge(raw: unknown[], fromUpstream: boolean, compact = false): Promise<{ merged: number; skipped: number; skippedWhy: string | null }> {
    const tally = new SkipTally();
    const rules = await RecordRules.load(this.store, { releases: !fromUpstream });
    const synced = rules.sort(raw, this.now(), tally, compact);
    await this.sightings.flush();
    // The primary's push carries its bindings (its word); anything else pushed here passes the
    // primary's identity rule, as a pull does.
    let records;
    if (fromUpstream) {
      await this.identities.apply(synced);
      records = synced.map((s) => s.record);
    } else {
      records = await this.identities.admit(synced, 'a peer that posted records', tally);
    }
    const merged = records.length ? (await this.store.mergeDevices(records, { fromUpstream })).length : 0;
    return { merged, skipped: tally.count, skippedWhy: tally.summary() };
  }
}
