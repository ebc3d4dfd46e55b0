import type { DeltaRecord } from '../../store/store.js';
import type { ReleaseOffer } from '../../protocol/wire.js';

/** A delta as a check answer offers it. */
export function toDeltaOffer(d: DeltaRecord): NonNullable<ReleaseOffer['delta']> {
  return { from: d.fromVersion, target: d.target, length: d.length, sha256: d.sha256 };
}
