import type { Sighting, Store } from '../../store/store.js';

/**
 * Collects last-seen sightings from the check path in memory and writes them in one transaction
 * per interval (or when the batch is full), so a check never waits on a disk write. Only the
 * newest sighting per device is kept. Admin reads call flush() first so they see every check.
 */
export class SightingBatcher {
  private pending = new Map<string, Sighting>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly opts: { intervalMs: number; maxBatch: number; onError: (err: unknown) => void },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.opts.intervalMs);
    this.timer.unref();
  }

  add(s: Sighting): void {
    this.pending.set(`${s.product}\u0000${s.deviceId}`, s);
    if (this.pending.size >= this.opts.maxBatch) void this.flush();
  }

  /** Writes everything pending; resolves when it is on disk. A failed batch is kept for the next try. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        await this.store.recordSightings([...batch.values()]);
      } catch (err) {
        // Put the batch back unless newer sightings of the same devices arrived meanwhile.
        for (const [k, v] of batch) if (!this.pending.has(k)) this.pending.set(k, v);
        this.opts.onError(err);
      }
    });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
