/**
 * Fixed-window rate limits per key (a source address, usually), with a bounded memory: at most
 * `maxKeys` keys are tracked; when full, windows that have ended are dropped first, then the
 * oldest key. Used for enrolment (per source address) and admin-token failures (docs/security.md).
 */

export interface RateLimitOptions {
  /** Events allowed per key per window. */
  limit: number;
  windowMs: number;
  /** Keys tracked at once (default 10,000). */
  maxKeys?: number;
  now?: () => number;
}

export type RateDecision =
  | { ok: true }
  /** Refused: wait `retryAfterSeconds` (whole seconds, >= 1, for a Retry-After header). */
  | { ok: false; retryAfterSeconds: number; /** True for the first refusal of this key in this window: log it once. */ firstRefusal: boolean };

interface Window { start: number; count: number; refused: boolean }

export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(private readonly o: RateLimitOptions) {
    if (!(o.limit >= 1) || !(o.windowMs >= 1)) throw new Error('RateLimiter: limit and windowMs must be >= 1');
    this.maxKeys = o.maxKeys ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  /** Counts one event for `key` and says whether it is allowed. */
  take(key: string): RateDecision {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.o.windowMs) {
      if (w) this.windows.delete(key);
      else this.makeRoom(now);
      w = { start: now, count: 0, refused: false };
      this.windows.set(key, w);
    }
    if (w.count < this.o.limit) {
      w.count++;
      return { ok: true };
    }
    const firstRefusal = !w.refused;
    w.refused = true;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((w.start + this.o.windowMs - now) / 1000)), firstRefusal };
  }

  /** Whether `key` would be refused now, without counting an event. */
  blocked(key: string): boolean {
    const w = this.windows.get(key);
    return !!w && this.now() - w.start < this.o.windowMs && w.count >= this.o.limit;
  }

  /** Keys tracked now (for tests and /metrics). */
  get size(): number {
    return this.windows.size;
  }

  private makeRoom(now: number): void {
    if (this.windows.size < this.maxKeys) return;
    for (const [k, w] of this.windows) {
      if (now - w.start >= this.o.windowMs) this.windows.delete(k);
    }
    // Map iteration is insertion order: the first key is the oldest window.
    while (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value as string);
  }
}
