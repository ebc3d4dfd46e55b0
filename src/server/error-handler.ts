import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ApiError } from './api-error.js';
import type { ErrorBody } from '../protocol/wire.js';
import { ArtifactNotFoundError, ArtifactTooLargeError } from '../artifacts/errors.js';
import { addressKey } from './auth-failures.js';
import { RateLimiter } from './rate-limit.js';

function body(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** Maps fastify's own coded errors (bad JSON, schema validation, size limits) to ours. */
function fromFastify(err: FastifyError): ErrorBody | undefined {
  if (err.validation) {
    return body(400, 'PW_BAD_REQUEST', `invalid request ${err.validationContext ?? 'body'}: ${err.message}; see docs/protocol.md`);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return body(400, 'PW_BAD_REQUEST', `the body is not valid JSON (${err.message}); send a JSON object`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return body(415, 'PW_BAD_REQUEST', `${err.message}; send Content-Type: application/json (multipart/form-data for uploads)`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return body(413, 'PW_PAYLOAD_TOO_LARGE', `${err.message}; send a smaller body`);
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return body(400, 'PW_BAD_REQUEST', 'the request is not multipart/form-data; send fields `metadata` then `archive`');
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return body(err.statusCode, 'PW_BAD_REQUEST', err.message);
  }
  return undefined;
}

/** One error handler for every route: coded errors as-is, unknown errors as a bare 500. */
export function installErrorHandler(app: FastifyInstance): void {
  // A flood of forged device tokens must not flood the log: one line per source address a minute.
  const refusedLog = new RateLimiter({ limit: 1, windowMs: 60_000 });
  app.setErrorHandler((err: FastifyError, req, reply) => {
    let out: ErrorBody | undefined;
    if (err instanceof ApiError) out = body(err.statusCode, err.code, err.message);
    else if (err instanceof ArtifactTooLargeError) out = body(413, 'PW_PAYLOAD_TOO_LARGE', `${err.message}; raise --max-upload on the server or send a smaller file`);
    // A target whose bytes went missing after it was looked up (stat, then read).
    else if (err instanceof ArtifactNotFoundError) out = body(404, 'PW_NOT_FOUND', `the bytes of target ${err.sha256} are missing on this server`);
    else out = fromFastify(err);
    if (!out) {
      req.log.error({ err }, 'unhandled error');
      out = body(500, 'PW_INTERNAL', 'internal server error; the server log has the details');
    } else if (out.statusCode === 401 && !(err instanceof ApiError && err.logged) && refusedLog.take(addressKey(req.ip)).ok) {
      req.log.warn({ url: req.url, method: req.method, address: req.ip }, `refused request: ${out.message} (further refusals from this address within a minute are not logged)`);
    }
    if (err instanceof ApiError && err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(err.retryAfterSeconds));
    if (err instanceof ApiError && err.headers) void reply.headers(err.headers);
    void reply.code(out.statusCode).type('application/json').send(out);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(body(404, 'PW_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}; see docs/protocol.md`));
  });
}
