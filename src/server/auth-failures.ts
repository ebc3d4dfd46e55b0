import type { FastifyRequest } from 'fastify';
import { ApiError } from './api-error.js';
import { RateLimiter } from './rate-limit.js';

/** Wrong admin, mirror or metrics tokens one address may send per window before it is refused (docs/security.md). */
export const AUTH_FAILURE_DEFAULTS = { limit: 10, windowMs: 60_000 } as const;

/**
 * Wrong tokens per source address, shared by the admin, mirror and metrics surfaces. Only failures count,
 * so an operator's own requests never use up the allowance. Once an address has sent `limit` wrong
 * tokens in a window, EVERY token request from it is refused with 429 until the window ends, the
 * right token too: were the right one let through, 200 against 429 would tell a guesser which
 * guess was right, and the limit would not slow guessing at all. Other addresses are not
 * affected. Logged at most twice per address and window: its first wrong token, and the block.
 */
export class AuthFailures {
  private readonly failures: RateLimiter;
  private readonly logged: RateLimiter;

  constructor(opts: { limit?: number; windowMs?: number; now?: () => number } = {}) {
    const windowMs = opts.windowMs ?? AUTH_FAILURE_DEFAULTS.windowMs;
    this.failures = new RateLimiter({ limit: opts.limit ?? AUTH_FAILURE_DEFAULTS.limit, windowMs, now: opts.now });
    // "Log once per window" is a limit of one log line per address and window.
    this.logged = new RateLimiter({ limit: 1, windowMs, now: opts.now });
  }

  /** Throws 429 when the request's address is blocked; call before looking at the token. */
  checkBlocked(req: FastifyRequest): void {
    const key = addressKey(req.ip);
    if (!this.failures.blocked(key)) return;
    const d = this.failures.take(key);
    throw d.ok ? limited(1) : this.refused(req, key, d.retryAfterSeconds, d.firstRefusal);
  }

  /** The 429 of a blocked address; the first one of a window is logged. */
  private refused(req: FastifyRequest, key: string, retryAfterSeconds: number, first: boolean): ApiError {
    if (first) req.log.warn({ address: key, url: req.url }, `too many wrong tokens from ${key}: every admin, mirror and metrics token request from it is refused for ${retryAfterSeconds} s`);
    return limited(retryAfterSeconds);
  }

  /** A request with no token: not a guess, so not counted; logged once per address and window. */
  missing(req: FastifyRequest, error: ApiError): ApiError {
    const key = addressKey(req.ip);
    if (this.logged.take(key).ok) req.log.warn({ address: key, url: req.url, method: req.method }, `refused request: ${error.message} (from ${key}; logged once per window)`);
    error.logged = true;
    return error;
  }

  /** Counts a wrong token; returns the 401 to throw, or throws 429 when this one reaches the limit. */
  failed(req: FastifyRequest, error: ApiError, which: string): ApiError {
    const key = addressKey(req.ip);
    const d = this.failures.take(key);
    if (!d.ok) throw this.refused(req, key, d.retryAfterSeconds, d.firstRefusal);
    if (this.logged.take(key).ok) {
      req.log.warn({ address: key, url: req.url, method: req.method }, `refused request: wrong ${which} token from ${key} (further failures from it in this window are counted, not logged)`);
    }
    error.logged = true;
    return error;
  }
}

function limited(retryAfterSeconds: number): ApiError {
  const e = new ApiError('PW_RATE_LIMITED', `too many wrong tokens from this address: wait ${retryAfterSeconds} s (Retry-After), then use the right token`, { retryAfterSeconds });
  e.logged = true;
  return e;
}

/**
 * The key an address is counted under: an IPv4 address as is, an IPv6 one by its /64 (one host
 * usually holds a whole /64, so counting single addresses would not limit it).
 */
export function addressKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
