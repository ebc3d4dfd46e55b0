import type { KeyPair } from './keys.js';

/**
 * The publisher's side of a product's TUF repository: runs on the publisher's machine (the CLI),
 * holds the offline key that signs root and targets. The server never calls these.
 */
export interface OnlineKeys {
  /** Public key hex of the server's snapshot key. */
  snapshot: string;
  /** Public key hex of the server's timestamp key. */
  timestamp: string;
}

/** Any JSON object as it goes over the wire (the output of Metadata.toJSON()). */
export type SignedJson = Record<string, unknown>;

/**
 * Root v1 (consistent_snapshot true; root and targets roles: the publisher key; snapshot and
 * timestamp roles: the server's online keys; threshold 1 each; root expires in 365 days) and an
 * empty targets v1 (expires in 365 days), both signed by the publisher key.
 */
export declare function createInitialMetadata(opts: {
  publisher: KeyPair;
  online: OnlineKeys;
  now: Date;
}): { root: SignedJson; targets: SignedJson };

export interface NewTarget {
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
}

/**
 * The next targets version: `current` plus (or with replaced) `add` entries, version + 1, expiry
 * now + 365 days, signed by `publisher`. Throws Error when `current` is not validly signed by
 * `publisher` (a server must not trick the publisher into signing targets it did not sign before).
 */
export declare function nextTargets(opts: {
  current: SignedJson;
  publisher: KeyPair;
  add: Record<string, NewTarget>;
  now: Date;
}): SignedJson;
