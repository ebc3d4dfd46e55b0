import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { migration0007 } from './migration-0007.js';

/**
 * Schema migrations, kept in code so the compiled package needs no migration files on disk.
 * Names sort in order of application and are a frozen on-disk format: never rename or edit a
 * migration that has shipped; add a new one.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createTable('products')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createTable('metadata')
        .addColumn('product', 'text', (c) => c.notNull().references('products.name'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('metadata_pk', ['product', 'role', 'version'])
        .execute();
      await db.schema.createTable('releases')
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('product', 'text', (c) => c.notNull().references('products.name'))
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('length', 'integer', (c) => c.notNull())
        .addColumn('tree_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addUniqueConstraint('releases_version_unique', ['product', 'channel', 'version'])
        .execute();
      await db.schema.createTable('moved')
        .addColumn('product', 'text', (c) => c.primaryKey().references('products.name'))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('set_at', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createTable('schedules')
        .addColumn('product', 'text', (c) => c.notNull().references('products.name'))
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('at', 'integer', (c) => c.notNull())
        .addColumn('spread_seconds', 'integer', (c) => c.notNull())
        .addColumn('set_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('schedules_pk', ['product', 'channel'])
        .execute();
      // Devices carry no foreign key to products: one sighting of an unexpected product must not
      // abort the whole batch. WITHOUT ROWID makes the primary key the table itself, so the hot
      // getDevice lookup is one b-tree descent with no second lookup by rowid.
      await db.schema.createTable('devices')
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('first_seen_at', 'integer', (c) => c.notNull())
        .addColumn('last_seen_at', 'integer', (c) => c.notNull())
        .addColumn('last_report_at', 'integer')
        .addColumn('source', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('devices_pk', ['device_id', 'product'])
        .modifyEnd(sql`without rowid`)
        .execute();
      // Serves listDevices / countVersions / countDevices filtered by product.
      await db.schema.createIndex('devices_product_version').on('devices').columns(['product', 'version']).execute();
      await db.schema.createTable('reports')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('previous_version', 'text')
        .addColumn('detail', 'text')
        .addColumn('at', 'integer', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('reports_device').on('reports').columns(['device_id', 'product']).execute();
    },
  },
  // Mirror consolidation: a change time per device row (the cursor a primary pulls a mirror's
  // changes with) and the primary's list of mirrors with the state of their last sync.
  '0002_mirror_consolidation': {
    async up(db: Kysely<any>): Promise<void> {
      // SQLite adds a NOT NULL column only with a default; every write sets it explicitly, and
      // existing rows last changed at their last sighting at the latest.
      await db.schema.alterTable('devices')
        .addColumn('updated_at', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.updateTable('devices').set((eb) => ({ updated_at: eb.ref('last_seen_at') })).execute();
      // Served listDevicesChangedSince (now listDeviceChanges, 0004): in a WITHOUT ROWID table a secondary index carries the
      // primary key, so this index is ordered by (updated_at, device_id, product) as the query is.
      await db.schema.createIndex('devices_updated_at').on('devices').column('updated_at').execute();
      await db.schema.createTable('mirrors')
        .addColumn('url', 'text', (c) => c.primaryKey())
        .addColumn('announced_at', 'integer', (c) => c.notNull())
        .addColumn('store_id', 'text')
        .addColumn('cursor', 'integer')
        .addColumn('push_cursor', 'integer')
        .addColumn('last_sync_at', 'integer')
        .addColumn('last_attempt_at', 'integer')
        .addColumn('pulled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('pushed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('error', 'text')
        .execute();
    },
  },
  '0003_deltas': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createTable('deltas')
        .addColumn('product', 'text', (c) => c.notNull().references('products.name'))
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('from_version', 'text', (c) => c.notNull())
        .addColumn('to_version', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('length', 'integer', (c) => c.notNull())
        .addColumn('engine', 'text', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('deltas_pk', ['product', 'target'])
        .execute();
    },
  },
  // Change cursors: a position in this store's change feed per device row (a sequence, so the
  // pull and push cursors no longer depend on the clock), and the mirrors' cursors as opaque text.
  '0004_change_cursors': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('devices')
        .addColumn('change_seq', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // The existing history in its old order, (updated_at, device_id, product). Rows learnt from
      // the primary and never changed here (updated_at 0) take 1-z..0, before every local change.
      await sql`
        UPDATE devices SET change_seq = ranked.n - (SELECT count(*) FROM devices WHERE updated_at = 0)
        FROM (SELECT device_id, product, row_number() OVER (ORDER BY updated_at, device_id, product) AS n FROM devices) AS ranked
        WHERE ranked.device_id = devices.device_id AND ranked.product = devices.product`.execute(db);
      await db.schema.createIndex('devices_change_seq').on('devices').column('change_seq').execute();
      // The feed and the newest change time are both read through devices_change_seq now.
      await db.schema.dropIndex('devices_updated_at').execute();
      await db.schema.alterTable('mirrors').addColumn('pull_after', 'text').execute();
      await db.schema.alterTable('mirrors').addColumn('push_after', 'text').execute();
      // The push cursor (this store's time) converts exactly: the last row changed before it. The
      // pull cursor is the mirror's time, which only the mirror could convert: it starts over
      // (one full pull; the merge is idempotent).
      await sql`
        UPDATE mirrors SET push_after = (SELECT CAST(max(change_seq) AS TEXT) FROM devices WHERE updated_at < mirrors.push_cursor)
        WHERE push_cursor IS NOT NULL`.execute(db);
      await db.schema.alterTable('mirrors').dropColumn('cursor').execute();
      await db.schema.alterTable('mirrors').dropColumn('push_cursor').execute();
    },
  },
  // Yanked releases (`patchwire release yank`): the time of the yank, null while offered.
  '0005_release_yank': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('releases').addColumn('yanked_at', 'integer').execute();
    },
  },
  // Device identity (issue 9): each product's admission policy, the key each device is bound to
  // (with its status and a key waiting after an identity conflict), and preauthorised MACs.
  '0006_device_identity': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('products').addColumn('admission', 'text', (c) => c.notNull().defaultTo('auto')).execute();
      await db.schema.createTable('device_identities')
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('pending_public_key', 'text')
        .addColumn('pending_key_id', 'text')
        .addColumn('pending_at', 'integer')
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('device_identities_pk', ['device_id', 'product'])
        .modifyEnd(sql`without rowid`)
        .execute();
      await db.schema.createIndex('device_identities_product').on('device_identities').columns(['product', 'pending_key_id']).execute();
      await db.schema.createTable('preauthorizations')
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text')
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('preauthorizations_pk', ['device_id', 'product'])
        .execute();
    },
  },
  '0007_mirror_approval': migration0007,
  // delta-failed threshold (issue 9): distinct devices per (product, delta target), counted from
  // the stored reports; a partial index holds only the (rare) delta-failed rows.
  '0008_delta_failed_reports': {
    async up(db: Kysely<any>): Promise<void> {
      await sql`CREATE INDEX reports_delta_failed ON reports (product, detail, device_id) WHERE event = 'delta-failed'`.execute(db);
    },
  },
  // GET /metrics (issue 11) counts devices per product, channel and version at scrape time: a
  // covering index makes that one index scan (100,000 devices: ~30 ms instead of ~170-590 ms with
  // a temporary b-tree, during which better-sqlite3 holds the event loop).
  '0009_metrics_channel_versions': {
    async up(db: Kysely<any>): Promise<void> {
      await sql`CREATE INDEX devices_product_channel_version ON devices (product, channel, version)`.execute(db);
    },
  },
  // The dashboard's fleet chart (issue 11): devices per product, channel and version, taken
  // periodically; rows older than the retention are deleted when a snapshot is added.
  '0010_version_snapshots': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createTable('version_snapshots')
        .addColumn('at', 'integer', (c) => c.notNull())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('devices', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('version_snapshots_at').on('version_snapshots').columns(['at', 'product']).execute();
    },
  },
  // Device history and filtered listings (issue 11): each device's latest report event (the
  // `devices --status` filter), the release and failing state a report concerns, and indexes
  // that keep every filtered page a range of an index ordered by device id. In a WITHOUT ROWID
  // table a secondary index ends with the primary key (device_id, product), so (product) is
  // ordered as (product, device_id) and (last_event) as (last_event, device_id, product).
  // last_seen_at gets no index: sightings rewrite it all the time (the `--stale` filter is read
  // by a bounded scan instead, DEVICE_PAGE_SCAN).
  '0011_device_history': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('devices').addColumn('last_event', 'text').execute();
      await sql`UPDATE devices SET last_event = (SELECT r.event FROM reports r WHERE r.device_id = devices.device_id AND r.product = devices.product
        ORDER BY r.id DESC LIMIT 1) WHERE last_report_at IS NOT NULL`.execute(db);
      await db.schema.alterTable('reports').addColumn('to_version', 'text').execute();
      await db.schema.alterTable('reports').addColumn('state', 'text').execute();
      await db.schema.createIndex('devices_product').on('devices').column('product').execute();
      await db.schema.createIndex('devices_version').on('devices').column('version').execute();
      await db.schema.createIndex('devices_event').on('devices').column('last_event').execute();
      await db.schema.createIndex('devices_product_event').on('devices').columns(['product', 'last_event']).execute();
    },
  },
  // Staged rollouts (issue 11): one row per staged release; the outcome counts read reports by
  // product and channel (reports_rollout), never all reports.
  '0012_rollouts': rolloutsMigration('text', 'integer'),
  // The Mender device API (issue 12): the folder each product's Mender artifacts install into.
  '0013_mender': menderMigration(),
  // hawkBit DDI for SWUpdate (issue 12): .swu per release with its action id, DDI tokens (hashes only).
  '0014_hawkbit': hawkbitMigration('text', 'integer', 'integer PRIMARY KEY AUTOINCREMENT'),
  // Issue 10: which mirror holds a device row exactly as it is (consolidation pushes it the rest).
  '0015_held_by': heldByMigration('text', 'integer'),
};

/** Migration 0015_held_by in either dialect (pg-migrations.ts uses it too): nullable columns, no rewrite of the rows. */
export function heldByMigration(text: string, int: string): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql.raw(`ALTER TABLE devices ADD COLUMN held_by ${text}`).execute(db);
      await sql.raw(`ALTER TABLE devices ADD COLUMN held_seq ${int}`).execute(db);
    },
  };
}

