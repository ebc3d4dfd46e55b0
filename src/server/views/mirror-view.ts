import type { MirrorRecord } from '../../store/store.js';
import type { MirrorView } from '../../protocol/wire.js';

/** A mirror in `status --json` (its cursors stay inside the server). */
export function toMirrorView(m: MirrorRecord): MirrorView {
  return {
    url: m.url,
    announcedAt: m.announcedAt.toISOString(),
    lastSyncAt: m.lastSyncAt?.toISOString() ?? null,
    pulled: m.pulled,
    pushed: m.pushed,
    error: m.error,
  };
}
