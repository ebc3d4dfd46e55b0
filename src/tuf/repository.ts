import type { KeyPair } from './keys.js';
import type { OnlineKeys, SignedJson } from './publisher.js';

/**
 * The server's side of a product's TUF repository: verifies what the publisher uploads and signs
 * snapshot and timestamp with the online keys. Metadata is kept and served as the exact bytes
 * these functions return (`JSON.stringify(metadata.toJSON())`).
 */
export class TufError extends Error {
  override name = 'TufError';
  constructor(
    readonly code: 'PW_BAD_SIGNATURE' | 'PW_BAD_METADATA' | 'PW_METADATA_VERSION',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface VerifiedMetadata {
  version: number;
  expires: Date;
  /** Exact bytes to store and serve. */
  json: string;
}

export interface VerifiedTargets extends VerifiedMetadata {
  /** target path -> { length, sha256, custom } */
  targets: Record<string, { length: number; sha256: string; custom: Record<string, unknown> }>;
}

/**
 * Checks an uploaded root v1: type root, version 1, consistent_snapshot true, not expired at
 * `now`, signed by its own root role (threshold), and snapshot/timestamp roles bound to exactly
 * this server's online keys. TufError otherwise.
 */
export declare function verifyInitialRoot(root: unknown, online: OnlineKeys, now: Date): VerifiedMetadata;

/**
 * Checks uploaded targets against the trusted root: type targets, signed by the root's targets
 * role (threshold), version === expectedVersion (else PW_METADATA_VERSION), not expired at `now`,
 * every target has a sha256 hash. TufError otherwise.
 */
export declare function verifyTargets(rootJson: string, targets: unknown, expectedVersion: number, now: Date): VerifiedTargets;

/** Signs snapshot `version` naming targets `targetsVersion` (with length and sha256 of targetsJson). */
export declare function signSnapshot(opts: {
  version: number;
  targetsVersion: number;
  targetsJson: string;
  key: KeyPair;
  expires: Date;
}): VerifiedMetadata;

/** Signs timestamp `version` naming snapshot `snapshotVersion` (with length and sha256 of snapshotJson). */
export declare function signTimestamp(opts: {
  version: number;
  snapshotVersion: number;
  snapshotJson: string;
  key: KeyPair;
  expires: Date;
}): VerifiedMetadata;

/** The server's online keys, kept in `<dataDir>/keys/online.json` (mode 0600), created on first use. */
export declare function loadOrCreateOnlineKeys(dataDir: string): Promise<{ snapshot: KeyPair; timestamp: KeyPair }>;
