/**
 * Wire types of patchwire API v1 (docs/protocol.md documents each field). Wire values are their
 * own lower-case vocabulary; the server's domain names are kept apart from them.
 */
import type { SignedCheckEnvelope } from './check-answer.js';
import type { RolloutState } from './rollout.js';

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
  /**
   * Optional: the random id of the install folder (16 hex digits). Lets the server warn when two
   * folders of one product on one host share a device id.
   */
  installId?: string;
  /**
   * Optional: a fresh random nonce (32 hex digits) the server copies into the signed block of its
   * answer, so the device knows the answer was made for this request (check-answer.ts).
   */
  nonce?: string;
  /**
   * Optional (issue 11): the agent understands the status `deferred`. Without it a device outside
   * a rollout's phase is answered `up-to-date` (an agent from before staged rollouts refuses a
   * status it does not know), with the same `rollout` hint.
   */
  deferred?: boolean;
}

/** GET /v1/products/:product/channels */
export interface ChannelsResponse {
  product: string;
  /** The channels a device may check on, sorted: those with a release or a schedule, and always `stable`. */
  channels: string[];
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
  /** `delta` when `delta` is set: the agent applies it, and falls back to `target` if that fails. */
  kind: 'full' | 'delta';
  /** A delta from the device's version, signed by the server's delegated `deltas` role. */
  delta?: { from: string; target: string; length: number; sha256: string } | null;
}

/**
 * A higher release held back from this device by a staged rollout (issue 11): it is outside the
 * current phase (or the rollout was aborted). `opensAt`: when the first phase that holds this
 * device opens, or null when that is not known (paused, halted, aborted, or no `--every`: the
 * device keeps its interval). The agent wakes at `opensAt` plus its offset in `spreadSeconds`.
 */
export interface RolloutHint {
  version: string;
  opensAt: string | null;
  spreadSeconds: number;
}

export interface CheckResponse {
  /** `deferred`: a higher release exists, not yet for this device (`rollout` says which and when). */
  status: 'update' | 'up-to-date' | 'deferred';
  product: string;
  channel: string;
  /** The latest release of the channel, or null when the channel has none. */
  latest: string | null;
  /** Present when status is `update`. */
  release: ReleaseOffer | null;
  schedule: ScheduleInfo | null;
  /** Issue 11: a higher release a staged rollout holds back from this device, or absent/null. */
  rollout?: RolloutHint | null;
  /** Present when the operator published a signed moved notice; the agent verifies it via TUF. */
  moved: { url: string; target: string } | null;
  serverTime: string;
  /** Optional: things the device's operator should know (e.g. two folders sharing a device id). */
  warnings?: string[];
  /** The signed block (a primary that holds its online keys and got a nonce); mirrors never sign. */
  signed?: SignedCheckEnvelope;
}

/**
 * What a device reports. `delta-failed`: the delta named in `detail` could not be applied (the
 * agent fell back to the full archive). `downloading` and `installing` (issue 11): progress of an
 * update, sent best effort (a lost one never stops the update); they change no applied version.
 */
export const REPORT_EVENTS = ['applied', 'rolled-back', 'failed', 'delta-failed', 'downloading', 'installing'] as const;
export type ReportEvent = (typeof REPORT_EVENTS)[number];

export function isReportEvent(v: unknown): v is ReportEvent {
  return (REPORT_EVENTS as readonly unknown[]).includes(v);
}

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
  /**
   * Optional (issue 11): the release the update is installing (the offered version), e.g. `2.0.0`
   * for every report of the update 1.0.0 -> 2.0.0; a published release of the channel.
   */
  toVersion?: string | null;
  /** Optional (issue 11): the update state that failed (`download`, `stage`, `health`, ...), with `failed` and `rolled-back`. */
  state?: string;
}

/** Longest `detail` a report may carry (the agent cuts its error text to this). */
export const REPORT_DETAIL_MAX = 1000;

/**
 * One entry of a device's history (GET /v1/admin/products/:product/devices/:deviceId), from one
 * report. `version`: the release the update concerned (the one downloaded, installed, applied,
 * failed or rolled back from); `fromVersion`: the version the device ran when that update began.
 */
