/**
 * The agent's error classes, one per condition. They live in one file (an exception to "one main
 * export per file") because each is a few lines and callers import several at once; every class
 * has a `name`, its context, and the original error as `cause`.
 */

/** Thrown when `.patchwire/state.json` is missing, not JSON, or holds an invalid field. */
export class AgentStateError extends Error {
  override name = 'AgentStateError';
  constructor(message: string, readonly path: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Thrown by initAgent (and the CLI) when an input such as the server URL or root file is invalid. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
  constructor(message: string, readonly field: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Thrown by initAgent when the install folder already holds an agent state. */
export class AlreadyInitialisedError extends Error {
  override name = 'AlreadyInitialisedError';
  constructor(message: string, readonly path: string) {
    super(message);
  }
}

/** Thrown by detectDeviceId when no network interface has a usable MAC address. */
export class DeviceIdError extends Error {
  override name = 'DeviceIdError';
}

/** Thrown when the server cannot be reached or the connection breaks (no HTTP answer). */
export class NetworkError extends Error {
  override name = 'NetworkError';
  constructor(message: string, readonly url: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Thrown when the server answers with an HTTP error status. */
export class ServerError extends Error {
  override name = 'ServerError';
  constructor(
    message: string,
    readonly url: string,
    readonly statusCode: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/**
 * Thrown when the server will not give this device a token (POST /v1/auth): `PW_DEVICE_PENDING`
 * (it waits for an operator's `patchwire devices accept`), `PW_DEVICE_REJECTED`, or an enrolment
 * refused for now (`PW_RATE_LIMITED`, `PW_DEVICE_LIMIT`). The message says what the operator runs.
 */
export class DeviceAdmissionError extends ServerError {
  override name = 'DeviceAdmissionError';
}

/** Thrown when a server answer is not JSON, too large, or does not have the expected shape. */
export class BadResponseError extends Error {
  override name = 'BadResponseError';
  constructor(message: string, readonly url: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Thrown when downloaded or installed bytes do not match what the signed metadata says: wrong
 * length or sha256, more data than the signed length, a tree hash mismatch, an unsafe archive,
 * or a release target whose signed custom field does not match the offer.
 */
export class VerificationError extends Error {
  override name = 'VerificationError';
  constructor(message: string, readonly path?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Thrown when a moved notice is unsigned, malformed, for another product, loops, or hops too often. */
export class MovedNoticeError extends Error {
  override name = 'MovedNoticeError';
  constructor(message: string, readonly url: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Thrown when the server offers a version that is not higher than the one the device runs. */
export class RollbackRefusedError extends Error {
  override name = 'RollbackRefusedError';
  constructor(message: string, readonly offered: string, readonly current: string | null) {
    super(message);
  }
}

/** Thrown when another live process holds the install folder's lock for longer than the wait. */
export class FolderLockedError extends Error {
  override name = 'FolderLockedError';
  constructor(message: string, readonly holderPid: number) {
    super(message);
  }
}

/** Thrown when the install folder, `versions/` or `.patchwire/` is a symlink, not a folder, or owned by another user. */
export class UnsafeFolderError extends Error {
  override name = 'UnsafeFolderError';
  constructor(message: string, readonly path: string) {
    super(message);
  }
}

/** Thrown by rollback when there is no previous version to go back to. */
export class RollbackUnavailableError extends Error {
  override name = 'RollbackUnavailableError';
}

/** Thrown by retry when nothing is held back, or an update is in progress. */
export class RetryUnavailableError extends Error {
  override name = 'RetryUnavailableError';
}

/**
 * True for errors caused by bad input or a refused local request (the CLI exits 2 for these);
 * false for failures of the network, the server or verification (exit 1).
 */
export function isBadInputError(err: unknown): boolean {
  return (
    err instanceof AgentStateError ||
    err instanceof InvalidInputError ||
    err instanceof AlreadyInitialisedError ||
    err instanceof DeviceIdError ||
    err instanceof RollbackUnavailableError ||
    err instanceof RetryUnavailableError ||
    err instanceof UnsafeFolderError ||
    // The folder names a channel its product does not have: its configuration is wrong.
    (err instanceof ServerError && err.code === 'PW_UNKNOWN_CHANNEL')
  );
}

/**
 * Thrown when a check answer cannot be believed (docs/design.md section 3): its signed block is
 * missing from a server that signs, malformed, badly signed, for another device or request
 * (replayed), expired, or disagrees with the answer; or an unsigned "up-to-date" (a mirror) is
 * contradicted by the signed TUF targets. The agent keeps its version and state.
 */
export class UnverifiedAnswerError extends Error {
  override name = 'UnverifiedAnswerError';
  constructor(message: string, readonly url: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
