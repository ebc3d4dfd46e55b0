import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { hawkbitMigration, heldByMigration, menderMigration, rolloutsMigration } from '../sqlite/migrations.js';

/**
 * The PostgreSQL schema, kept in code like SQLite's (src/store/sqlite/migrations.ts) and with the
 * same meaning as SQLite's 0001..0008 at their end: no PostgreSQL database predates this
 * backend, so its history starts with one migration holding everything. Names are a frozen
 * on-disk format: never edit a shipped migration, add the next one.
 *
 * Times are bigint milliseconds since the epoch, as in SQLite, so a Date round-trips to the
 * millisecond and the row converters are shared (the pool parses int8 as a JS number). Every
 * text column is COLLATE "C": ordering and range cursors (device pages, listings by name) are by
 * code point, as SQLite's BINARY collation, whatever locale the database was created with.
 */
const T = 'text COLLATE "C"';

const INITIAL = `
CREATE TABLE settings (key ${T} PRIMARY KEY, value ${T} NOT NULL);
CREATE TABLE products (
  name ${T} PRIMARY KEY,
  created_at bigint NOT NULL,
  admission ${T} NOT NULL DEFAULT 'auto'
);
CREATE TABLE metadata (
  product ${T} NOT NULL REFERENCES products (name),
  role ${T} NOT NULL,
  version integer NOT NULL,
  json ${T} NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (product, role, version)
);
-- seq: the publication order listReleases returns.
CREATE TABLE releases (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  product ${T} NOT NULL REFERENCES products (name),
  channel ${T} NOT NULL,
  version ${T} NOT NULL,
  target ${T} NOT NULL,
  sha256 ${T} NOT NULL,
  length bigint NOT NULL,
  tree_hash ${T} NOT NULL,
  created_at bigint NOT NULL,
  yanked_at bigint,
  CONSTRAINT releases_version_unique UNIQUE (product, channel, version)
);
CREATE TABLE moved (
  product ${T} PRIMARY KEY REFERENCES products (name),
  url ${T} NOT NULL,
  target ${T} NOT NULL,
  sha256 ${T} NOT NULL,
  set_at bigint NOT NULL
);
CREATE TABLE schedules (
  product ${T} NOT NULL REFERENCES products (name),
  channel ${T} NOT NULL,
  at bigint NOT NULL,
  spread_seconds integer NOT NULL,
  set_at bigint NOT NULL,
  PRIMARY KEY (product, channel)
);
CREATE TABLE deltas (
  product ${T} NOT NULL REFERENCES products (name),
  channel ${T} NOT NULL,
  from_version ${T} NOT NULL,
  to_version ${T} NOT NULL,
  target ${T} NOT NULL,
  sha256 ${T} NOT NULL,
  length bigint NOT NULL,
  engine ${T} NOT NULL,
  created_at bigint NOT NULL,
  failed integer NOT NULL DEFAULT 0,
  PRIMARY KEY (product, target)
);
-- Local positions in the change feed (devices.change_seq). Taken only under the device-feed lock
-- (postgres-store.ts #deviceWrite), so the order of positions is the order of commits; rows learnt
-- from upstream count down from 0 instead. A sequence, unlike max(change_seq) + 1, never hands out
-- a position again after the newest row was removed.
CREATE SEQUENCE devices_change_seq AS bigint;
-- No foreign key to products: one sighting of an unexpected product must not abort its batch.
CREATE TABLE devices (
  device_id ${T} NOT NULL,
  product ${T} NOT NULL,
  channel ${T} NOT NULL,
  version ${T},
  first_seen_at bigint NOT NULL,
  last_seen_at bigint NOT NULL,
  last_report_at bigint,
  source ${T} NOT NULL,
  updated_at bigint NOT NULL,
  change_seq bigint NOT NULL,
  PRIMARY KEY (device_id, product)
);
CREATE INDEX devices_product_version ON devices (product, version);
CREATE INDEX devices_change_seq_idx ON devices (change_seq);
CREATE TABLE reports (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id ${T} NOT NULL,
  product ${T} NOT NULL,
  channel ${T} NOT NULL,
  event ${T} NOT NULL,
  version ${T},
  previous_version ${T},
  detail ${T},
  at bigint NOT NULL,
  source ${T} NOT NULL
);
CREATE INDEX reports_device ON reports (device_id, product);
CREATE INDEX reports_delta_failed ON reports (product, detail, device_id) WHERE event = 'delta-failed';
CREATE TABLE mirrors (
  url ${T} PRIMARY KEY,
  announced_at bigint NOT NULL,
  store_id ${T},
  pull_after ${T},
  push_after ${T},
  last_sync_at bigint,
  last_attempt_at bigint,
  pulled integer NOT NULL DEFAULT 0,
  pushed integer NOT NULL DEFAULT 0,
  error ${T},
  state ${T} NOT NULL DEFAULT 'pending',
  approved_at bigint,
  skipped integer NOT NULL DEFAULT 0,
  skipped_why ${T}
);
CREATE TABLE device_identities (
  device_id ${T} NOT NULL,
  product ${T} NOT NULL,
  channel ${T} NOT NULL,
  public_key ${T} NOT NULL,
  key_id ${T} NOT NULL,
  status ${T} NOT NULL,
  pending_public_key ${T},
  pending_key_id ${T},
  pending_at bigint,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (device_id, product)
);
CREATE INDEX device_identities_product ON device_identities (product, pending_key_id);
CREATE TABLE preauthorizations (
  device_id ${T} NOT NULL,
  product ${T} NOT NULL,
  public_key ${T},
  created_at bigint NOT NULL,
  PRIMARY KEY (device_id, product)
);
`;

