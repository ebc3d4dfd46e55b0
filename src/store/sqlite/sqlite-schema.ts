/**
 * Kysely table types of the SQLite schema (see migrations.ts). Times are integer milliseconds
 * since the epoch; sqlite-rows.ts converts them to Date at the Store boundary.
 */
import type { Generated } from 'kysely';

export interface SettingsTable { key: string; value: string }

export interface ProductsTable { name: string; created_at: number; /** Migration 0006. */ admission: string; /** Migration 0013. */ mender_dest?: string | null }

/** Migration 0006: the key each device is bound to. */
export interface DeviceIdentitiesTable {
  device_id: string;
  product: string;
  channel: string;
  public_key: string;
  key_id: string;
  status: string;
  pending_public_key: string | null;
  pending_key_id: string | null;
  pending_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface PreauthorizationsTable { device_id: string; product: string; public_key: string | null; created_at: number }

export interface MetadataTable {
  product: string;
  role: string;
  version: number;
  json: string;
  expires_at: number;
}

export interface DeltasTable {
  product: string;
  channel: string;
  from_version: string;
  to_version: string;
  target: string;
  sha256: string;
  length: number;
  engine: string;
  created_at: number;
  failed: number;
}

export interface ReleasesTable {
  /** Autoincrement: the publication order listReleases returns. */
  seq: Generated<number>;
  product: string;
  channel: string;
  version: string;
  target: string;
  sha256: string;
  length: number;
  tree_hash: string;
  created_at: number;
  /** When it was yanked, or null; migration 0005. */
  yanked_at: Generated<number | null>;
}

export interface MovedTable { product: string; url: string; target: string; sha256: string; set_at: number }

/** Migration 0012_rollouts (issue 11); `phases` is a JSON array of percents. */
export interface RolloutsTable {
  product: string; channel: string; version: string; phases: string; phase: number; state: string;
  every_seconds: number | null; halt_at: number | null; min_devices: number; phase_started_at: number; updated_at: number;
}

export interface SchedulesTable { product: string; channel: string; at: number; spread_seconds: number; set_at: number }

export interface DevicesTable {
  device_id: string;
  product: string;
  channel: string;
  version: string | null;
  first_seen_at: number;
  last_seen_at: number;
  last_report_at: number | null;
  source: string;
  /** When this store last wrote the row; migration 0002. */
  updated_at: number;
  /** Position in the change feed (the ChangeCursor); migration 0004. */
  change_seq: number;
  /** The latest report's event, null: never reported; migration 0011_device_history. */
  last_event: string | null;
  /**
   * Migration 0015_held_by: the storeId of the mirror whose record this row was written as, and
   * the change_seq it was written at (the mark holds while change_seq is still that one).
   */
  held_by?: string | null;
  held_seq?: number | null;
}

export interface MirrorsTable {
  url: string;
  announced_at: number;
  store_id: string | null;
  /** The mirror's ChangeCursor, opaque here. */
  pull_after: string | null;
  /** This store's ChangeCursor (change_seq as text). */
  push_after: string | null;
  last_sync_at: number | null;
  last_attempt_at: number | null;
  pulled: number;
  pushed: number;
  error: string | null;
  /** 'pending' | 'approved'; migration 0007. */
  state: string;
  approved_at: number | null;
  skipped: number;
  skipped_why: string | null;
}

export interface ReportsTable {
  id: Generated<number>;
  device_id: string;
  product: string;
  channel: string;
  event: string;
  version: string | null;
  previous_version: string | null;
  detail: string | null;
  at: number;
  source: string;
  /** Migration 0011_device_history: the release the update concerned, and the state that failed. */
  to_version: string | null;
  state: string | null;
}

/** Migration 0010_version_snapshots: the fleet's devices per version over time (the dashboard's chart). */
export interface VersionSnapshotsTable { at: number; product: string; channel: string; version: string | null; devices: number }

export interface SqliteSchema {
  settings: SettingsTable;
  products: ProductsTable;
  metadata: MetadataTable;
  releases: ReleasesTable;
  deltas: DeltasTable;
  moved: MovedTable;
  schedules: SchedulesTable;
  rollouts: RolloutsTable;
  devices: DevicesTable;
  reports: ReportsTable;
  mirrors: MirrorsTable;
  device_identities: DeviceIdentitiesTable;
  preauthorizations: PreauthorizationsTable;
  version_snapshots: VersionSnapshotsTable;
}
