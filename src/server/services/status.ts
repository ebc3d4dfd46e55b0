import type { Store } from '../../store/store.js';
import type { AlarmView, ChannelStatusView, ProductStatusView, StatusView } from '../../protocol/wire.js';
import type { Clock } from '../clock.js';
import type { ReleaseService } from './releases.js';
import type { ScheduleService } from './schedules.js';
import type { SightingBatcher } from './sighting-batcher.js';
import { toMirrorView } from '../views/mirror-view.js';
import { RuntimeStats } from './runtime-stats.js';

/**
 * The fleet summary and its alarms. `schedule-overdue`: the scheduled time passed and no release
 * of that product/channel was published since the schedule was set. `identity-conflict`: a known MAC
 * presented a different key (device-identity.ts), listed until accepted or rejected.
 */
export class StatusService {
  private raised = new Set<string>();
  /** Event-loop delay and memory of this process (runtime-stats.ts). */
  readonly runtime = new RuntimeStats();

  constructor(
    private readonly store: Store,
    private readonly releases: ReleaseService,
    private readonly schedules: ScheduleService,
    private readonly sightings: SightingBatcher,
    private readonly now: Clock,
    private readonly warn: (msg: string, alarm: AlarmView) => void,
    private readonly identity?: { conflicts(product?: string): Promise<AlarmView[]> },
    private readonly rollouts?: { alarms(product?: string): Promise<AlarmView[]> },
  ) {}

  alarms(): AlarmView[] {
    const now = this.now().getTime();
    const out: AlarmView[] = [];
    for (const s of this.schedules.all()) {
      if (s.at.getTime() > now) continue;
      const latest = this.releases.latestOf(s.product, s.channel);
      if (latest && latest.createdAt.getTime() >= s.setAt.getTime()) continue;
      const alarm: AlarmView = { kind: 'schedule-overdue', product: s.product, channel: s.channel, scheduledAt: s.at.toISOString() };
      out.push(alarm);
      const key = `${s.product}/${s.channel}@${alarm.scheduledAt}`;
      if (!this.raised.has(key)) {
        this.raised.add(key);
        this.warn(`schedule-overdue: ${s.product}/${s.channel} was scheduled for ${alarm.scheduledAt} and nothing was released; publish, or set a new schedule with \`patchwire schedule\``, alarm);
      }
    }
    return out;
  }

  async status(product?: string): Promise<StatusView> {
    await this.sightings.flush();
    const filter = product ? { product } : {};
    const [devices, versions, products] = await Promise.all([this.store.countDevices(filter), this.store.countVersions(filter), this.byProduct(product)]);
    const mirrors = (await this.store.listMirrors()).map(toMirrorView);
    // Identity conflicts are raised (log, webhook) when they happen; listed here until resolved.
    const conflicts = this.identity ? await this.identity.conflicts(product) : [];
    // Halted rollouts: raised when they halt (rollouts.ts), listed until resumed or aborted.
    const halted = this.rollouts ? await this.rollouts.alarms(product) : [];
    return { devices, versions, products, mirrors, alarms: [...this.alarms(), ...conflicts, ...halted], runtime: this.runtime.total() };
  }

  /** Every product (or the one asked for) with each channel that has a release or a device. */
  private async byProduct(only?: string): Promise<ProductStatusView[]> {
    const counts = await this.store.countChannelVersions(only ? { product: only } : {});
    const names = only ? [only] : (await this.store.listProducts()).map((p) => p.name);
    return names.map((product) => {
      const channels = new Map<string, ChannelStatusView>();
      const channel = (name: string): ChannelStatusView => {
        let c = channels.get(name);
        if (!c) channels.set(name, (c = { channel: name, latest: this.releases.latestOf(product, name)?.version ?? null, devices: 0, versions: {} }));
        return c;
      };
      for (const name of this.releases.channelsOf(product)) channel(name);
      for (const row of counts) {
        if (row.product !== product) continue;
        const c = channel(row.channel);
        c.devices += row.devices;
        c.versions[row.version ?? 'none'] = row.devices;
      }
      const list = [...channels.values()].sort((a, b) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
      return { product, devices: list.reduce((n, c) => n + c.devices, 0), channels: list };
    });
  }
}
