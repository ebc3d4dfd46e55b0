/**
 * The signed block of a `/v1/check` answer (docs/protocol.md, "Signed check answer"): the server
 * signs what it told this device, bound to the device's request (its id and nonce), with the
 * product's online timestamp key, whose key id the device's trusted root names. Canonical JSON as
 * TUF signs, so the agent verifies it as it verifies TUF metadata.
 */

/** Domain separation: no TUF metadata has this `_type`, so a signed answer is never a timestamp. */
export const CHECK_ANSWER_TYPE = 'patchwire-check';

/** Lifetime of a signed answer on the server's clock (the agent refuses it after `expires`). */
export const CHECK_ANSWER_LIFETIME_SECONDS = 300;

/**
 * The statuses a signed answer may carry: `deferred` ("a higher release exists but not yet for
 * you": a staged rollout, issue 11) comes with `rollout`.
 */
export type SignedCheckStatus = 'update' | 'up-to-date' | 'deferred';

export interface SignedCheckAnswer {
  _type: typeof CHECK_ANSWER_TYPE;
  deviceId: string;
  product: string;
  channel: string;
  /** The nonce the device sent (32 hex digits). */
  nonce: string;
  status: SignedCheckStatus;
  latest: string | null;
  /** The release offered (with `update`), or null. */
  release: { version: string; target: string } | null;
  /**
   * Issue 11: the release a staged rollout holds back and when this device's phase opens, as in
   * the answer (absent when the answer has none), so a man in the middle cannot change the wake time.
   */
  rollout?: { version: string; opensAt: string | null };
  serverTime: string;
  expires: string;
  /** The product's current timestamp metadata: the device refuses a version lower than it trusts. */
  timestamp: { version: number; expires: string };
}

export interface CheckAnswerSignature {
  keyid: string;
  /** Ed25519 signature (hex) of the canonical JSON of `signed`. */
  sig: string;
}

export interface SignedCheckEnvelope {
  signed: SignedCheckAnswer;
  signatures: CheckAnswerSignature[];
}

/** A check nonce: 16 random bytes in lower-case hex. */
export const NONCE_RE = /^[0-9a-f]{32}$/;

export function isNonce(v: unknown): v is string {
  return typeof v === 'string' && NONCE_RE.test(v);
}
