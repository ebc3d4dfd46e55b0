import type { ScheduleRecord, Store } from '../../store/store.js';
import type { ScheduleSync } from '../../protocol/wire.js';
import { applySchedules } from '../mirror/schedule-sync.js';
import { isName } from '../../protocol/names.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { ProductService } from './products.js';
import type { CatalogChanges } from './catalog-sync.js';

/** The published time of the next planned release per product and channel. */
export class ScheduleService {
  private byKey = new Map<string, ScheduleRecord>();

  constructor(
    private readonly store: Store,
    private readonly products: ProductService,
    private readonly now: Clock,
    private readonly changes: CatalogChanges,
  ) {}

  async load(): Promise<void> {
    for (const s of await this.store.listSchedules()) this.byKey.set(`${s.product}\u0000${s.channel}`, s);
  }

  /** Reads one product's schedules again (another process set one). */
  async loadProduct(product: string): Promise<void> {
    for (const s of await this.store.listSchedules()) if (s.product === product) this.byKey.set(`${s.product}\u0000${s.channel}`, s);
  }

  get(product: string, channel: string): ScheduleRecord | undefined {
    return this.byKey.get(`${product}\u0000${channel}`);
  }

  all(): ScheduleRecord[] {
    return [...this.byKey.values()];
  }

  /** Stores schedules handed down by the primary (on a mirror) and refreshes this view. */
  async replicate(list: ScheduleSync[]): Promise<boolean> {
    const changed = await applySchedules(this.store, list);
    if (changed) await this.load();
    return changed;
  }

  /** Sets the schedule; a time in the past is refused (it would raise an alarm at once). */
  async set(product: string, channel: string, at: Date, spreadSeconds: number): Promise<ScheduleRecord> {
    this.products.require(product);
    if (!isName(channel)) throw new ApiError('PW_BAD_REQUEST', `invalid channel '${channel}'`);
    const now = this.now();
    if (at.getTime() <= now.getTime()) {
      throw new ApiError('PW_BAD_REQUEST', `the scheduled time ${at.toISOString()} is not in the future (now ${now.toISOString()}); give a later --at`);
    }
    const record: ScheduleRecord = { product, channel, at, spreadSeconds, setAt: now };
    await this.products.exclusive(product, () => this.store.setSchedule(record));
    this.byKey.set(`${product}\u0000${channel}`, record);
    this.changes.changed(product, 'schedule');
    return record;
  }
}
