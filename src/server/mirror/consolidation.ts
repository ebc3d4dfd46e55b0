import type { MirrorRecord, Store } from '../../store/store.js';
import type { DeviceSync, ReconcileView } from '../../protocol/wire.js';
import type { Clock } from '../clock.js';
import { fromSync, toSync } from './device-sync.js';
import { peerJson } from './peer-client.js';
import { toScheduleSync } from './schedule-sync.js';
import type { SightingBatcher } from '../services/sighting-batcher.js';
import type { StatusService } from '../services/status.js';

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
 * The primary's consolidation (DESIGN.md section 2): pull every mirror's changed device records
 * (by cursor), merge them (highest applied version wins, then latest report), raise overdue
 * alarms, then push every record changed since the mirror's last sync, and the schedules, back to
 * each mirror. A mirror that fails is recorded with its error and does not stop the others; the
 * next run catches it up from its cursors.
 */
export class Consolidation {
  private running: Promise<ReconcileView> | undefined;

  constructor(private readonly o: ConsolidationOptions) {}

  /** One run; a call during a run shares it. */
  reconcile(): Promise<ReconcileView> {
    this.running ??= this.run().finally(() => { this.running = undefined; });
    return this.running;
  }

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
        r.error = (err as Error).message;
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
          await peerJson(`${m.url}/v1/mirror/schedules`, { method: 'PUT', token: this.o.token, body: { schedules } });
        } catch (err) {
          r.error = (err as Error).message;
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

  /** Pulls the mirror's records changed since its cursor, page by page, merging each page. */
  private async pull(m: MirrorRecord): Promise<number> {
    let since = m.cursor;
    let after: DeviceSync | undefined;
    let pulled = 0;
    for (;;) {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (since) q.set('since', since.toISOString());
      if (after) {
        q.set('afterDevice', after.deviceId);
        q.set('afterProduct', after.product);
      }
      const page = await peerJson<DeviceSync[]>(`${m.url}/v1/mirror/devices?${q}`, { token: this.o.token });
      if (!Array.isArray(page)) throw new Error(`${m.url} answered a device page that is not an array`);
      const records = page.map((raw, i) => fromSync(raw, i));
      await this.o.store.mergeDevices(records);
      pulled += page.length;
      if (page.length > 0) {
        after = page[page.length - 1]!;
        since = new Date(after.updatedAt);
      }
      if (page.length < PAGE) {
        // Complete: every later change on the mirror gets a later updatedAt (its store never
        // stamps one at or below an existing one), so the next run starts just past this one.
        if (after) await this.o.store.updateMirror(m.url, { cursor: new Date(since!.getTime() + 1) });
        return pulled;
      }
      // Saved per page: a sync cut off half-way resumes here (`>=`: a repeat is harmless).
      await this.o.store.updateMirror(m.url, { cursor: since });
    }
  }

  /**
   * Pushes every record the primary changed since the mirror's push cursor, then moves the cursor
   * just past the newest record sent (later writes get later updatedAt values).
   */
  private async push(m: MirrorRecord): Promise<number> {
    const all = await this.o.store.listDevicesChangedSince(m.pushCursor, Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < all.length; i += PAGE) {
      const records = all.slice(i, i + PAGE).map(toSync);
      await peerJson(`${m.url}/v1/mirror/devices`, { method: 'POST', token: this.o.token, body: { records } });
    }
    if (all.length) await this.o.store.updateMirror(m.url, { pushCursor: new Date(all[all.length - 1]!.updatedAt.getTime() + 1) });
    return all.length;
  }
}
