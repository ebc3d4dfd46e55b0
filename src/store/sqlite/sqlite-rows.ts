/** Row <-> record conversions: integer milliseconds in the database, Date at the Store boundary. */
import type { Selectable } from 'kysely';
import type { MergeableDevice } from '../device-merge.js';
import type {
  DeviceBinding, DeviceRecord, MetadataRecord, MetadataRole, MirrorRecord, MovedRecord, ProductRecord, ReleaseRecord, ReportKind,
  ReportRecord, ScheduleRecord,
} from '../store.js';
import type {
  DevicesTable, MetadataTable, MirrorsTable, MovedTable, ProductsTable, ReleasesTable, ReportsTable, SchedulesTable,
} from './sqlite-schema.js';

export const toProduct = (r: ProductsTable): ProductRecord => ({
  name: r.name, createdAt: new Date(r.created_at), admission: r.admission === 'approve' ? 'approve' : 'auto',
  ...(r.mender_dest ? { menderDest: r.mender_dest } : {}),
});

export const toMetadata = (r: MetadataTable): MetadataRecord => ({
  product: r.product,
  role: r.role as MetadataRole,
  version: r.version,
  json: r.json,
  expiresAt: new Date(r.expires_at),
});

export const metadataRow = (m: MetadataRecord): MetadataTable => ({
  product: m.product,
  role: m.role,
  version: m.version,
  json: m.json,
  expires_at: m.expiresAt.getTime(),
});

export const toRelease = (r: Omit<Selectable<ReleasesTable>, 'seq'>): ReleaseRecord => ({
  product: r.product,
  channel: r.channel,
  version: r.version,
  target: r.target,
  sha256: r.sha256,
  length: r.length,
  treeHash: r.tree_hash,
  createdAt: new Date(r.created_at),
  // Only a yanked release carries the field (see ReleaseRecord.yankedAt).
  ...(r.yanked_at !== null ? { yankedAt: new Date(r.yanked_at) } : {}),
});

export const toMoved = (r: MovedTable): MovedRecord => ({
  product: r.product,
  url: r.url,
  target: r.target,
  sha256: r.sha256,
  setAt: new Date(r.set_at),
});

export const toSchedule = (r: SchedulesTable): ScheduleRecord => ({
  product: r.product,
  channel: r.channel,
  at: new Date(r.at),
  spreadSeconds: r.spread_seconds,
  setAt: new Date(r.set_at),
});

export const toDevice = (r: DevicesTable): DeviceRecord => ({
  deviceId: r.device_id,
  product: r.product,
  channel: r.channel,
  version: r.version,
  firstSeenAt: new Date(r.first_seen_at),
  lastSeenAt: new Date(r.last_seen_at),
  lastReportAt: r.last_report_at === null ? null : new Date(r.last_report_at),
  source: r.source,
  updatedAt: new Date(r.updated_at),
  // Only a device that reported carries the field (see DeviceRecord.lastEvent).
  ...(r.last_event !== null && r.last_event !== undefined ? { lastEvent: r.last_event as ReportKind } : {}),
});

/** A device row as mergeDevice() sees it (times in ms), and back. */
export const toMergeable = (d: DeviceRecord): MergeableRow => ({
  deviceId: d.deviceId,
  product: d.product,
  channel: d.channel,
  version: d.version,
  firstSeenAt: d.firstSeenAt.getTime(),
  lastSeenAt: d.lastSeenAt.getTime(),
  lastReportAt: d.lastReportAt === null ? null : d.lastReportAt.getTime(),
  source: d.source,
  lastEvent: d.lastEvent ?? null,
});

export const rowToMergeable = (r: DevicesTable): MergeableRow => ({
  deviceId: r.device_id,
  product: r.product,
  channel: r.channel,
  version: r.version,
  firstSeenAt: r.first_seen_at,
  lastSeenAt: r.last_seen_at,
  lastReportAt: r.last_report_at,
  source: r.source,
  lastEvent: r.last_event ?? null,
});

