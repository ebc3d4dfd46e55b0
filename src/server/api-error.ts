import { ERRORS, type ErrorCode } from '../protocol/errors.js';

/**
 * A coded error the error handler turns into `{ statusCode, code, error, message }`. The message
 * says what was wrong and what to do; it is shown to the caller, so it never holds internals.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly statusCode: number;
  /** Sent as a Retry-After header (PW_RATE_LIMITED). */
  readonly retryAfterSeconds?: number;
  /** Response headers to send with the error (e.g. Retry-After with a 429). */
  readonly headers?: Record<string, string>;
  /** Whoever threw it logged it already (e.g. once per window), so the error handler does not. */
  logged = false;
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number; headers?: Record<string, string> }) {
    super(message, options);
    this.statusCode = ERRORS[code].status;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options?.headers) this.headers = options.headers;
  }
}
