import type { Store } from '../../store/store.js';
import type { Clock } from '../clock.js';

/** How often the fleet is counted per version, and for how long the counts are kept. */
export interface FleetHistoryOptions { intervalMs: number; retentionDays: number; maxRows: number }

export const FLEET_HISTORY_DEFAULTS: FleetHistoryOptions = { intervalMs: 15 * 60_000, retentionDays: 30, maxRows: 50_000 };

/** GET /v1/admin/fleet/history: devices per applied version at each snapshot, oldest first. */
export interface FleetHistoryView {
  product: string | null;
  intervalSeconds: number;
  points: Array<{ at: string; versions: Record<string, number> }>;
}

/**
 * The dashboard's chart over time: every `intervalMs` one process of the database stores the
 * fleet's devices per product, channel and version (one grouped count, as `status` reads) and
 * deletes snapshots older than the retention. Bounded: retention / interval snapshots (2,880 by
 * default) and at most `maxRows` rows per read.
 */
export class FleetHistory {
  readonly o: FleetHistoryOptions;

  constructor(private readonly store: Store, private readonly now: Clock, o: Partial<FleetHistoryOptions> = {}) {
    this.o = { ...FLEET_HISTORY_DEFAULTS, ...o };
  }

  /**
   * Takes a snapshot unless one was taken within the last interval (by this or another process:
   * several processes on one database take one between them). True when it took one.
   */
  async snapshot(): Promise<boolean> {
    const now = this.now();
    const latest = await this.store.latestVersionSnapshotAt();
    // 90%: a process whose timer fires a little early still takes its turn.
    if (latest && now.getTime() - latest.getTime() < this.o.intervalMs * 0.9) return false;
    const counts = await this.store.countChannelVersions();
    await this.store.addVersionSnapshot(now, counts, new Date(now.getTime() - this.o.retentionDays * 86_400_000));
    return true;
  }

  /** Devices per version (summed over channels) at each snapshot of the last `days` days. */
  async history(product: string | undefined, days: number): Promise<FleetHistoryView> {
    const since = new Date(this.now().getTime() - days * 86_400_000);
    const rows = await this.store.listVersionSnapshots({ product, since }, this.o.maxRows);
    const points: FleetHistoryView['points'] = [];
    let last: { at: string; versions: Record<string, number> } | undefined;
    for (const r of rows) {
      const at = r.at.toISOString();
      if (last?.at !== at) points.push((last = { at, versions: {} }));
      const v = r.version ?? 'none';
      last.versions[v] = (last.versions[v] ?? 0) + r.devices;
    }
    return { product: product ?? null, intervalSeconds: this.o.intervalMs / 1000, points };
  }
}
