/**
 * The Store: everything the server keeps besides artifact bytes. One interface, one folder per
 * implementation (`sqlite/` now, `postgres/` later), one contract suite (test/contracts/store-contract.ts)
 * that every implementation runs. All times are Date objects (UTC); versions are semver strings.
 */

import type { MetadataRoleName } from '../protocol/urls.js';
import type { ReportEvent } from '../protocol/wire.js';
import type { AdmissionPolicy, DeviceIdentityRecord, PreauthorizationRecord } from './identity.js';
import type { Coordination } from './coordination.js';
import type { HawkbitRecords } from './hawkbit-records.js';
import type { RolloutState } from '../protocol/rollout.js';

export type { AdmissionPolicy, DeviceIdentityRecord, DeviceStatus, PreauthorizationRecord } from './identity.js';

/** `deltas`: the delegated role the server signs its computed deltas with. */
export type MetadataRole = MetadataRoleName;

export interface ProductRecord {
  name: string;
  createdAt: Date;
  /** How new devices are admitted (migration 0006); `auto` when absent. */
  admission?: AdmissionPolicy;
  /** Migration 0013: the folder Mender's `directory` module installs into (docs/compat.md); none when absent. */
  menderDest?: string | null;
}

/** One version of one role's signed TUF metadata, kept as the exact bytes the server serves. */
export interface MetadataRecord {
  product: string;
  role: MetadataRole;
  version: number;
  json: string;
  expiresAt: Date;
}

export interface ReleaseRecord {
  product: string;
  channel: string;
  version: string;
  /** TUF target path of the full archive. */
  target: string;
  sha256: string;
  length: number;
  treeHash: string;
  createdAt: Date;
  /**
   * When the operator yanked (withdrew) it: it is no longer offered, and the channel's latest is
   * the highest release not yanked. Absent while it is not yanked; a yank is final.
   */
  yankedAt?: Date;
}

/** Devices of one product and channel at one applied version (null: nothing applied yet). */
export interface ChannelVersionCount {
  product: string;
  channel: string;
  version: string | null;
  devices: number;
}

/**
 * One row of a fleet snapshot (migration 0010_version_snapshots): at `at`, `devices` devices of
 * product/channel ran `version` (null: nothing applied yet). The dashboard charts them over time.
 */
export interface VersionSnapshotRow extends ChannelVersionCount {
  at: Date;
}

/** A delta the server computed: turns the tree of `fromVersion` into that of `toVersion`. */
export interface DeltaRecord {
  product: string;
  channel: string;
  fromVersion: string;
  toVersion: string;
  /** TUF target path under `deltas/`, signed by the delegated deltas role. */
  target: string;
  sha256: string;
  length: number;
  engine: string;
  createdAt: Date;
  /** Set when a device reported that applying it failed: the server stops offering it. */
  failed: boolean;
}

export interface ScheduleRecord {
  product: string;
  channel: string;
  at: Date;
  spreadSeconds: number;
  /** When the operator set this schedule (the overdue alarm compares releases with it). */
  setAt: Date;
}

/** A release's staged rollout (issue 11, migration 0012_rollouts); one per (product, channel, version). */
export interface RolloutRecord {
  product: string;
  channel: string;
  version: string;
  /** Percents, strictly increasing, the last 100. */
  phases: number[];
  /** Index into phases, as of phaseStartedAt (rolloutAt() moves an active one on by `every`). */
  phase: number;
  state: RolloutState;
  /** Seconds between phases, or null. */
  every: number | null;
  haltAt: number | null;
  minDevices: number;
  phaseStartedAt: Date;
  /** When this record last changed (a mirror keeps the primary's). */
  updatedAt: Date;
}

/** Distinct devices per outcome of one release (Store.countRolloutOutcomes). */
export interface RolloutOutcomes {
  /** Devices that reported applied, failed or rolled-back for the release. */
  attempted: number;
  applied: number;
  failed: number;
  rolledBack: number;
  /** Devices with a failed or rolled-back report for it (a device with both counts once). */
  failing: number;
}

export interface MovedRecord {
  product: string;
  url: string;
  /** TUF target path of the signed notice. */
  target: string;
  sha256: string;
  setAt: Date;
}