export const mergeableToDevice = (m: MergeableRow, updatedAt: number): DeviceRecord => ({
  deviceId: m.deviceId,
  product: m.product,
  channel: m.channel,
  version: m.version,
  firstSeenAt: new Date(m.firstSeenAt),
  lastSeenAt: new Date(m.lastSeenAt),
  lastReportAt: m.lastReportAt === null ? null : new Date(m.lastReportAt),
  source: m.source,
  updatedAt: new Date(updatedAt),
  ...(m.lastEvent !== null ? { lastEvent: m.lastEvent as ReportKind } : {}),
});

export interface MergeableRow extends MergeableDevice {
  deviceId: string;
  product: string;
}

export const toMirror = (r: MirrorsTable): MirrorRecord => ({
  url: r.url,
  announcedAt: new Date(r.announced_at),
  state: r.state === 'approved' ? 'approved' : 'pending',
  approvedAt: r.approved_at === null ? null : new Date(r.approved_at),
  cursor: r.pull_after,
  pushCursor: r.push_after,
  storeId: r.store_id,
  lastSyncAt: r.last_sync_at === null ? null : new Date(r.last_sync_at),
  lastAttemptAt: r.last_attempt_at === null ? null : new Date(r.last_attempt_at),
  pulled: r.pulled,
  pushed: r.pushed,
  error: r.error,
  skipped: r.skipped,
  skippedWhy: r.skipped_why,
});

export const toReport = (r: Omit<Selectable<ReportsTable>, 'id'>): ReportRecord => ({
  deviceId: r.device_id,
  product: r.product,
  channel: r.channel,
  event: r.event as ReportKind,
  version: r.version,
  previousVersion: r.previous_version,
  detail: r.detail,
  at: new Date(r.at),
  source: r.source,
  // Only reports that carry them (agents since issue 11) have the fields.
  ...(r.to_version !== null && r.to_version !== undefined ? { toVersion: r.to_version } : {}),
  ...(r.state !== null && r.state !== undefined ? { state: r.state } : {}),
});

/**
 * A row of CHANGED_AFTER_SQL read as an array (better-sqlite3 raw mode: the feed is read a page of
 * 5000 at a time, and an object per row cost ~20% of the read): the DEVICE_READ_COLUMNS in order,
 * then `held` and the binding's public key, key id and status.
 */
export type ChangeRow = [
  device_id: string, product: string, channel: string, version: string | null, first_seen_at: number, last_seen_at: number,
  last_report_at: number | null, source: string, updated_at: number, change_seq: number, last_event: string | null,
  held: string | null, bound_public_key: string | null, bound_key_id: string | null, bound_status: string | null,
];

/** toDevice of a ChangeRow. */
export const changeRowToDevice = (r: ChangeRow): DeviceRecord => ({
  deviceId: r[0], product: r[1], channel: r[2], version: r[3], firstSeenAt: new Date(r[4]), lastSeenAt: new Date(r[5]),
  lastReportAt: r[6] === null ? null : new Date(r[6]), source: r[7], updatedAt: new Date(r[8]),
  ...(r[10] !== null ? { lastEvent: r[10] as ReportKind } : {}),
});

/** toBinding of a ChangeRow. */
export const changeRowToBinding = (r: ChangeRow): DeviceBinding | null => (r[12] === null || r[13] === null ? null
  : { publicKey: r[12], keyId: r[13], status: r[14] as DeviceBinding['status'] });

/** The columns listDeviceChanges reads besides the device's (device-sql.ts CHANGED_AFTER_SQL; PostgreSQL's CHANGED_AFTER alike). */
export interface ChangeExtras {
  held: string | null;
  bound_public_key: string | null;
  bound_key_id: string | null;
  bound_status: string | null;
}

export const toBinding = (r: ChangeExtras): DeviceBinding | null => (r.bound_public_key === null || r.bound_key_id === null ? null
  : { publicKey: r.bound_public_key, keyId: r.bound_key_id, status: r.bound_status as DeviceBinding['status'] });
