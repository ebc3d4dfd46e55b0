/** Polls until the condition holds, instead of sleeping for a fixed time and hoping it does. */
export interface WaitOptions {
  /** What is awaited, for the failure message: "the mirror to replicate 1.0.0". */
  what: string;
  /** Give up after this many milliseconds (default 30 s). */
  timeout?: number;
  /** Pause between two tries (default 100 ms). */
  interval?: number;
  /** More context for the failure message (a server's output, say), read when the wait fails. */
  detail?: () => string;
}

/** The wait gave up; the message names what was awaited and the last error the condition threw. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
}

/**
 * Calls `fn` until it returns something other than undefined, null or false, and returns that.
 * A throw counts as "not yet" (a server still starting, a file not yet written); the last one is
 * named when the wait gives up.
 */
export async function waitFor<T>(fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, opts: WaitOptions): Promise<T> {
  const timeout = opts.timeout ?? 30_000;
  const until = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= until) {
      const because = last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : String(last)})`;
      const more = opts.detail ? `\n${opts.detail()}` : '';
      throw new WaitTimeoutError(`timed out after ${timeout} ms waiting for ${opts.what}${because}${more}`);
    }
    await new Promise((r) => setTimeout(r, opts.interval ?? 100));
  }
}

/** Waits until the system clock has passed `t` (an expiry: the condition is the time itself). */
export function waitUntilPast(t: Date | number, what: string): Promise<true> {
  const ms = typeof t === 'number' ? t : t.getTime();
  return waitFor(() => Date.now() > ms, { what, timeout: Math.max(0, ms - Date.now()) + 30_000, interval: 25 });
}
