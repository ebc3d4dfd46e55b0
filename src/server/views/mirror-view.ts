import type { MirrorRecord } from '../../store/store.js';
import type { MirrorView } from '../../protocol/wire.js';

/** A mirror in `status --json` and `mirrors list --json` (its cursors stay inside the server). */
export function toMirrorView(m: MirrorRecord): MirrorView {
  return {
    url: m.url,
    state: m.state,
    announcedAt: m.announcedAt.toISOString(),
    approvedAt: m.approvedAt?.toISOString() ?? null,
    lastSyncAt: m.lastSyncAt?.toISOString() ?? null,
    pulled: m.pulled,
    pushed: m.pushed,
    error: m.error,
    skipped: m.skipped,
    skippedWhy: m.skippedWhy,
  };
}
