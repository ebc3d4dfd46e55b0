import type { Store } from '../../store/store.js';
import type { ScheduleSync } from '../../protocol/wire.js';

/**
 * Stores schedules handed down by the primary (catalog or reconcile push) as they are: a mirror
 * does not judge them (one already past is the primary's alarm). Returns true when any changed.
 */
export async function applySchedules(store: Store, list: ScheduleSync[]): Promise<boolean> {
  let changed = false;
  for (const s of list) {
    const cur = await store.getSchedule(s.product, s.channel);
    if (cur && cur.at.toISOString() === s.at && cur.setAt.toISOString() === s.setAt && cur.spreadSeconds === s.spreadSeconds) continue;
    if (!(await store.getProduct(s.product))) continue;
    await store.setSchedule({ product: s.product, channel: s.channel, at: new Date(s.at), spreadSeconds: s.spreadSeconds, setAt: new Date(s.setAt) });
    changed = true;
  }
  return changed;
}
