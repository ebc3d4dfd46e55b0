import type { DeltaRecord, ReleaseRecord } from '../../store/store.js';
import type { MirrorCatalog, ReleaseOffer } from '../../protocol/wire.js';
import { toDeltaOffer } from './delta-view.js';

/** A release in the admin product listing; `yankedAt` null while it is offered. */
export function toReleaseView(r: ReleaseRecord) {
  return {
    channel: r.channel, version: r.version, target: r.target, sha256: r.sha256, length: r.length, createdAt: r.createdAt.toISOString(),
    yankedAt: r.yankedAt?.toISOString() ?? null,
  };
}

/** `GET /v1/admin/products/:product/releases`: `latest` marks the release its channel offers. */
export function toReleaseListing(r: ReleaseRecord, latest: ReleaseRecord | undefined) {
  return { ...toReleaseView(r), latest: latest?.version === r.version };
}

/** The answer to a yank: the release and what its channel offers now. */
export function toYankView(r: ReleaseRecord, latest: ReleaseRecord | undefined) {
  return { product: r.product, channel: r.channel, version: r.version, yankedAt: r.yankedAt?.toISOString() ?? null, latest: latest?.version ?? null };
}

/** The answer to a publish. */
export function toPublishedView(r: ReleaseRecord) {
  return { product: r.product, channel: r.channel, version: r.version, target: r.target, sha256: r.sha256, length: r.length };
}

/** A release in the mirror catalog: all a mirror needs to store it. */
export function toCatalogRelease(r: ReleaseRecord): MirrorCatalog['products'][number]['releases'][number] {
  return {
    channel: r.channel, version: r.version, target: r.target, sha256: r.sha256, length: r.length, treeHash: r.treeHash, createdAt: r.createdAt.toISOString(),
    yankedAt: r.yankedAt?.toISOString() ?? null,
  };
}

/** The update offered in a check answer, with the delta from the device's version when there is one. */
export function toReleaseOffer(r: ReleaseRecord, delta: DeltaRecord | undefined): ReleaseOffer {
  return {
    version: r.version, target: r.target, length: r.length, sha256: r.sha256,
    kind: delta ? 'delta' : 'full',
    delta: delta ? toDeltaOffer(delta) : null,
  };
}
