import type { DeltaRecord } from '../../store/store.js';
import type { DeltaSync, ReleaseOffer } from '../../protocol/wire.js';

/** A delta as a check answer offers it. */
export function toDeltaOffer(d: DeltaRecord): NonNullable<ReleaseOffer['delta']> {
  return { from: d.fromVersion, target: d.target, length: d.length, sha256: d.sha256 };
}

/** A delta as the mirror catalog lists it (issue 13). */
export function toDeltaSync(d: DeltaRecord): DeltaSync {
  return {
    channel: d.channel, from: d.fromVersion, to: d.toVersion, target: d.target, sha256: d.sha256, length: d.length,
    engine: d.engine, createdAt: d.createdAt.toISOString(), failed: d.failed,
  };
}