export interface DeviceRecord {
  deviceId: string;
  product: string;
  channel: string;
  /** Applied version, changed only by the device's own `applied` / `rolled-back` report. */
  version: string | null;
  firstSeenAt: Date;
  lastSeenAt: Date;
  lastReportAt: Date | null;
  /** URL of the server (primary or mirror) that last heard from the device. */
  source: string;
  /**
   * The event of the device's latest report (`applied`, `downloading`, ...), merged between
   * servers with the latest report time; absent (or null) while the device never reported.
   * `devices --status` filters on it (migration 0011_device_history).
   */
  lastEvent?: ReportKind | null;
  /**
   * When this store last changed the record (any write), for people reading it; consolidation
   * pages by ChangeCursor, not by this time. A write that changes nothing (an older sighting, a
   * merge with nothing new) keeps it. Never earlier than a change the store made before it (a
   * clock stepped back does not reorder the history); all rows of one transaction share the time.
   */
  updatedAt: Date;
}

/**
 * A position in one store's feed of device changes (see listDeviceChanges). Opaque: only the
 * store that made it reads it. The primary keeps a mirror's cursor as a string and hands it back
 * to that mirror unread, so each backend picks what fits its writers (SQLite: a sequence number).
 */
export type ChangeCursor = string;

/** One page of a store's device changes. */
export interface DeviceChanges {
  devices: DeviceRecord[];
  /** Where the next page starts: after the last record returned; `after` itself when none was. */
  next: ChangeCursor | null;
  /**
   * Per record (same order as `devices`), the mirror store that holds it exactly as it is here
   * (its storeId: mergeDevices `heldBy` wrote the row as that mirror sent it, and nothing changed
   * it since), else null. Consolidation does not push a mirror the records it holds already.
   */
  heldBy: Array<string | null>;
  /** Per record, the key the device is bound to here and its status (null: none), read with the page: what a sync page carries. */
  bindings: Array<DeviceBinding | null>;
}

/** The part of a device's identity that travels with its record between servers. */
export type DeviceBinding = Pick<DeviceIdentityRecord, 'publicKey' | 'keyId' | 'status'>;

/**
 * `pending`: announced, never contacted by the primary; `approved`: by the operator (`patchwire
 * mirrors approve`) or by the primary's `--mirror-allow` list, and consolidated.
 */
export type MirrorState = 'pending' | 'approved';
/** One page of a device listing (Store.listDevicePage). */
export interface DevicePage {
  devices: DeviceRecord[];
  /** Pass as `after` for the next page; null: this was the last page. Opaque, like ChangeCursor. */
  next: string | null;
}

/** A mirror known to the primary, and how its last consolidation went. */
export interface MirrorRecord {
  url: string;
  announcedAt: Date;
  state: MirrorState;
  /** When it was approved; null while pending. */
  approvedAt: Date | null;
  /** Pull cursor: the mirror's own ChangeCursor after the last record pulled from it. */
  cursor: ChangeCursor | null;
  /** Push cursor: this store's ChangeCursor after the last record that reached the mirror. */
  pushCursor: ChangeCursor | null;
  /** The identity of the mirror's store it last announced (a new one resets both cursors); null: never said (an older mirror). */
  storeId: string | null;
  lastSyncAt: Date | null;
  lastAttemptAt: Date | null;
  /** Records pulled and pushed in the last successful sync. */
  pulled: number;
  pushed: number;
  /** The error of the last attempt, or null when it succeeded. */
  error: string | null;
  /** Records the last attempt refused (invalid: not merged), and why, e.g. `2 version not released on acme/stable`. */
  skipped: number;
  skippedWhy: string | null;
}

/** What one consolidation attempt records about a mirror (its state changes only by approveMirror). */
export type MirrorUpdate = Partial<Omit<MirrorRecord, 'url' | 'announcedAt' | 'state' | 'approvedAt' | 'storeId'>>;

/** A last-seen sighting from the check path; batched by the server, written in one transaction. */
export interface Sighting {
  deviceId: string;
  product: string;
  channel: string;
  seenAt: Date;
  source: string;
}

export type ReportKind = ReportEvent;

export interface ReportRecord {
  deviceId: string;
  product: string;
  channel: string;
  event: ReportKind;
  version: string | null;
  previousVersion: string | null;
  detail: string | null;
  at: Date;
  source: string;
  /**
   * The release the update this report belongs to was installing (the offered version), when the
   * device said so (agents since 0011_device_history): e.g. `2.0.0` of a `downloading`, `failed`
   * or `rolled-back` report of the update 1.0.0 -> 2.0.0. Absent or null when unknown.
   */
  toVersion?: string | null;
  /** The update state that failed (`download`, `verify`, `stage`, `health`, ...), for failed and rolled-back reports. */
  state?: string | null;
}

