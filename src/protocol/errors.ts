/**
 * The one table of coded errors (docs/errors.md lists each with what to do). The server's error
 * handler turns an ApiError into `{ statusCode, code, error, message }`.
 */
export const ERRORS = {
  PW_BAD_REQUEST: { status: 400, text: 'The request is malformed or a field is invalid.' },
  PW_UNAUTHORIZED: { status: 401, text: 'The admin token is missing or wrong.' },
  PW_METRICS_TOKEN: { status: 401, text: 'The metrics token (`serve --metrics-token`) is missing or wrong.' },
  PW_SESSION: { status: 401, text: 'The dashboard session cookie is missing, expired, signed out or not issued by this server.' },
  PW_CSRF: { status: 403, text: 'A change from the dashboard came without its CSRF header, or from another site\'s page.' },
  PW_DEVICE_TOKEN: { status: 401, text: 'The device token is missing, forged, expired or for another device.' },
  PW_DEVICE_AUTH: { status: 401, text: 'The device auth request is not signed by its key, or its time is off.' },
  PW_DEVICE_PENDING: { status: 403, text: 'The device (or its new key) waits for an operator to accept it.' },
  PW_DEVICE_REJECTED: { status: 403, text: 'An operator rejected the device.' },
  PW_DEVICE_LIMIT: { status: 403, text: 'The product has as many devices as the server allows.' },
  PW_KEY_MISMATCH: { status: 409, text: 'The key that `devices accept` would bind is not the one named with --key.' },
  PW_NOT_FOUND: { status: 404, text: 'No such route or resource.' },
  PW_UNKNOWN_PRODUCT: { status: 404, text: 'The product does not exist on this server.' },
  PW_UNKNOWN_CHANNEL: { status: 404, text: 'The product has no such channel (no release on it).' },
  PW_UNKNOWN_RELEASE: { status: 404, text: 'The release does not exist.' },
  PW_UNKNOWN_DEVICE: { status: 404, text: 'The device is not in the registry of that product.' },
  PW_NO_ROLLOUT: { status: 404, text: 'The channel\'s latest release was published without a rollout plan.' },
  PW_UNKNOWN_MIRROR: { status: 404, text: 'No mirror of that URL is known to this server.' },
  PW_UNKNOWN_JOB: { status: 404, text: 'No reconcile job of that id is known (only the latest is kept).' },
  PW_RECONCILE_BUSY: { status: 409, text: 'Another server process of the database is starting a consolidation; start again to join it.' },
  PW_PRODUCT_EXISTS: { status: 409, text: 'A product of that name exists already.' },
  PW_VERSION_NOT_HIGHER: { status: 409, text: 'The version is not higher than the latest of the channel.' },
  PW_ROLLOUT_STATE: { status: 409, text: 'The rollout\'s state does not allow that action (aborted or complete).' },
  PW_METADATA_VERSION: { status: 409, text: 'The signed metadata does not follow the current version.' },
  PW_BAD_SIGNATURE: { status: 400, text: 'Signed metadata does not verify against the product root.' },
  PW_BAD_METADATA: { status: 400, text: 'Metadata is malformed or inconsistent with the request.' },
  PW_ARTIFACT_MISMATCH: { status: 400, text: 'The uploaded file does not match its signed length and hash.' },
  PW_UNSAFE_ARCHIVE: { status: 400, text: 'The archive holds an entry that would leave the install directory.' },
  PW_BAD_MIRROR_URL: { status: 400, text: 'A mirror URL must be http(s)://host[:port]: no credentials, path, query or fragment.' },
  PW_ARCHIVE_LIMIT: { status: 400, text: 'The archive goes beyond a limit: path length, pax header size or entry count.' },
  PW_MIRROR_READ_ONLY: { status: 409, text: 'This server is a mirror; changes go to the primary.' },
  PW_PAYLOAD_TOO_LARGE: { status: 413, text: 'The request body is larger than allowed.' },
  PW_RATE_LIMITED: { status: 429, text: 'Too many requests (or failed attempts) from this address; wait for Retry-After.' },
  PW_TOO_MANY_STREAMS: { status: 503, text: 'The server holds as many event streams as it allows; wait for Retry-After (the device keeps its schedule).' },
  PW_RANGE_NOT_SATISFIABLE: { status: 416, text: 'The requested byte range is outside the file.' },
  PW_INTERNAL: { status: 500, text: 'Internal server error.' },
} as const;

export type ErrorCode = keyof typeof ERRORS;
