import type { Sighting, Store } from '../../store/store.js';

const CHUNK = 500;
const key = (s: Sighting) => `${s.product}\u0000${s.deviceId}`;

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
    this.pending.set(key(s), s);
    if (this.pending.size >= this.opts.maxBatch) void this.flush();
  }

  /** Writes everything pending; resolves when it is on disk. A failed batch is kept for the next try. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      const all = [...batch.values()];
      // SQLite writes block the event loop; chunks with a yield between keep checks flowing
      // (one 5,000-row transaction held the loop for ~40 ms, bench/README.md).
      for (let i = 0; i < all.length; i += CHUNK) {
        const chunk = all.slice(i, i + CHUNK);
        try {
          await this.store.recordSightings(chunk);
        } catch (err) {
          // Put the rest back unless newer sightings of the same devices arrived meanwhile.
          for (const v of all.slice(i)) {
            const k = key(v);
            if (!this.pending.has(k)) this.pending.set(k, v);
          }
          this.opts.onError(err);
          return;
        }
        await new Promise<void>((r) => setImmediate(r));
      }
    });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
