import type { MirrorRecord, Store } from '../../store/store.js';
import type { ReconcileView } from '../../protocol/wire.js';
import { MIRROR_PREFIX } from '../../protocol/urls.js';
import type { Clock } from '../clock.js';
import { fromSync, type DeviceSyncPage } from './device-sync.js';
import { toDeviceSync } from '../views/device-view.js';
import { peerJson } from './peer-client.js';
import { sharedRun } from './shared-run.js';
import { toScheduleSync } from '../views/schedule-view.js';
import type { SightingBatcher } from '../services/sighting-batcher.js';
import type { StatusService } from '../services/status.js';
import { errorText } from '../../util/error-text.js';

const PAGE = 5000;

export interface ConsolidationOptions {
  store: Store;
  sightings: SightingBatcher;
  status: StatusService;
  /** The mirror token, sent to mirrors on every call. */
  token: string;
  now: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * The primary's consolidation (docs/design.md section 2): pull every mirror's changed device records
 * (by cursor), merge them (highest applied version wins, then latest report), raise overdue
 * alarms, then push every record changed since the mirror's last sync, and the schedules, back to
 * each mirror. A mirror that fails is recorded with its error and does not stop the others; the
 * next run catches it up from its cursors.
 */
export class Consolidation {
  constructor(private readonly o: ConsolidationOptions) {}

  /** One run; a call during a run shares it. */
  readonly reconcile = sharedRun(() => this.run());

  private async run(): Promise<ReconcileView> {
    const { store } = this.o;
    const startedAt = this.o.now();
    await this.o.sightings.flush();
    const mirrors = await store.listMirrors();
    const results = new Map<string, { url: string; pulled: number; pushed: number; error?: string }>();
    for (const m of mirrors) {
      const r: { url: string; pulled: number; pushed: number; error?: string } = { url: m.url, pulled: 0, pushed: 0 };
      results.set(m.url, r);
      try {
        r.pulled = await this.pull(m);
      } catch (err) {
        r.error = errorText(err);
      }
    }
    // Step 3: alarms are judged on the merged view, before the schedules go out.
    this.o.status.alarms();
    const schedules = (await store.listSchedules()).map(toScheduleSync);
    for (const m of mirrors) {
      const r = results.get(m.url)!;
      if (!r.error) {
        try {
          r.pushed = await this.push(m);
          await peerJson(`${m.url}${MIRROR_PREFIX}/schedules`, { method: 'PUT', token: this.o.token, body: { schedules } });
        } catch (err) {
          r.error = errorText(err);
        }
      }
      if (r.error) {
        this.o.log.warn({ mirror: m.url, error: r.error }, 'mirror sync failed; the next run retries');
        await store.updateMirror(m.url, { lastAttemptAt: startedAt, error: r.error });
      } else {
        await store.updateMirror(m.url, { lastAttemptAt: startedAt, lastSyncAt: startedAt, pulled: r.pulled, pushed: r.pushed, error: null });
      }
    }
    return { mirrors: [...results.values()] };
  }

  /**
   * Pulls the mirror's records changed after its cursor, page by page, merging each page. The
   * cursor is the mirror's own (made by its store); it is kept and sent back unread.
   */
  private async pull(m: MirrorRecord): Promise<number> {
    let after = m.cursor;
    let pulled = 0;
    for (;;) {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (after !== null) q.set('after', after);
      const page = await peerJson<DeviceSyncPage>(`${m.url}${MIRROR_PREFIX}/devices?${q}`, { token: this.o.token });
      if (!page || !Array.isArray(page.records) || (page.next !== null && typeof page.next !== 'string')) {
        throw new Error(`${m.url} answered a device page that is not { records, next }`);
      }
      const records = page.records.map((raw, i) => fromSync(raw, i));
      await this.o.store.mergeDevices(records);
      pulled += records.length;
      // Saved per page: a sync cut off half-way resumes after the last page merged.
      if (page.next !== after) await this.o.store.updateMirror(m.url, { cursor: page.next });
      after = page.next;
      if (records.length < PAGE) return pulled;
    }
  }

  /**
   * Pushes every record the primary changed after the mirror's push cursor, a page at a time (one
   * read of the whole feed would hold the event loop: 100,000 rows take about a second), moving
   * the cursor past each page once the mirror has it.
   */
  private async push(m: MirrorRecord): Promise<number> {
    let after = m.pushCursor;
    let pushed = 0;
    for (;;) {
      const { devices, next } = await this.o.store.listDeviceChanges(after, PAGE);
      if (devices.length > 0) {
        await peerJson(`${m.url}${MIRROR_PREFIX}/devices`, { method: 'POST', token: this.o.token, body: { records: devices.map(toDeviceSync) } });
        pushed += devices.length;
      }
      if (next !== after) await this.o.store.updateMirror(m.url, { pushCursor: next });
      after = next;
      if (devices.length < PAGE) return pushed;
    }
  }
}
