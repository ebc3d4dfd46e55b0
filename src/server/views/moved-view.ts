import type { MovedRecord } from '../../store/store.js';
import type { CheckResponse, MirrorCatalog } from '../../protocol/wire.js';

/** The answer to setting a moved notice. */
export function toMovedView(m: MovedRecord) {
  return { product: m.product, url: m.url, target: m.target };
}

/** The moved notice in a check answer (the agent verifies the target through TUF). */
export function toMovedInfo(m: MovedRecord): NonNullable<CheckResponse['moved']> {
  return { url: m.url, target: m.target };
}

/** The moved notice in the mirror catalog. */
export function toCatalogMoved(m: MovedRecord): NonNullable<MirrorCatalog['products'][number]['moved']> {
  return { url: m.url, target: m.target, sha256: m.sha256, setAt: m.setAt.toISOString() };
}