export interface HistoryEntry {
  at: string;
  event: ReportEvent;
  version: string | null;
  fromVersion: string | null;
  /** The update state that failed (failed, rolled-back), or null. */
  state: string | null;
  /** The error text of failed and rolled-back (for delta-failed: the delta's target path), or null. */
  error: string | null;
}

/** GET /v1/admin/products/:product/devices/:deviceId: the device and its history, newest first. */
export interface DeviceDetail {
  device: DeviceView;
  history: HistoryEntry[];
}

/** The content of the signed moved-notice target. */
export interface MovedNotice {
  product: string;
  url: string;
  issuedAt: string;
}

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
  /** Issue 9: admission status and bound key id (null: the device has not authenticated since keys exist). */
  status?: 'accepted' | 'pending' | 'rejected' | null;
  keyId?: string | null;
  /** A different key waiting for `devices accept` (identity conflict), or null. */
  pendingKeyId?: string | null;
  /** Issue 11: the event of the device's latest report (`applied`, `downloading`, ...), or null when it never reported. */
  lastEvent?: ReportEvent | null;
}

/**
 * GET /v1/admin/devices: one page of the registry in (device id, product) order. `next` goes back
 * as `after` for the following page; null: the last page.
 */
export interface DeviceListPage {
  devices: DeviceView[];
  next: string | null;
}

/** Devices per page of GET /v1/admin/devices: `limit` defaults to the first, larger asks get the second. */
export const DEVICE_PAGE = { default: 500, max: 1000 } as const;

export type AlarmView = ScheduleOverdueAlarm | IdentityConflictAlarm | RolloutHaltedAlarm;

/** A staged rollout halted itself: failed + rolled-back devices reached its --halt-at. */
export interface RolloutHaltedAlarm {
  kind: 'rollout-halted';
  product: string;
  channel: string;
  version: string;
  /** Distinct devices that attempted the release, and those whose attempt failed or rolled back. */
  attempted: number;
  failed: number;
  rolledBack: number;
  haltAt: number;
  since: string;
}

/** Devices of a rollout by outcome (distinct devices; `offered`: inside the current percent). */
export interface RolloutCounts {
  offered: number;
  attempted: number;
  applied: number;
  failed: number;
  rolledBack: number;
}

/** A staged rollout as the admin API shows it (GET /v1/admin/rollouts, `patchwire rollout status --json`). */
export interface RolloutView {
  product: string;
  channel: string;
  version: string;
  /** Percents, e.g. [5, 25, 100]. */
  phases: number[];
  /** Index into `phases`. */
  phase: number;
  percent: number;
  state: RolloutState;
  /** Seconds between phases, or null (only `rollout advance` moves it). */
  every: number | null;
  haltAt: number | null;
  minDevices: number;
  phaseStartedAt: string;
  nextPhaseAt: string | null;
  counts: RolloutCounts;
}

/** A rollout as the primary hands it to its mirrors (in the catalog, beside the schedules). */
export interface RolloutSync {
  product: string;
  channel: string;
  version: string;
  phases: number[];
  phase: number;
  state: RolloutState;
  every: number | null;
  haltAt: number | null;
  minDevices: number;
  phaseStartedAt: string;
  updatedAt: string;
}

export interface ScheduleOverdueAlarm {
  kind: 'schedule-overdue';
  product: string;
  channel: string;
  scheduledAt: string;
}

/** A known MAC presented a different key: it waits until `devices accept` (re-bind) or `devices reject`. */
export interface IdentityConflictAlarm {
  kind: 'identity-conflict';
  product: string;
  channel: string;
  deviceId: string;
  /** The key the device is bound to, and the one that waits. */
  keyId: string;
  pendingKeyId: string;
  since: string;
}

/** One channel of a product in `status --json`: its latest release and its devices per applied version. */
export interface ChannelStatusView {
  channel: string;
  /** The release the channel offers (its highest not yanked), or null. */
  latest: string | null;
  devices: number;
  /** Devices per applied version (`none`: nothing applied yet). */
  versions: Record<string, number>;
}