/**
 * Reports kept per device (and product): recordReport drops the oldest beyond this, so a device
 * that reports endlessly costs a bounded amount of storage (docs/protocol.md, device history).
 */
export const REPORTS_KEPT_PER_DEVICE = 200;

/**
 * Registry rows one listDevicePage call reads at most when a filter is not served by an index
 * (`seenBefore`, or `version` and `lastEvent` together): such a page may hold fewer than `limit`
 * devices, even none, while `next` is not null. Every page costs a bounded amount of work.
 */
export const DEVICE_PAGE_SCAN = 10_000;

/**
 * What listDevicePage selects. Absent fields match every device; `version: null` matches devices
 * with no applied version, `lastEvent: null` devices that never reported.
 */
export interface DeviceFilter {
  product?: string;
  version?: string | null;
  lastEvent?: ReportKind | null;
  /** Devices last seen before this time (`--stale`). */
  seenBefore?: Date;
  /** Devices whose id starts with this (a MAC prefix, normalised: `aa:bb:c`). */
  idPrefix?: string;
}

export interface Store {
  /** Creates or upgrades the schema; safe to call on every start (with PostgreSQL: from several processes at once). */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Locks and notifications shared by every server process on this database (src/store/coordination.ts). */
  readonly coordination: Coordination;
  /** Issue 12: what the hawkBit DDI surface keeps (src/store/hawkbit-records.ts). */
  readonly hawkbit: HawkbitRecords;

  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;

  /** Creates a product with its initial metadata in one transaction; StoreConflictError if it exists. */
  createProduct(product: ProductRecord, metadata: MetadataRecord[]): Promise<void>;
  getProduct(name: string): Promise<ProductRecord | undefined>;
  listProducts(): Promise<ProductRecord[]>;
  /** `product create|update --mender-dest` (migration 0013); null clears it. False when there is no such product. */
  setMenderDest(product: string, dest: string | null): Promise<boolean>;

  /** The given version of a role's metadata, or the highest version when `version` is omitted. */
  getMetadata(product: string, role: MetadataRole, version?: number): Promise<MetadataRecord | undefined>;
  /** Adds metadata versions (e.g. a re-signed timestamp); StoreConflictError when a version exists. */
  putMetadata(records: MetadataRecord[]): Promise<void>;

  /** Adds a release and its metadata in one transaction; StoreConflictError (nothing written) on any duplicate. */
  commitRelease(release: ReleaseRecord, metadata: MetadataRecord[]): Promise<void>;
  getRelease(product: string, channel: string, version: string): Promise<ReleaseRecord | undefined>;
  /** Releases of a product (one channel when given), in publication order, yanked ones included. */
  listReleases(product: string, channel?: string): Promise<ReleaseRecord[]>;
  /**
   * Marks a release yanked at `at`; a release yanked already keeps its first yankedAt. Returns
   * the release as stored afterwards, or undefined when there is no such release.
   */
  yankRelease(product: string, channel: string, version: string, at: Date): Promise<ReleaseRecord | undefined>;

  /** Adds a delta and its metadata (deltas, snapshot, timestamp) in one transaction; StoreConflictError on a duplicate. */
  addDelta(delta: DeltaRecord, metadata: MetadataRecord[]): Promise<void>;
  /** Deltas of a product (to one version when given), oldest first. */
  listDeltas(product: string, toVersion?: string): Promise<DeltaRecord[]>;
  /** Marks a delta failed; returns false when there is no such delta. */
  markDeltaFailed(product: string, target: string): Promise<boolean>;
  /** How many distinct devices of `product` sent a `delta-failed` report naming `target` (its `detail`). */
  countDeltaFailedDevices(product: string, target: string): Promise<number>;

  /** Sets (replaces) the moved notice and adds its metadata in one transaction. */
  setMoved(moved: MovedRecord, metadata: MetadataRecord[]): Promise<void>;
  getMoved(product: string): Promise<MovedRecord | undefined>;

  setSchedule(schedule: ScheduleRecord): Promise<void>;
  getSchedule(product: string, channel: string): Promise<ScheduleRecord | undefined>;
  listSchedules(): Promise<ScheduleRecord[]>;

  /** Issue 11: creates or replaces the rollout of (product, channel, version). */
  putRollout(rollout: RolloutRecord): Promise<void>;
  /** Every rollout (of one product when given), by product, channel, then publication order. */
  listRollouts(product?: string): Promise<RolloutRecord[]>;
  /**
   * Distinct devices of product/channel whose reports attempted `version`: `applied` with that
   * version, `rolled-back` from it (toVersion or previousVersion), `failed` for it (toVersion, or
   * from older agents a detail starting "update to VERSION failed" / "first install: update to VERSION failed").
   */
  countRolloutOutcomes(product: string, channel: string, version: string): Promise<RolloutOutcomes>;

