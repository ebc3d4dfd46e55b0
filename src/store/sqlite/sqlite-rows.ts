/** Row <-> record conversions: integer milliseconds in the database, Date at the Store boundary. */
import type { Selectable } from 'kysely';
import type {
  DeviceRecord, MetadataRecord, MetadataRole, MovedRecord, ProductRecord, ReleaseRecord, ReportKind,
  ReportRecord, ScheduleRecord,
} from '../store.js';
import type {
  DevicesTable, MetadataTable, MovedTable, ProductsTable, ReleasesTable, ReportsTable, SchedulesTable,
} from './sqlite-schema.js';

export const toProduct = (r: ProductsTable): ProductRecord => ({ name: r.name, createdAt: new Date(r.created_at) });

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
});