export interface ProductStatusView {
  product: string;
  devices: number;
  channels: ChannelStatusView[];
}

export interface StatusView {
  /** Devices of every product (of `?product=` when given). */
  devices: number;
  /** Devices per applied version, summed over the products counted (one product: pass `?product=`, or read `products`). */
  versions: Record<string, number>;
  /** The same figures per product and channel, products by name. */
  products: ProductStatusView[];
  mirrors: MirrorView[];
  alarms: AlarmView[];
  /** This server process since it started (added in issue 10); GET /v1/admin/runtime gives a window since its previous read. */
  runtime: RuntimeView;
}

/** One server process's event loop and memory over a window (docs/protocol.md, GET /v1/admin/runtime). */
export interface RuntimeView {
  /** Start of the window: the process start (status), or the previous GET /v1/admin/runtime. */
  since: string;
  uptimeSeconds: number;
  /** Event-loop delay over the window, in ms beyond the 10 ms sampling interval; `samples`: timer samples taken. */
  eventLoopDelayMs: { p50: number; p99: number; max: number; samples: number };
  rssBytes: number;
}

/** Body of every error answer. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

// ---- Mirror protocol (docs/protocol.md, "Mirror surface"); every route needs the mirror token ----

/** POST /v1/mirror/announce on the primary: a mirror tells where devices reach it. */
export interface MirrorAnnounce {
  url: string;
}

/** GET /v1/mirror/catalog on the primary: what a mirror must hold to serve devices. */
export interface MirrorCatalog {
  products: Array<{
    name: string;
    createdAt: string;
    /** Highest version of each role's metadata; the mirror fetches what it lacks from the TUF routes. */
    metadata: { root: number; targets: number; snapshot: number; timestamp: number; deltas?: number };
    /** `yankedAt`: set once the release was yanked (absent from older primaries: not yanked). */
    releases: Array<{ channel: string; version: string; target: string; sha256: string; length: number; treeHash: string; createdAt: string; yankedAt?: string | null }>;
    moved: { url: string; target: string; sha256: string; setAt: string } | null;
    /** How the product admits a new device (issue 9); a mirror applies it. Absent from older primaries: `auto`. */
    admission?: 'auto' | 'approve';
    /**
     * Issue 13: the deltas the primary computed (targets of the signed deltas role), oldest first;
     * `failed`: no longer offered. A mirror copies each by hash and offers it as the primary does.
     * Absent from older primaries: none (the mirror's devices get full archives).
     */
    deltas?: DeltaSync[];
  }>;
  schedules: ScheduleSync[];
  /** Issue 11: every staged rollout (absent from older primaries: none). */
  rollouts?: RolloutSync[];
}

/** A delta as the catalog lists it (issue 13): `target` is `deltas/<channel>/<from>_<to>.pwdelta`. */
export interface DeltaSync {
  channel: string;
  from: string;
  to: string;
  target: string;
  sha256: string;
  length: number;
  engine: string;
  createdAt: string;
  failed: boolean;
}

export interface ScheduleSync {
  product: string;
  channel: string;
  at: string;
  spreadSeconds: number;
  setAt: string;
}

/** A device record as mirrors and the primary exchange it (GET and POST /v1/mirror/devices). */
export interface DeviceSync extends DeviceView {
  /** When the sending store last changed the record (for display; pages go by `next`); ignored when merging. */
  updatedAt: string;
  /**
   * Issue 9 (mirror identity): the Ed25519 key the sender has this device bound to (64 hex digits)
   * and its id, null when it has none; the receiver recomputes the id from the key. `status`: the
   * sender's admission of the device (a primary's push is the primary's word; a primary ignores a
   * mirror's). Absent from older servers: read as null.
   */
  keyId?: string | null;
  publicKey?: string | null;
  status?: 'accepted' | 'pending' | 'rejected' | null;
}

/**
 * GET /v1/mirror/devices: one page of the sender's device changes. `next` is the sender's
 * change cursor, opaque to the receiver, which sends it back as `after` for the next page.
 */
export interface DeviceSyncPage {
  records: DeviceSync[];
  next: string | null;
}

