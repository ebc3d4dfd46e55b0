import { ERRORS, type ErrorCode } from '../protocol/errors.js';

/**
 * A coded error the error handler turns into `{ statusCode, code, error, message }`. The message
 * says what was wrong and what to do; it is shown to the caller, so it never holds internals.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly statusCode: number;
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.statusCode = ERRORS[code].status;
  }
}
