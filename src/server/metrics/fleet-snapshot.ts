import type { ChannelVersionCount, MirrorRecord, Store } from '../../store/store.js';
import type { AlarmView } from '../../protocol/wire.js';

/** What the fleet gauges of GET /metrics show, read from the store at scrape time. */
export interface FleetFigures {
  /** Devices per product, channel and applied version (one grouped query). */
  devices: ChannelVersionCount[];
  mirrors: MirrorRecord[];
  /** Alarms open now, per kind (every known kind present, 0 when none). */
  alarms: Record<string, number>;
}

export interface FleetSources {
  store: Pick<Store, 'countChannelVersions' | 'listMirrors' | 'countIdentityConflicts'>;
  /** Writes the sightings batched in this process first, so devices seen a moment ago count. */
  flushSightings: () => Promise<void>;
  /** The alarms kept in memory (schedule-overdue); identity conflicts are counted in the store. */
  alarms: () => AlarmView[];
}

/** Alarm kinds listed even when none is open, so a dashboard reads 0 rather than "no data". */
export const ALARM_KINDS = ['schedule-overdue', 'identity-conflict'] as const;

/**
 * The store's figures for the fleet gauges, read at most once per `ttlMs`: a scrape of a
 * 100,000-device fleet costs one grouped count over the devices table (plus the mirrors and a
 * count of identity conflicts, both small), and several scrapers or gauges within the window
 * share it. Concurrent scrapes wait for the same read; a failed read is not kept.
 */
export class FleetSnapshot {
  private cached: { at: number; figures: Promise<FleetFigures> } | undefined;

  constructor(
    private readonly sources: FleetSources,
    private readonly ttlMs: number,
    /** Monotonic milliseconds (performance.now by default), so the cache does not follow wall-clock jumps. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** How many times the store was read (a test of the cache counts them). */
  reads = 0;

  get(): Promise<FleetFigures> {
    const now = this.now();
    if (this.cached && now - this.cached.at < this.ttlMs) return this.cached.figures;
    const figures = this.read();
    const entry = { at: now, figures };
    this.cached = entry;
    figures.catch(() => { if (this.cached === entry) this.cached = undefined; });
    return figures;
  }

  private async read(): Promise<FleetFigures> {
    this.reads++;
    const { store } = this.sources;
    await this.sources.flushSightings();
    const [devices, mirrors, conflicts] = await Promise.all([store.countChannelVersions(), store.listMirrors(), store.countIdentityConflicts()]);
    const alarms: Record<string, number> = Object.fromEntries(ALARM_KINDS.map((k) => [k, 0]));
    for (const a of this.sources.alarms()) alarms[a.kind] = (alarms[a.kind] ?? 0) + 1;
    alarms['identity-conflict'] = conflicts;
    return { devices, mirrors, alarms };
  }
}
