import type { Store } from '../../store/store.js';
import { InvalidCursorError } from '../../store/errors.js';
import type { MirrorCatalog, MirrorView } from '../../protocol/wire.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { ProductService } from '../services/products.js';
import type { SightingBatcher } from '../services/sighting-batcher.js';
import type { TufMetadataService } from '../services/tuf-metadata.js';
import { toDeviceSync } from '../views/device-view.js';
import { toMirrorView } from '../views/mirror-view.js';
import { buildCatalog } from './catalog.js';
import { fromSync, type DeviceSyncPage } from './device-sync.js';

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
  ) {}

  /** A mirror says where devices reach it; `storeId` tells when its store was replaced. */
  async announce(url: string, storeId?: string): Promise<void> {
    await this.store.upsertMirror(url, this.now(), storeId);
  }

  /** The mirrors that announced themselves (`patchwire mirrors list`). */
  async list(): Promise<MirrorView[]> {
    return (await this.store.listMirrors()).map(toMirrorView);
  }

  /**
   * Forgets a mirror (`patchwire mirrors remove`): it is no longer consolidated. A mirror that is
   * still running announces itself on its next replication pass and comes back, synced anew from
   * the start; stop it (or change the mirror token) to keep it out.
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

  /** One page of this store's device changes after `after` (a cursor this server handed out). */
  async changes(after: string | null, limit: number): Promise<DeviceSyncPage> {
    await this.sightings.flush();
    try {
      const { devices, next } = await this.store.listDeviceChanges(after, limit);
      return { records: devices.map(toDeviceSync), next };
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new ApiError('PW_BAD_REQUEST', `${err.message}; start over without \`after\``, { cause: err });
      throw err;
    }
  }

  /**
   * Merges records another server sent; every one is validated before any is merged, so a bad one
   * changes nothing. `fromUpstream`: the primary pushed them (it holds them already, see
   * Store.mergeDevices). Returns how many records changed.
   */
  async merge(raw: unknown[], fromUpstream: boolean): Promise<number> {
    const records = raw.map((r, i) => fromSync(r, i));
    await this.sightings.flush();
    return (await this.store.mergeDevices(records, { fromUpstream })).length;
  }
}
