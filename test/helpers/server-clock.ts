import { rename, writeFile } from 'node:fs/promises';

/**
 * The test side of the server's clock hook (src/cli/test-clock.ts): a file holding how many
 * milliseconds a `patchwire serve` process runs ahead of the system clock. Moving the server past
 * a scheduled time is then a file write, not a wait. The offset only grows: the server's time
 * never runs backwards.
 */
export class ServerClock {
  private offsetMs = 0;

  constructor(readonly file: string) {}

  /** The environment that makes `patchwire serve` read this clock. */
  get env(): Record<string, string> {
    return { PATCHWIRE_ENABLE_FAULTS: '1', PATCHWIRE_CLOCK_FILE: this.file };
  }

  /** The server's time now, in milliseconds. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Moves the server's time to `ms` after `t` (if it is not there yet). */
  async passTime(t: Date, ms: number): Promise<void> {
    const offset = t.getTime() + ms - Date.now();
    if (offset <= this.offsetMs) return;
    this.offsetMs = offset;
    // Written whole, then renamed into place: the server never reads half a number.
    await writeFile(`${this.file}.tmp`, String(offset));
    await rename(`${this.file}.tmp`, this.file);
  }
}
