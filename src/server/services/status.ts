import type { Store } from '../../store/store.js';
import type { AlarmView, StatusView } from '../../protocol/wire.js';
import type { Clock } from '../clock.js';
import type { ReleaseService } from './releases.js';
import type { ScheduleService } from './schedules.js';
import type { SightingBatcher } from './sighting-batcher.js';
import { toMirrorView } from '../views/mirror-view.js';

/**
 * The fleet summary and its alarms. `schedule-overdue`: the scheduled time passed and no release
 * of that product/channel was published since the schedule was set.
 */
export class StatusService {
  private raised = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly releases: ReleaseService,
    private readonly schedules: ScheduleService,
    private readonly sightings: SightingBatcher,
    private readonly now: Clock,
    private readonly warn: (msg: string, alarm: AlarmView) => void,
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
    const [devices, versions] = await Promise.all([this.store.countDevices(filter), this.store.countVersions(filter)]);
    const mirrors = (await this.store.listMirrors()).map(toMirrorView);
    return { devices, versions, mirrors, alarms: this.alarms() };
  }
}
