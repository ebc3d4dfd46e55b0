/**
 * `patchwire/agent`: the client side of patchwire, for embedding in a Node program or running as
 * `patchwire agent`. It keeps its state in `INSTALL_DIR/.patchwire/`, installs each version in
 * `INSTALL_DIR/versions/<version>/` and points `INSTALL_DIR/current` at the applied one.
 */
export { initAgent, type InitOptions } from './init.js';
export { checkEnrolment, type EnrolmentVerdict } from './enrolment-check.js';
export { withFolderLock, DEFAULT_LOCK_WAIT_MS, type LockOptions } from './folder-lock.js';
export { runCheck, MAX_MOVED_HOPS, type CheckOptions, type CheckResult } from './check.js';
export { runAgent, type AgentLoopOptions } from './agent-loop.js';
export { listenForReleases, PUSH_RETRY, type PushAnnouncement, type PushListenerOptions } from './push/push-listener.js';
export { PushPlan, MIN_PUSH_GAP_MS, PUSH_JITTER_MS, PUSH_RETRIES } from './push/push-plan.js';
export { SseReader, SseLimitError, type SseEvent } from './push/sse-reader.js';
export { describeResult } from './describe-result.js';
export { rollback, type RollbackOptions, type RollbackResult } from './rollback.js';
export { retry, type RetryOptions, type RetryResult } from './retry.js';
export type { AgentResult } from './agent-result.js';
export { loadState, saveState, stateProblem, STATE_FORMAT, DEFAULT_KEEP, DEFAULT_HEALTH_TIMEOUT_SECONDS, type AgentState } from './state.js';
export { isDue, computeNextCheck, spreadOffsetSeconds, type Schedule, type NextCheckInput } from './schedule.js';
export { detectDeviceId } from './device-id.js';
export { downloadTarget, fetchTarget, verifyDownload, type DownloadOptions } from './download.js';
export { applyRelease, stageRelease, switchCurrent, readCurrent, removeVersion, type ApplyResult } from './install.js';
export {
  UPDATE_STATES,
  SAVED_STATES,
  TRANSITIONS,
  RESUME_AT,
  nextState,
  type UpdateStateName,
  type SavedState,
  type UpdateEvent,
} from './update/machine.js';
export { loadUpdateRecord, updateRecordProblem, outcomeOf, type UpdateRecord, type UpdateOutcome } from './update/update-record.js';
export { runHealthCheck, type HealthResult } from './health.js';
export { verifyMovedNotice, type VerifyMovedOptions } from './update/moved-notice.js';
export { agentPaths, type AgentPaths } from './paths.js';
export { ensureDeviceKey, generateDeviceKey, signAuthRequest, deviceKeyPath, type DeviceKey } from './device-key.js';
export { deviceAuthFetch, type DeviceIdentity } from './auth-fetch.js';
export { authSigningBytes, keyIdOf, type AuthRequest, type AuthResponse } from '../protocol/device-auth.js';
export { normaliseServerUrl } from '../protocol/http-url.js';
export { TrustedRepository, TufVerificationError, type VerifiedTarget } from './tuf-client.js';
export {
  AgentStateError,
  InvalidInputError,
  AlreadyInitialisedError,
  DeviceIdError,
  NetworkError,
  ServerError,
  DeviceAdmissionError,
  BadResponseError,
  VerificationError,
  MovedNoticeError,
  RollbackRefusedError,
  RollbackUnavailableError,
  FolderLockedError,
  RetryUnavailableError,
  UnverifiedAnswerError,
  UnsafeFolderError,
  isBadInputError,
} from './errors.js';
