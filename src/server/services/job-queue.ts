/**
 * Background jobs run one at a time, in order, with a bounded number waiting: beyond `max` the
 * oldest waiting job is dropped (handed to `onDrop`), since a newer one supersedes it. `close()`
 * drops the waiting jobs, aborts the running one's signal and waits for it to end, so a shutdown
 * never waits for background work.
 */
export class JobQueue<T> {
  private waiting: T[] = [];
  private running: Promise<void> | null = null;
  private current: AbortController | null = null;
  private closed = false;

  constructor(
    private readonly max: number,
    private readonly run: (job: T, signal: AbortSignal) => Promise<void>,
    private readonly onDrop: (job: T) => void,
  ) {}

  push(job: T): void {
    if (this.closed) return;
    if (this.waiting.length >= this.max) this.onDrop(this.waiting.shift()!);
    this.waiting.push(job);
    this.running ??= this.drain();
  }

  /** Resolves when nothing runs or waits (tests). */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** Drops what waits, aborts what runs (`reason`), and resolves once it has ended. */
  async close(reason: string): Promise<void> {
    this.closed = true;
    this.waiting = [];
    this.current?.abort(reason);
    await this.running;
  }

  private async drain(): Promise<void> {
    // No await between the emptiness check and `running = null`, so a push never finds a queue
    // that is about to stop.
    while (!this.closed && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.current = new AbortController();
      try {
        await this.run(job, this.current.signal);
      } catch {
        // `run` reports its own errors; one failed job does not stop the queue.
      }
      this.current = null;
    }
    this.running = null;
  }
}