  getDevice(deviceId: string, product: string): Promise<DeviceRecord | undefined>;
  /** The device records of these keys, in their order (undefined: none), in one pass: a sync page's reads (bounded by its size). */
  getDevices(keys: Array<{ deviceId: string; product: string }>): Promise<Array<DeviceRecord | undefined>>;
  /**
   * Applies a batch of sightings in one transaction: unknown (deviceId, product) pairs are added
   * (first seen = seenAt, version null); known ones get lastSeenAt = max(old, seenAt), channel and source.
   */
  recordSightings(batch: Sighting[]): Promise<void>;
  /**
   * Records a device's report in one transaction: appends it to the history (dropping the oldest
   * beyond REPORTS_KEPT_PER_DEVICE), adds the device if unknown, sets lastReportAt/lastSeenAt/source
   * and lastEvent, and sets the applied version for `applied` and `rolled-back` (not for the
   * others). Returns the device as it is afterwards.
   */
  recordReport(report: ReportRecord): Promise<DeviceRecord>;
  /** Every device (of one product when given), by product then device id. Unbounded: servers list pages. */
  listDevices(filter?: { product?: string }): Promise<DeviceRecord[]>;
  /**
   * At most `limit` devices matching `filter` after the cursor `after` (null: from the start), in
   * primary-key order (device id, then product). Product, version, last event and id prefix are
   * served by indexes ordered by device id, so a page reads `limit` + 1 rows from where the last
   * one ended whatever the registry's size; a filter no index serves (seenBefore, or version with
   * lastEvent) reads at most DEVICE_PAGE_SCAN rows per page, so such a page may be short, even
   * empty, with `next` set. A device added or removed between pages is listed or not, never
   * twice; the others are each listed once. InvalidCursorError when `after` is not a cursor of this store's form.
   */
  listDevicePage(filter: DeviceFilter, after: string | null, limit: number): Promise<DevicePage>;
  /**
   * Removes a device's record, its report history and its identity (key binding) in one
   * transaction; false when there was none of them. It leaves no trace in the change feed: a later
   * auth enrols it as new.
   */
  removeDevice(deviceId: string, product: string): Promise<boolean>;
  /** The device's kept reports (at most REPORTS_KEPT_PER_DEVICE), oldest first. */
  listReports(deviceId: string, product: string): Promise<ReportRecord[]>;
  /**
   * The device records changed after the cursor `after` (null: every record), in the order the
   * changes were made, at most `limit`; `next` continues from the last one. A record changed again
   * moves to the end of the feed, and every change committed after a page was read comes after
   * that page's `next`, so paging never skips one. A write that changes nothing does not move the
   * record. Consolidation pulls a mirror's changes, and pushes its own, with it.
   * InvalidCursorError when `after` does not have the form of this store's cursors (a cursor of
   * that form that it never handed out reads as a position in its feed).
   */
  listDeviceChanges(after: ChangeCursor | null, limit: number): Promise<DeviceChanges>;
  /**
   * Merges records from another server into this store in one transaction with mergeDevice()
   * (src/store/device-merge.ts): unknown devices are added, known ones merged. Returns the
   * records that changed, as stored afterwards (their updatedAt set to now, moved to the end of the
   * change feed). `updatedAt` of the incoming records is ignored. With `fromUpstream` (a mirror
   * merging the primary's push), a row that becomes exactly the incoming record keeps its old
   * updatedAt (0 when new) and its place in the feed (when new: before every cursor already
   * handed out): the primary holds that state already, so its next pull need not hand it back.
   * With `heldBy` (the primary merging a mirror's page: that mirror's storeId), a row written as
   * exactly the incoming record is marked as held by that mirror (listDeviceChanges `heldBy`)
   * until it changes again; any other write clears the mark.
   */
  mergeDevices(records: DeviceRecord[], opts?: { fromUpstream?: boolean; heldBy?: string }): Promise<DeviceRecord[]>;
  /**
   * Moves a device's record, unchanged but for its updatedAt, to the end of the change feed: its
   * identity changed (accept, reject), so consolidation pushes it, with the new binding, to the
   * mirrors. False when there is no such record.
   */
  touchDevice(deviceId: string, product: string): Promise<boolean>;

