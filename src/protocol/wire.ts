/**
 * Wire types of patchwire API v1 (docs/protocol.md documents each field). Wire values are their
 * own lower-case vocabulary; the server's domain names are kept apart from them.
 */

/** POST /v1/check */
export interface CheckRequest {
  deviceId: string;
  product: string;
  channel: string;
  /**
   * The version the device runs, or null when nothing is installed yet. When the field is absent
   * the server uses the applied version recorded in its registry (a minimal client that sends
   * only its MAC still gets the right answer).
   */
  version?: string | null;
}

export interface ScheduleInfo {
  /** ISO-8601 UTC time of the next planned release. */
  at: string;
  /** Width of the spread window in seconds (0: no spread). */
  spreadSeconds: number;
}

export interface ReleaseOffer {
  version: string;
  /** TUF target path of the full archive, e.g. `stable/1.2.0.tar.gz`. */
  target: string;
  /** Hints only: the agent takes length and hashes from verified TUF metadata. */
  length: number;
  sha256: string;
  kind: 'full' | 'delta';
}

export interface CheckResponse {
  status: 'update' | 'up-to-date';
  product: string;
  channel: string;
  /** The latest release of the channel, or null when the channel has none. */
  latest: string | null;
  /** Present when status is `update`. */
  release: ReleaseOffer | null;
  schedule: ScheduleInfo | null;
  /** Present when the operator published a signed moved notice; the agent verifies it via TUF. */
  moved: { url: string; target: string } | null;
  serverTime: string;
}

export type ReportEvent = 'applied' | 'rolled-back' | 'failed';

/** POST /v1/report */
export interface ReportRequest {
  deviceId: string;
  product: string;
  channel: string;
  event: ReportEvent;
  /** The version the device runs after the event. */
  version: string | null;
  previousVersion: string | null;
  /** Free text for `failed` (at most 1,000 characters). */
  detail?: string;
}

/** The content of the signed moved-notice target. */
export interface MovedNotice {
  product: string;
  url: string;
  issuedAt: string;
}

/** The `custom` field of a release target in signed TUF targets metadata. */
export type ReleaseTargetCustom = {
  patchwire: {
    kind: 'full';
    product: string;
    channel: string;
    version: string;
    /** sha256 hex of the release tree manifest (src/util/tree-hash.ts). */
    treeHash: string;
    /** Total bytes of regular files in the tree. */
    treeBytes: number;
    treeFiles: number;
  };
};

export type MovedTargetCustom = {
  patchwire: { kind: 'moved'; product: string; url: string };
};

/** Path of a release's full archive in the product's TUF repository. */
export function releaseTargetPath(channel: string, version: string): string {
  return `${channel}/${version}.tar.gz`;
}

/** Path of the moved notice in the product's TUF repository. */
export const MOVED_TARGET_PATH = 'moved.json';

/** One device as the admin API lists it (`patchwire devices --json`). */
export interface DeviceView {
  deviceId: string;
  product: string;
  channel: string;
  version: string | null;
  firstSeenAt: string;
  lastSeenAt: string;
  lastReportAt: string | null;
  source: string;
}

export interface AlarmView {
  kind: 'schedule-overdue';
  product: string;
  channel: string;
  scheduledAt: string;
}

export interface StatusView {
  devices: number;
  versions: Record<string, number>;
  mirrors: unknown[];
  alarms: AlarmView[];
}

/** Body of every error answer. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}
