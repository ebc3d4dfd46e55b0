import type { ScheduleRecord } from '../../store/store.js';
import type { ScheduleInfo, ScheduleSync } from '../../protocol/wire.js';

/** The answer to setting a schedule. */
export function toScheduleView(s: ScheduleRecord) {
  return { product: s.product, channel: s.channel, at: s.at.toISOString(), spreadSeconds: s.spreadSeconds };
}

/** The schedule in a check answer. */
export function toScheduleInfo(s: ScheduleRecord): ScheduleInfo {
  return { at: s.at.toISOString(), spreadSeconds: s.spreadSeconds };
}

/** A schedule as the primary hands it to its mirrors (catalog and reconcile push). */
export function toScheduleSync(s: ScheduleRecord): ScheduleSync {
  return { product: s.product, channel: s.channel, at: s.at.toISOString(), spreadSeconds: s.spreadSeconds, setAt: s.setAt.toISOString() };
}