/** Migration 0013_mender in either dialect (PostgreSQL's pg-migrations.ts uses it too). */
export function menderMigration(): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('products').addColumn('mender_dest', 'text').execute();
    },
  };
}

/** Migration 0014_hawkbit in either dialect (pg-migrations.ts uses it too); `serial`: the action id column's type. */
export function hawkbitMigration(text: string, int: string, serial: string): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      // action_id: the hawkBit action of a release, an integer SWUpdate reads as a C int (stays below 2^31).
      await sql.raw(`CREATE TABLE hawkbit_swu (
  action_id ${serial},
  product ${text} NOT NULL,
  channel ${text} NOT NULL,
  version ${text} NOT NULL,
  sha256 ${text} NOT NULL,
  sha1 ${text} NOT NULL,
  length ${int} NOT NULL,
  created_at ${int} NOT NULL,
  UNIQUE (product, channel, version)
)`).execute(db);
      await sql.raw(`CREATE TABLE hawkbit_targets (
  product ${text} NOT NULL,
  device_id ${text} NOT NULL,
  token_hash ${text},
  channel ${text} NOT NULL,
  config_at ${int},
  attributes ${text},
  failed_action ${int},
  updated_at ${int} NOT NULL,
  PRIMARY KEY (product, device_id)
)`).execute(db);
      await sql.raw(`CREATE TABLE hawkbit_gateway (
  product ${text} PRIMARY KEY,
  token_hash ${text} NOT NULL,
  created_at ${int} NOT NULL
)`).execute(db);
    },
  };
}

/** Migration 0012_rollouts in either dialect (PostgreSQL's pg-migrations.ts uses it too). */
export function rolloutsMigration(text: string, int: string): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await sql.raw(ROLLOUTS_SQL(text, int)).execute(db);
      await sql`CREATE INDEX reports_rollout ON reports (product, channel, event)`.execute(db);
    },
  };
}

/** The rollouts table in either dialect. */
const ROLLOUTS_SQL = (text: string, int: string): string => `CREATE TABLE rollouts (
  product ${text} NOT NULL,
  channel ${text} NOT NULL,
  version ${text} NOT NULL,
  phases ${text} NOT NULL,
  phase integer NOT NULL,
  state ${text} NOT NULL,
  every_seconds ${int},
  halt_at double precision,
  min_devices integer NOT NULL,
  phase_started_at ${int} NOT NULL,
  updated_at ${int} NOT NULL,
  PRIMARY KEY (product, channel, version)
)`;

class InCodeMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

/** Applies pending migrations; already-applied ones are skipped, so this runs on every start. */
export async function migrate(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider: new InCodeMigrationProvider() });
  const { error } = await migrator.migrateToLatest();
  if (error) throw new Error('database migration failed', { cause: error });
}
