import type { ReportRecord } from '../../store/store.js';

/** One entry of a device's report history (admin API). */
export function toReportView(r: ReportRecord) {
  return { ...r, at: r.at.toISOString() };
}
