import type { Store } from '../../store/store.js';
import type { MirrorCatalog } from '../../protocol/wire.js';
import { toCatalogProduct } from '../views/product-view.js';
import { toScheduleSync } from '../views/schedule-view.js';
import { toRolloutSync } from '../services/rollouts.js';
import { toDeltaSync } from '../views/delta-view.js';

/** What a mirror must hold to serve devices: every product's metadata versions, releases, deltas, moved notice, schedules. */
export async function buildCatalog(store: Store): Promise<MirrorCatalog> {
  const products: MirrorCatalog['products'] = [];
  for (const p of await store.listProducts()) {
    const [root, targets, snapshot, timestamp, deltas, releases, moved, deltaList] = await Promise.all([
      store.getMetadata(p.name, 'root'), store.getMetadata(p.name, 'targets'),
      store.getMetadata(p.name, 'snapshot'), store.getMetadata(p.name, 'timestamp'), store.getMetadata(p.name, 'deltas'),
      store.listReleases(p.name), store.getMoved(p.name), store.listDeltas(p.name),
    ]);
    const versions = {
      root: root?.version ?? 0, targets: targets?.version ?? 0, snapshot: snapshot?.version ?? 0, timestamp: timestamp?.version ?? 0,
      deltas: deltas?.version ?? 0,
    };
    products.push({ ...toCatalogProduct(p, versions, releases, moved), deltas: deltaList.map(toDeltaSync) });
  }
  const schedules = (await store.listSchedules()).map(toScheduleSync);
  const rollouts = (await store.listRollouts()).map(toRolloutSync);
  return { products, schedules, rollouts };
}