  /**
   * Adds a mirror or refreshes its announcedAt. The sync state is kept, unless `storeId` (the
   * mirror's own store identity) differs from the one recorded: then the mirror lost or replaced
   * its store, and both cursors are reset so the next consolidation re-syncs it in full. A new
   * mirror is `pending`; a known one keeps its state. Returns the state.
   */
  upsertMirror(url: string, announcedAt: Date, storeId?: string): Promise<MirrorState>;
  /** Marks a mirror approved at `at` (an approved one keeps its first approvedAt); false when there is none. */
  approveMirror(url: string, at: Date): Promise<boolean>;
  listMirrors(): Promise<MirrorRecord[]>;
  /** Forgets a mirror and its sync state; false when there was none. A later upsertMirror adds it anew. */
  removeMirror(url: string): Promise<boolean>;
  /** Records the outcome of one consolidation attempt with a mirror. */
  updateMirror(url: string, update: MirrorUpdate): Promise<void>;

  /** Sets a product's admission policy; false when there is no such product. */
  setAdmission(product: string, policy: AdmissionPolicy): Promise<boolean>;
  getIdentity(deviceId: string, product: string): Promise<DeviceIdentityRecord | undefined>;
  /** The identities of these devices, in their order (undefined: none), in one pass: a sync page's reads (bounded by its size). */
  getIdentities(keys: Array<{ deviceId: string; product: string }>): Promise<Array<DeviceIdentityRecord | undefined>>;
  /** Adds an identity unless one exists for (deviceId, product); true when it was added. */
  addIdentity(identity: DeviceIdentityRecord): Promise<boolean>;
  /**
   * addIdentity for a batch, in one transaction: each identity is added unless one exists for its
   * (deviceId, product), whoever wrote it (a concurrent /v1/auth wins if it came first); per
   * identity, in their order, true when it was added (of two for one device only the first can
   * be). The primary enrolling the new devices of a mirror's page (one write per page).
   */
  addIdentities(identities: DeviceIdentityRecord[]): Promise<boolean[]>;
  /** Replaces an existing identity (status, keys, pending key); false when there is none. */
  updateIdentity(identity: DeviceIdentityRecord): Promise<boolean>;
  /**
   * Writes identities in one transaction, each added or replacing the one of its (deviceId,
   * product), the later of two for one device winning: a mirror applying the bindings of a pushed
   * page (one write per page, not per device).
   */
  putIdentities(identities: DeviceIdentityRecord[]): Promise<void>;
  /** Identities ordered by product and device id (of one product when given; with a pending key only when `conflicts`). */
  listIdentities(filter?: { product?: string; conflicts?: boolean }): Promise<DeviceIdentityRecord[]>;
  /** Identities of a product (the per-product device cap counts them). */
  countIdentities(product: string): Promise<number>;
  /** Identities with a pending key (identity conflicts, alarm `identity-conflict`), of every product: GET /metrics counts them. */
  countIdentityConflicts(): Promise<number>;
  /** Adds or replaces a preauthorisation. */
  putPreauthorization(p: PreauthorizationRecord): Promise<void>;
  getPreauthorization(deviceId: string, product: string): Promise<PreauthorizationRecord | undefined>;
  /** The preauthorisations of these devices, in their order (undefined: none), in one pass (bounded by the caller's page). */
  getPreauthorizations(keys: Array<{ deviceId: string; product: string }>): Promise<Array<PreauthorizationRecord | undefined>>;

  /** Number of devices per applied version (`null` version counted under the key `none`). */
  countVersions(filter?: { product?: string }): Promise<Record<string, number>>;
  countDevices(filter?: { product?: string }): Promise<number>;
  /** Devices per product, channel and applied version, ordered by product, channel, version. */
  countChannelVersions(filter?: { product?: string }): Promise<ChannelVersionCount[]>;

  /**
   * Deletes the snapshots taken before `keepAfter` (bounded retention), then stores one fleet
   * snapshot (every row at `at`, one statement, so a snapshot is stored whole or not at all).
   * No rows: nothing is stored.
   */
  addVersionSnapshot(at: Date, counts: ChannelVersionCount[], keepAfter: Date): Promise<void>;
  /**
   * Snapshot rows taken at or after `since` (of one product when given), oldest first, then by
   * product, channel and version; at most `limit` rows (the oldest ones).
   */
  listVersionSnapshots(filter: { product?: string; since: Date }, limit: number): Promise<VersionSnapshotRow[]>;
  /** When the newest snapshot was taken, or null when there is none. */
  latestVersionSnapshotAt(): Promise<Date | null>;
}
