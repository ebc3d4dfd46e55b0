import type { MovedRecord, ProductRecord, ReleaseRecord } from '../../store/store.js';
import type { MirrorCatalog } from '../../protocol/wire.js';
import { toCatalogMoved } from './moved-view.js';
import { toCatalogRelease, toReleaseView } from './release-view.js';

/** `GET /v1/admin/products/:product`: the signed targets as stored, the releases, the moved URL. */
export function toProductDetail(product: string, targetsJson: string, releases: ReleaseRecord[], moved: MovedRecord | undefined) {
  return {
    product,
    targets: JSON.parse(targetsJson) as unknown,
    releases: releases.map(toReleaseView),
    moved: moved?.url ?? null,
  };
}

/** A product in the mirror catalog; `metadata` holds the highest version of each role. */
export function toCatalogProduct(
  p: ProductRecord,
  metadata: MirrorCatalog['products'][number]['metadata'],
  releases: ReleaseRecord[],
  moved: MovedRecord | undefined,
): MirrorCatalog['products'][number] {
  return {
    name: p.name,
    createdAt: p.createdAt.toISOString(),
    metadata,
    releases: releases.map(toCatalogRelease),
    moved: moved ? toCatalogMoved(moved) : null,
    admission: p.admission ?? 'auto',
  };
}
