import type { ReportRecord } from '../../store/store.js';
import type { HistoryEntry } from '../../protocol/wire.js';

/** One entry of a device's report history (admin API, GET .../reports: the stored report as it is). */
export function toReportView(r: ReportRecord) {
  return { ...r, at: r.at.toISOString() };
}

/**
 * A report as a history entry (docs/protocol.md, GET /v1/admin/products/:product/devices/:deviceId):
 * `version` is the release the update concerned, `fromVersion` the version the device ran when it
 * began. Reports of agents before issue 11 carry no toVersion: an applied report's release is the
 * version it applied, a rolled-back one's the version it left (its previousVersion); for the others
 * it is unknown (null).
 */
export function toHistoryEntry(r: ReportRecord): HistoryEntry {
  const release = r.toVersion ?? (r.event === 'applied' ? r.version : r.event === 'rolled-back' ? r.previousVersion : null);
  // An applied report's version is the new one (its previousVersion the old); every other
  // event leaves the device on the version it ran, which is its `version`.
  const from = r.event === 'applied' ? r.previousVersion : r.version;
  const failure = r.event === 'failed' || r.event === 'rolled-back' || r.event === 'delta-failed';
  return {
    at: r.at.toISOString(), event: r.event, version: release, fromVersion: from,
    state: r.state ?? null, error: failure ? r.detail : null,
  };
}