/**
 * Issue 10: format 2 of the device pages between a primary and its mirrors (docs/protocol.md
 * "Device pages, format 2"), asked for with `format=2` (GET) and sent only to a mirror that
 * answered its pull in it (POST). One array per record, in COMPACT_FIELDS order; times in
 * milliseconds since the epoch; no updatedAt, no keyId (the receiver derives the id from the key).
 */
export const COMPACT_FORMAT = 2;
export const COMPACT_FIELDS = [
  'deviceId', 'product', 'channel', 'version', 'firstSeenAt', 'lastSeenAt', 'lastReportAt', 'source', 'lastEvent', 'publicKey', 'status',
] as const;
export type CompactDeviceSync = [
  deviceId: string, product: string, channel: string, version: string | null, firstSeenAt: number, lastSeenAt: number,
  lastReportAt: number | null, source: string, lastEvent: ReportEvent | null, publicKey: string | null, status: 'accepted' | 'pending' | 'rejected' | null,
];
/** GET /v1/mirror/devices?format=2 answer, and the body of POST /v1/mirror/devices in format 2. */
export interface CompactDeviceSyncPage {
  format: typeof COMPACT_FORMAT;
  records: CompactDeviceSync[];
  next?: string | null;
}

/** One mirror in `status --json` and `mirrors list --json`. */
export interface MirrorView {
  url: string;
  /** `pending`: announced, never contacted; `approved`: consolidated (`mirrors approve`, `--mirror-allow`). */
  state: 'pending' | 'approved';
  announcedAt: string;
  approvedAt: string | null;
  lastSyncAt: string | null;
  pulled: number;
  pushed: number;
  error: string | null;
  /** Invalid records the last sync refused (not merged), and why. */
  skipped: number;
  skippedWhy: string | null;
}

/** POST /v1/mirror/announce: the mirror's state at the primary. */
export interface MirrorAnnounceAnswer {
  ok: true;
  state: 'pending' | 'approved';
}

/** One approved mirror's outcome in `reconcile --json`. */
export interface ReconcileMirrorView {
  url: string;
  pulled: number;
  pushed: number;
  /** Invalid records refused (not merged), and why. */
  skipped: number;
  skippedWhy?: string;
  error?: string;
}

/** `reconcile --json`: the approved mirrors consolidated, and the pending ones (not contacted). */
export interface ReconcileView {
  mirrors: ReconcileMirrorView[];
  pending: string[];
}

/** Where a reconcile job is with one approved mirror: waiting, pulling, pushing, done or failed. */
export type ReconcileMirrorPhase = 'waiting' | 'pulling' | 'pushing' | 'done' | 'failed';

/** One approved mirror in a reconcile job's progress (GET /v1/admin/reconcile/jobs/:id). */
export interface ReconcileJobMirrorView {
  url: string;
  phase: ReconcileMirrorPhase;
  /** Pages pulled from the mirror, and the records of them merged into the primary. */
  pulledPages: number;
  pulled: number;
  /** Pages pushed to the mirror, and the records in them. */
  pushedPages: number;
  pushed: number;
  skipped: number;
  error?: string;
}

/**
 * A reconcile job (POST /v1/admin/reconcile/jobs starts or joins one): `running` until every
 * mirror is done or failed, then `done` with `result` (what `POST /v1/admin/reconcile` answers);
 * `failed` when the run itself broke (`error`), or when the process running it stopped reporting
 * progress (several processes on one database).
 */
export interface ReconcileJobView {
  id: string;
  state: 'running' | 'done' | 'failed';
  startedAt: string;
  /** The last progress written: while running, at least every few seconds. */
  updatedAt: string;
  finishedAt: string | null;
  mirrors: ReconcileJobMirrorView[];
  pending: string[];
  /** Each failed mirror's error, and the run's own (`mirror: null`). */
  errors: Array<{ mirror: string | null; error: string }>;
  result?: ReconcileView;
  error?: string;
}

/** POST /v1/admin/reconcile/jobs: the job, and whether a run already in progress was joined. */
export interface ReconcileJobStart {
  job: ReconcileJobView;
  joined: boolean;
}