/**
 * Device history and filtered listings (issue 11), as SQLite's 0011_device_history: the latest
 * report's event per device, the release and failing state of a report, and for each page filter
 * an index ordered by device id after its equalities (PostgreSQL indexes do not end with the
 * primary key by themselves, so device_id is named). (product, version, device_id) replaces
 * (product, version), which it also serves. reports_device gains id: a device's history, newest
 * first, and the trim of its oldest rows are one range of it. last_seen_at has no index on
 * purpose: sightings rewrite it all the time (and keep their updates HOT).
 */
const DEVICE_HISTORY = `
ALTER TABLE devices ADD COLUMN last_event ${T};
UPDATE devices d SET last_event = (SELECT r.event FROM reports r WHERE r.device_id = d.device_id AND r.product = d.product ORDER BY r.id DESC LIMIT 1)
  WHERE last_report_at IS NOT NULL;
ALTER TABLE reports ADD COLUMN to_version ${T}, ADD COLUMN state ${T};
CREATE INDEX devices_product_page ON devices (product, device_id);
CREATE INDEX devices_version_page ON devices (version, device_id, product);
CREATE INDEX devices_product_version_page ON devices (product, version, device_id);
DROP INDEX devices_product_version;
CREATE INDEX devices_event_page ON devices (last_event, device_id, product);
CREATE INDEX devices_product_event_page ON devices (product, last_event, device_id);
CREATE INDEX reports_device_history ON reports (device_id, product, id);
DROP INDEX reports_device;
`;

export const pgMigrations: Readonly<Record<string, Migration>> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await sql.raw(INITIAL).execute(db);
    },
  },
  // GET /metrics counts devices per product, channel and version at scrape time (as SQLite's 0009).
  '0009_metrics_channel_versions': {
    async up(db: Kysely<any>): Promise<void> {
      await sql`CREATE INDEX devices_product_channel_version ON devices (product, channel, version)`.execute(db);
    },
  },
  // The dashboard's fleet chart (issue 11), as SQLite's migration of the same name.
  '0010_version_snapshots': {
    async up(db: Kysely<any>): Promise<void> {
      await sql.raw(`
CREATE TABLE version_snapshots (
  at bigint NOT NULL,
  product ${T} NOT NULL,
  channel ${T} NOT NULL,
  version ${T},
  devices integer NOT NULL
);
CREATE INDEX version_snapshots_at ON version_snapshots (at, product);
`).execute(db);
    },
  },
  '0011_device_history': {
    async up(db: Kysely<any>): Promise<void> {
      await sql.raw(DEVICE_HISTORY).execute(db);
    },
  },
  // Staged rollouts (issue 11), as SQLite's 0012_rollouts.
  '0012_rollouts': rolloutsMigration(T, 'bigint'),
  // The Mender device API (issue 12), as SQLite's 0013_mender.
  '0013_mender': menderMigration(),
  // hawkBit DDI (issue 12), as SQLite's 0014_hawkbit; serial: an int4 action id.
  '0014_hawkbit': hawkbitMigration(T, 'bigint', 'serial PRIMARY KEY'),
  // Which mirror holds a device row exactly as it is (issue 10), as SQLite's 0015_held_by.
  '0015_held_by': heldByMigration(T, 'bigint'),
};

class InCodeMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return pgMigrations;
  }
}

/**
 * Applies pending migrations. kysely's Migrator (0.28) on PostgreSQL takes a session advisory
 * lock (pg_advisory_lock, its own fixed key) on one connection, reads the applied migrations and
 * runs the pending ones in one transaction on that connection, then unlocks; it creates its
 * bookkeeping tables tolerating a concurrent creator. So processes starting together on one
 * database apply each migration once (test/postgres-store.test.ts starts two at once).
 */
export async function migratePg(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider: new InCodeMigrationProvider() });
  const { error } = await migrator.migrateToLatest();
  if (error) throw new Error('database migration failed', { cause: error });
}
