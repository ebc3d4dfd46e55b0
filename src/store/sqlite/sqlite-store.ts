import { mkdir } from 'node:fs/promises';
import * as rollouts from './rollout-queries.js';
import { KyselyHawkbitRecords } from './hawkbit-queries.js';
import type { HawkbitRecords } from '../hawkbit-records.js';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql, type Compilable } from 'kysely';
import {
  type ChangeCursor, type DeltaRecord, type DeviceChanges, type DevicePage, type DeviceRecord, type MetadataRecord, type MetadataRole, type MirrorRecord, type MirrorState, type MirrorUpdate, type MovedRecord,
  type ChannelVersionCount, type VersionSnapshotRow, type DeviceFilter, type ProductRecord, type ReleaseRecord, type ReportRecord, type ScheduleRecord, type RolloutRecord, type RolloutOutcomes, type Sighting, type Store,
  REPORTS_KEPT_PER_DEVICE,
} from '../store.js';
import { StoreConflictError } from '../errors.js';
import * as shared from './shared-queries.js';
import * as snapshots from './snapshot-queries.js';
import { migrate } from './migrations.js';
import { LocalCoordination, type Coordination } from '../coordination.js';
import { mergeDevice, sameMerged } from '../device-merge.js';
import {
  ADD_DEVICE_SQL, CHANGED_AFTER_SQL, DEVICE_READ_COLUMNS, GET_DEVICE_SQL, PUT_DEVICE_SQL, TRIM_REPORTS_SQL, UPSERT_MIRROR_SQL,
} from './device-sql.js';
import { devicePageQuery, devicePageResult, type PageDialect, type PageIndex } from '../device-page-query.js';
import { formatCursor, formatDeviceCursor, parseCursor, parseDeviceCursor } from './change-cursor.js';
import { identityRow, toIdentity, toPreauthorization } from './identity-rows.js';
import type { AdmissionPolicy, DeviceIdentityRecord, PreauthorizationRecord } from '../identity.js';
import { deviceWrite, writeSightings, type DeviceWrite, type SightingRow } from './device-write.js';
import { openPragmas } from './pragmas.js';
import { keyedReadSql, readByKeys } from './keyed-read.js';
import { SightingWriter } from './sighting-writer.js';
import { isUniqueViolation, type SqliteConnection, type SqliteRawStatement } from './sqlite-connection.js';
import type { DeviceIdentitiesTable, DevicesTable, MetadataTable, PreauthorizationsTable, SqliteSchema } from './sqlite-schema.js';
import {
  changeRowToBinding, changeRowToDevice, mergeableToDevice, metadataRow, rowToMergeable, toDevice, toMergeable, toMetadata, toMoved, toProduct,
  toRelease, toReport, toSchedule, type ChangeRow,
} from './sqlite-rows.js';


const PUT_IDENTITY_SQL = `INSERT INTO device_identities
  (device_id, product, channel, public_key, key_id, status, pending_public_key, pending_key_id, pending_at, created_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device_id, product) DO UPDATE SET channel = excluded.channel, public_key = excluded.public_key, key_id = excluded.key_id,
    status = excluded.status, pending_public_key = excluded.pending_public_key, pending_key_id = excluded.pending_key_id,
    pending_at = excluded.pending_at, created_at = excluded.created_at, updated_at = excluded.updated_at`;
/** addIdentities: insert-if-absent, one row (changes 0 when the device is bound already). */
const ADD_IDENTITY_SQL = `INSERT INTO device_identities
  (device_id, product, channel, public_key, key_id, status, pending_public_key, pending_key_id, pending_at, created_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, product) DO NOTHING`;
/** getIdentities, getPreauthorizations, getDevices and mergeDevices: a batch's rows in one statement per 5000 keys. */
const IDENTITIES_BY_KEY_SQL = keyedReadSql('device_identities');
const PREAUTHORIZATIONS_BY_KEY_SQL = keyedReadSql('preauthorizations');
const DEVICES_BY_KEY_SQL = keyedReadSql('devices', DEVICE_READ_COLUMNS.split(', ').map((c) => `t.${c}`).join(', '));
const LATEST_METADATA_SQL = 'SELECT * FROM metadata WHERE product = ? AND role = ? ORDER BY version DESC LIMIT 1';
/** Point lookup on the (device_id, product) primary key of device_identities. */
const GET_IDENTITY_SQL = 'SELECT * FROM device_identities WHERE device_id = ? AND product = ?';

/** The index each device page reads, named so the plan cannot drift to a scan in another order (device-page-query.ts). */
const PAGE_INDEX: Readonly<Record<PageIndex, string>> = {
  primary: ' NOT INDEXED', product: ' INDEXED BY devices_product', version: ' INDEXED BY devices_version',
  product_version: ' INDEXED BY devices_product_version', event: ' INDEXED BY devices_event', product_event: ' INDEXED BY devices_product_event',
};
/** Named parameters (@p1, ...): a page query's text does not use them in the order they were made. */
const SQLITE_PAGE: PageDialect = { param: (n) => `@p${n}`, indexHint: (i) => PAGE_INDEX[i] };

/**
 * The embedded Store: one SQLite file, one better-sqlite3 connection shared by kysely and a few
 * raw prepared statements.
 *
 * Multi-statement writes run as synchronous better-sqlite3 transactions (kysely builds and
 * compiles the queries, the connection runs them): a synchronous transaction cannot interleave
 * with any other query on the shared connection, whereas an async kysely transaction would let a
 * raw statement run inside it (reading uncommitted rows, or joining its rollback).
 */
export class SqliteStore implements Store {
  readonly #conn: SqliteConnection;
  readonly #db: Kysely<SqliteSchema>;
  readonly #statements = new Map<string, SqliteRawStatement>();
  /** listDeviceChanges' statement, in raw mode (rows as arrays: sqlite-rows.ts ChangeRow). */
  #changesRead: SqliteRawStatement | undefined;
  readonly #now: () => Date;
  /** One server process per data folder (its lock file): in-process locks and events suffice. */
  readonly coordination: Coordination;

  private constructor(conn: SqliteConnection, now: () => Date, coordination: Coordination, private readonly writer?: SightingWriter) {
    this.#conn = conn;
    this.#now = now;
    this.coordination = coordination;
    this.#db = new Kysely<SqliteSchema>({ dialect: new SqliteDialect({ database: conn }) });
    this.hawkbit = new KyselyHawkbitRecords(this.#db as unknown as Kysely<any>);
  }

  /** Issue 12: the hawkBit DDI's records (hawkbit-queries.ts). */
  readonly hawkbit: HawkbitRecords;

  /**
   * Opens (creating when missing) the database file; call migrate() before other methods.
   * `now` is the time device writes are stamped with (updatedAt); the wall clock by default.
   * `coordination` (TEST HOOK): one shared by several stores on this file in one process, playing
   * several server processes on one database (test/cluster-cache.test.ts).
   */
  static async open(file: string, opts: { now?: () => Date; sightingWorker?: boolean; coordination?: Coordination } = {}): Promise<SqliteStore> {
    await mkdir(dirname(file), { recursive: true });
    const conn = new Database(file) as unknown as SqliteConnection;
    openPragmas(conn);
    // `serve` writes sightings (and folds the WAL) in a worker thread (sighting-writer.ts); this
    // connection then never checkpoints on its own, the worker does every second.
    const writer = opts.sightingWorker ? new SightingWriter(file) : undefined;
    if (writer) conn.pragma('wal_autocheckpoint = 0');
    return new SqliteStore(conn, opts.now ?? (() => new Date()), opts.coordination ?? new LocalCoordination(), writer);
  }

  async migrate(): Promise<void> {
    await migrate(this.#db);
  }

  async close(): Promise<void> {
    if (!this.#conn.open) return;
    await this.writer?.close();
    // Fold the WAL into the main file so a copy of the data folder is complete without -wal/-shm.
    this.#conn.pragma('wal_checkpoint(TRUNCATE)');
    await this.#db.destroy();
    if (this.#conn.open) this.#conn.close(); // destroy() is a no-op when kysely never ran a query
  }

  async getSetting(key: string): Promise<string | undefined> {
    const row = await this.#db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.#db.insertInto('settings').values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
  }

  async createProduct(product: ProductRecord, metadata: MetadataRecord[]): Promise<void> {
    this.#transaction(() => {
      this.#insert('product', this.#db.insertInto('products')
        .values({ name: product.name, created_at: product.createdAt.getTime(), admission: product.admission ?? 'auto' }));
      this.#insertMetadata(metadata);
    });
  }

  async getProduct(name: string): Promise<ProductRecord | undefined> {
    const row = await this.#db.selectFrom('products').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toProduct(row);
  }

  async listProducts(): Promise<ProductRecord[]> {
    return (await this.#db.selectFrom('products').selectAll().orderBy('name').execute()).map(toProduct);
  }

  async getMetadata(product: string, role: MetadataRole, version?: number): Promise<MetadataRecord | undefined> {
    // The newest version is read on every signed check answer (the timestamp): a prepared
    // statement, not a query built by kysely (~80 us) each time.
    if (version === undefined) {
      const row = this.#statement(LATEST_METADATA_SQL).get(product, role) as MetadataTable | undefined;
      return row && toMetadata(row);
    }
    let q = this.#db.selectFrom('metadata').selectAll().where('product', '=', product).where('role', '=', role);
    q = version === undefined ? q.orderBy('version', 'desc').limit(1) : q.where('version', '=', version);
    const row = await q.executeTakeFirst();
    return row && toMetadata(row);
  }

  async putMetadata(records: MetadataRecord[]): Promise<void> {
    this.#transaction(() => this.#insertMetadata(records));
  }

  async commitRelease(release: ReleaseRecord, metadata: MetadataRecord[]): Promise<void> {
    this.#transaction(() => {
      this.#insert('release', this.#db.insertInto('releases').values({
        product: release.product,
        channel: release.channel,
        version: release.version,
        target: release.target,
        sha256: release.sha256,
        length: release.length,
        tree_hash: release.treeHash,
        created_at: release.createdAt.getTime(),
      }));
      this.#insertMetadata(metadata);
    });
  }

  async getRelease(product: string, channel: string, version: string): Promise<ReleaseRecord | undefined> {
    const row = await this.#db.selectFrom('releases').selectAll()
      .where('product', '=', product).where('channel', '=', channel).where('version', '=', version)
      .executeTakeFirst();
    return row && toRelease(row);
  }

  async listReleases(product: string, channel?: string): Promise<ReleaseRecord[]> {
    let q = this.#db.selectFrom('releases').selectAll().where('product', '=', product);
    if (channel !== undefined) q = q.where('channel', '=', channel);
    return (await q.orderBy('seq').execute()).map(toRelease);
  }

  async yankRelease(product: string, channel: string, version: string, at: Date): Promise<ReleaseRecord | undefined> {
    // coalesce: a second yank keeps the time of the first.
    await this.#db.updateTable('releases').set({ yanked_at: sql<number>`coalesce(yanked_at, ${at.getTime()})` })
      .where('product', '=', product).where('channel', '=', channel).where('version', '=', version).execute();
    return this.getRelease(product, channel, version);
  }

  async addDelta(d: DeltaRecord, metadata: MetadataRecord[]): Promise<void> {
    this.#transaction(() => {
      this.#insert('delta', this.#db.insertInto('deltas').values({
        product: d.product, channel: d.channel, from_version: d.fromVersion, to_version: d.toVersion, target: d.target,
        sha256: d.sha256, length: d.length, engine: d.engine, created_at: d.createdAt.getTime(), failed: d.failed ? 1 : 0,
      }));
      this.#insertMetadata(metadata);
    });
  }

  async listDeltas(product: string, toVersion?: string): Promise<DeltaRecord[]> {
    let q = this.#db.selectFrom('deltas').selectAll().where('product', '=', product);
    if (toVersion !== undefined) q = q.where('to_version', '=', toVersion);
    return (await q.orderBy('created_at').execute()).map((r) => ({
      product: r.product, channel: r.channel, fromVersion: r.from_version, toVersion: r.to_version, target: r.target,
      sha256: r.sha256, length: r.length, engine: r.engine, createdAt: new Date(r.created_at), failed: r.failed !== 0,
    }));
  }

  async markDeltaFailed(product: string, target: string): Promise<boolean> {
    const r = await this.#db.updateTable('deltas').set({ failed: 1 }).where('product', '=', product).where('target', '=', target).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async countDeltaFailedDevices(product: string, target: string): Promise<number> {
    // Served by the partial index reports_delta_failed (migration 0006): never a scan of all reports.
    const row = await this.#db.selectFrom('reports')
      .select((eb) => eb.fn.count<number>('device_id').distinct().as('n'))
      .where('product', '=', product).where('event', '=', 'delta-failed').where('detail', '=', target)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async setMoved(moved: MovedRecord, metadata: MetadataRecord[]): Promise<void> {
    const row = { product: moved.product, url: moved.url, target: moved.target, sha256: moved.sha256, set_at: moved.setAt.getTime() };
    this.#transaction(() => {
      this.#run(this.#db.insertInto('moved').values(row)
        .onConflict((oc) => oc.column('product').doUpdateSet({ url: row.url, target: row.target, sha256: row.sha256, set_at: row.set_at })));
      this.#insertMetadata(metadata);
    });
  }

  async getMoved(product: string): Promise<MovedRecord | undefined> {
    const row = await this.#db.selectFrom('moved').selectAll().where('product', '=', product).executeTakeFirst();
    return row && toMoved(row);
  }

  async setSchedule(s: ScheduleRecord): Promise<void> {
    const set = { at: s.at.getTime(), spread_seconds: s.spreadSeconds, set_at: s.setAt.getTime() };
    await this.#db.insertInto('schedules').values({ product: s.product, channel: s.channel, ...set })
      .onConflict((oc) => oc.columns(['product', 'channel']).doUpdateSet(set)).execute();
  }

  async getSchedule(product: string, channel: string): Promise<ScheduleRecord | undefined> {
    const row = await this.#db.selectFrom('schedules').selectAll()
      .where('product', '=', product).where('channel', '=', channel).executeTakeFirst();
    return row && toSchedule(row);
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return (await this.#db.selectFrom('schedules').selectAll().orderBy('product').orderBy('channel').execute()).map(toSchedule);
  }
  putRollout(r: RolloutRecord): Promise<void> {
    return rollouts.putRollout(this.#db, r);
  }

  listRollouts(product?: string): Promise<RolloutRecord[]> {
    return rollouts.listRollouts(this.#db, product);
  }

  countRolloutOutcomes(product: string, channel: string, version: string): Promise<RolloutOutcomes> {
    return rollouts.countRolloutOutcomes(this.#db, product, channel, version);
  }


  async getDevice(deviceId: string, product: string): Promise<DeviceRecord | undefined> {
    return this.#getDeviceSync(deviceId, product);
  }

  async getDevices(keys: Array<{ deviceId: string; product: string }>): Promise<Array<DeviceRecord | undefined>> {
    return readByKeys<DevicesTable>(this.#statement(DEVICES_BY_KEY_SQL), keys).map((row) => row && toDevice(row));
  }

  async recordSightings(batch: Sighting[]): Promise<void> {
    const now = this.#now().getTime();
    const rows: SightingRow[] = batch.map((s) => [s.deviceId, s.product, s.channel, s.seenAt.getTime(), s.source]);
    // A writer thread that failed (it logs through the batcher's onError) leaves the writes here.
    if (this.writer?.usable) return this.writer.write(rows, now);
    writeSightings(this.#conn, (text) => this.#statement(text), now, rows);
  }

  async recordReport(r: ReportRecord): Promise<DeviceRecord> {
    const at = r.at.getTime();
    // Only the device's own applied / rolled-back report changes its applied version.
    const setsVersion = r.event === 'applied' || r.event === 'rolled-back';
    return this.#deviceWrite((w) => {
      this.#run(this.#db.insertInto('devices').values({
        device_id: r.deviceId, product: r.product, channel: r.channel, version: setsVersion ? r.version : null,
        first_seen_at: at, last_seen_at: at, last_report_at: at, source: r.source, updated_at: w.at, change_seq: w.nextSeq(), last_event: r.event,
      }).onConflict((oc) => oc.columns(['device_id', 'product']).doUpdateSet((eb) => ({
        channel: eb.ref('excluded.channel'),
        source: eb.ref('excluded.source'),
        last_seen_at: sql<number>`max(devices.last_seen_at, excluded.last_seen_at)`,
        last_report_at: eb.ref('excluded.last_report_at'),
        updated_at: eb.ref('excluded.updated_at'),
        change_seq: eb.ref('excluded.change_seq'),
        last_event: eb.ref('excluded.last_event'),
        ...(setsVersion ? { version: eb.ref('excluded.version') } : {}),
      }))));
      this.#run(this.#db.insertInto('reports').values({
        device_id: r.deviceId, product: r.product, channel: r.channel, event: r.event, version: r.version,
        previous_version: r.previousVersion, detail: r.detail, at, source: r.source, to_version: r.toVersion ?? null, state: r.state ?? null,
      }));
      this.#statement(TRIM_REPORTS_SQL).run(r.deviceId, r.product, r.deviceId, r.product, REPORTS_KEPT_PER_DEVICE);
      return this.#getDeviceSync(r.deviceId, r.product)!;
    });
  }

  async listDevices(filter?: { product?: string }): Promise<DeviceRecord[]> {
    let q = this.#db.selectFrom('devices').selectAll();
    if (filter?.product !== undefined) q = q.where('product', '=', filter.product);
    return (await q.orderBy('product').orderBy('device_id').execute()).map(toDevice);
  }

  async listDevicePage(filter: DeviceFilter, after: string | null, limit: number): Promise<DevicePage> {
    const start = after === null ? null : parseDeviceCursor(after);
    const q = devicePageQuery(DEVICE_READ_COLUMNS, filter, start && { deviceId: start[0], product: start[1] }, limit, SQLITE_PAGE);
    const params = Object.fromEntries(q.values.map((v, i) => [`p${i + 1}`, v]));
    const { rows, next } = devicePageResult(q, this.#statement(q.text).all(params) as DevicesTable[], limit);
    return { devices: rows.map(toDevice), next: next && formatDeviceCursor(next.deviceId, next.product) };
  }

  async removeDevice(deviceId: string, product: string): Promise<boolean> {
    return this.#transaction(() => {
      this.#run(this.#db.deleteFrom('reports').where('device_id', '=', deviceId).where('product', '=', product));
      const count = (q: Compilable) => {
        const { sql: text, parameters } = q.compile();
        return Number(this.#statement(text).run(...parameters).changes);
      };
      const devices = count(this.#db.deleteFrom('devices').where('device_id', '=', deviceId).where('product', '=', product));
      const identities = count(this.#db.deleteFrom('device_identities').where('device_id', '=', deviceId).where('product', '=', product));
      return devices + identities > 0;
    });
  }

  async setMenderDest(product: string, dest: string | null): Promise<boolean> {
    const r = await this.#db.updateTable('products').set({ mender_dest: dest }).where('name', '=', product).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async setAdmission(product: string, policy: AdmissionPolicy): Promise<boolean> {
    const r = await this.#db.updateTable('products').set({ admission: policy }).where('name', '=', product).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  // A prepared statement, not kysely: the check path reads the identity at a token's first use in
  // the process, which at a million devices is most checks (bench/fleet.ts: kysely's build,
  // compile and prepare per call cost more than the lookup).
  async getIdentity(deviceId: string, product: string): Promise<DeviceIdentityRecord | undefined> {
    const row = this.#statement(GET_IDENTITY_SQL).get(deviceId, product) as DeviceIdentitiesTable | undefined;
    return row && toIdentity(row);
  }

  async getIdentities(keys: Array<{ deviceId: string; product: string }>): Promise<Array<DeviceIdentityRecord | undefined>> {
    return readByKeys<DeviceIdentitiesTable>(this.#statement(IDENTITIES_BY_KEY_SQL), keys).map((row) => row && toIdentity(row));
  }

  async addIdentity(identity: DeviceIdentityRecord): Promise<boolean> {
    const r = await this.#db.insertInto('device_identities').values(identityRow(identity))
      .onConflict((oc) => oc.columns(['device_id', 'product']).doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async addIdentities(identities: DeviceIdentityRecord[]): Promise<boolean[]> {
    if (identities.length === 0) return [];
    const add = this.#statement(ADD_IDENTITY_SQL);
    return this.#transaction(() => identities.map((i) => {
      const r = identityRow(i);
      return add.run(r.device_id, r.product, r.channel, r.public_key, r.key_id, r.status, r.pending_public_key, r.pending_key_id, r.pending_at, r.created_at, r.updated_at).changes > 0;
    }));
  }

  async updateIdentity(identity: DeviceIdentityRecord): Promise<boolean> {
    const { device_id, product, ...set } = identityRow(identity);
    const r = await this.#db.updateTable('device_identities').set(set).where('device_id', '=', device_id).where('product', '=', product).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async putIdentities(identities: DeviceIdentityRecord[]): Promise<void> {
    if (identities.length === 0) return;
    const put = this.#statement(PUT_IDENTITY_SQL);
    this.#transaction(() => {
      for (const i of identities) {
        const r = identityRow(i);
        put.run(r.device_id, r.product, r.channel, r.public_key, r.key_id, r.status, r.pending_public_key, r.pending_key_id, r.pending_at, r.created_at, r.updated_at);
      }
    });
  }

  listIdentities(filter: { product?: string; conflicts?: boolean } = {}): Promise<DeviceIdentityRecord[]> {
    return shared.listIdentities(this.#db, filter);
  }

  countIdentities(product: string): Promise<number> {
    return shared.countIdentities(this.#db, product);
  }

  countIdentityConflicts(): Promise<number> {
    return shared.countIdentityConflicts(this.#db);
  }

  putPreauthorization(p: PreauthorizationRecord): Promise<void> {
    return shared.putPreauthorization(this.#db, p);
  }

  getPreauthorization(deviceId: string, product: string): Promise<PreauthorizationRecord | undefined> {
    return shared.getPreauthorization(this.#db, deviceId, product);
  }

  async getPreauthorizations(keys: Array<{ deviceId: string; product: string }>): Promise<Array<PreauthorizationRecord | undefined>> {
    return readByKeys<PreauthorizationsTable>(this.#statement(PREAUTHORIZATIONS_BY_KEY_SQL), keys).map((row) => row && toPreauthorization(row));
  }

  async listReports(deviceId: string, product: string): Promise<ReportRecord[]> {
    const rows = await this.#db.selectFrom('reports').selectAll()
      .where('device_id', '=', deviceId).where('product', '=', product).orderBy('id').execute();
    return rows.map(toReport);
  }

  async listDeviceChanges(after: ChangeCursor | null, limit: number): Promise<DeviceChanges> {
    const from = after === null ? Number.MIN_SAFE_INTEGER : parseCursor(after);
    this.#changesRead ??= this.#conn.prepare(CHANGED_AFTER_SQL).raw(true);
    const rows = this.#changesRead.all(from, limit) as ChangeRow[];
    const last = rows[rows.length - 1];
    return { devices: rows.map(changeRowToDevice), next: last ? formatCursor(last[9]) : after, heldBy: rows.map((r) => r[11]), bindings: rows.map(changeRowToBinding) };
  }

  async mergeDevices(records: DeviceRecord[], opts: { fromUpstream?: boolean; heldBy?: string } = {}): Promise<DeviceRecord[]> {
    const byKeys = this.#statement(DEVICES_BY_KEY_SQL);
    const put = this.#statement(PUT_DEVICE_SQL);
    const add = this.#statement(ADD_DEVICE_SQL);
    return this.#deviceWrite((w) => {
      const changed: DeviceRecord[] = [];
      // A device this store does not have is written as it came, with one insert-if-absent and no
      // read (on a first sync most are new); the others are merged below. A position drawn for an
      // insert that found the device leaves a gap in the feed, which no reader notices.
      const known: DeviceRecord[] = [];
      for (const record of records) {
        const incoming = toMergeable(record);
        const stamp = opts.fromUpstream ? 0 : w.at;
        const seq = opts.fromUpstream ? w.upstreamSeq() : w.nextSeq();
        const held = opts.heldBy !== undefined && !opts.fromUpstream ? opts.heldBy : null;
        if (add.run(incoming.deviceId, incoming.product, incoming.channel, incoming.version, incoming.firstSeenAt, incoming.lastSeenAt,
          incoming.lastReportAt, incoming.source, stamp, seq, incoming.lastEvent, held, seq).changes === 0) {
          known.push(record);
          continue;
        }
        changed.push(mergeableToDevice(incoming, stamp));
      }
      // The rows of the others read in one statement per 5000 (keyed-read.ts), inside the write
      // transaction; a device repeated in the batch sees the row as its earlier record left it.
      const rows = new Map<string, DevicesTable>();
      if (known.length) for (const r of readByKeys<DevicesTable>(byKeys, known)) if (r) rows.set(`${r.product}\0${r.device_id}`, r);
      for (const record of known) {
        const incoming = toMergeable(record);
        const key = `${incoming.product}\0${incoming.deviceId}`;
        const row = rows.get(key);
        const existing = row && rowToMergeable(row);
        const merged = existing ? mergeDevice(existing, incoming) : incoming;
        if (existing && sameMerged(existing, merged)) continue;
        const exact = sameMerged(merged, incoming);
        const upstream = opts.fromUpstream && exact;
        const stamp = upstream ? (row?.updated_at ?? 0) : w.at;
        const seq = upstream ? (row?.change_seq ?? w.upstreamSeq()) : w.nextSeq();
        const held = opts.heldBy !== undefined && exact && !opts.fromUpstream ? opts.heldBy : null;
        put.run(merged.deviceId, merged.product, merged.channel, merged.version, merged.firstSeenAt, merged.lastSeenAt,
          merged.lastReportAt, merged.source, stamp, seq, merged.lastEvent, held, seq);
        rows.set(key, {
          device_id: merged.deviceId, product: merged.product, channel: merged.channel, version: merged.version, first_seen_at: merged.firstSeenAt,
          last_seen_at: merged.lastSeenAt, last_report_at: merged.lastReportAt, source: merged.source, updated_at: stamp, change_seq: seq, last_event: merged.lastEvent,
        });
        changed.push(mergeableToDevice(merged, stamp));
      }
      // A record repeated in the batch changes its row more than once: report it once, as stored.
      if (changed.length < 2) return changed;
      const last = new Map(changed.map((d) => [`${d.product}\0${d.deviceId}`, d]));
      return last.size === changed.length ? changed : [...last.values()];
    });
  }

  async touchDevice(deviceId: string, product: string): Promise<boolean> {
    const touch = this.#statement('UPDATE devices SET updated_at = ?, change_seq = ? WHERE device_id = ? AND product = ?');
    return this.#deviceWrite((w) => touch.run(w.at, w.nextSeq(), deviceId, product).changes > 0);
  }

  async upsertMirror(url: string, announcedAt: Date, storeId?: string): Promise<MirrorState> {
    const row = this.#statement(UPSERT_MIRROR_SQL).get(url, announcedAt.getTime(), storeId ?? null) as { state: string };
    return row.state === 'approved' ? 'approved' : 'pending';
  }

  async approveMirror(url: string, at: Date): Promise<boolean> {
    const r = await this.#db.updateTable('mirrors').set((eb) => ({ state: 'approved', approved_at: eb.fn.coalesce('approved_at', eb.val(at.getTime())) }))
      .where('url', '=', url).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  listMirrors(): Promise<MirrorRecord[]> {
    return shared.listMirrors(this.#db);
  }

  removeMirror(url: string): Promise<boolean> {
    return shared.removeMirror(this.#db, url);
  }

  updateMirror(url: string, update: MirrorUpdate): Promise<void> {
    return shared.updateMirror(this.#db, url, update);
  }

  countVersions(filter?: { product?: string }): Promise<Record<string, number>> {
    return shared.countVersions(this.#db, filter);
  }

  countDevices(filter?: { product?: string }): Promise<number> {
    return shared.countDevices(this.#db, filter);
  }

  async countChannelVersions(filter?: { product?: string }): Promise<ChannelVersionCount[]> {
    let q = this.#db.selectFrom('devices').select((eb) => ['product', 'channel', 'version', eb.fn.countAll<number>().as('n')]);
    if (filter?.product !== undefined) q = q.where('product', '=', filter.product);
    const rows = await q.groupBy(['product', 'channel', 'version']).orderBy('product').orderBy('channel').orderBy('version').execute();
    return rows.map((r) => ({ product: r.product, channel: r.channel, version: r.version, devices: Number(r.n) }));
  }
  addVersionSnapshot(at: Date, counts: ChannelVersionCount[], keepAfter: Date): Promise<void> {
    return snapshots.addVersionSnapshot(this.#db, at, counts, keepAfter);
  }

  listVersionSnapshots(filter: { product?: string; since: Date }, limit: number): Promise<VersionSnapshotRow[]> {
    return snapshots.listVersionSnapshots(this.#db, filter, limit);
  }

  latestVersionSnapshotAt(): Promise<Date | null> {
    return snapshots.latestVersionSnapshotAt(this.#db);
  }


  #getDeviceSync(deviceId: string, product: string): DeviceRecord | undefined {
    const row = this.#statement(GET_DEVICE_SQL).get(deviceId, product) as DevicesTable | undefined;
    return row && toDevice(row);
  }

  #insertMetadata(records: MetadataRecord[]): void {
    if (records.length > 0) this.#insert('metadata', this.#db.insertInto('metadata').values(records.map(metadataRow)));
  }

  /** Runs an insert, turning a duplicate key into StoreConflictError (which rolls back the transaction). */
  #insert(what: StoreConflictError['what'], query: Compilable): void {
    try {
      this.#run(query);
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreConflictError(`${what} already exists`, what, { cause: err });
      throw err;
    }
  }

  #run(query: Compilable): void {
    const { sql: text, parameters } = query.compile();
    this.#statement(text).run(...parameters);
  }

  #transaction<T>(fn: () => T): T {
    return this.#conn.transaction(fn)();
  }

  /** A device write on the store's connection (device-write.ts). */
  #deviceWrite<T>(fn: (w: DeviceWrite) => T): T {
    return deviceWrite(this.#conn, (text) => this.#statement(text), this.#now().getTime(), fn);
  }

  /** Prepared statements cached by SQL text; the set of distinct texts is small and fixed by the code. */
  #statement(text: string): SqliteRawStatement {
    let stmt = this.#statements.get(text);
    if (!stmt) {
      stmt = this.#conn.prepare(text);
      this.#statements.set(text, stmt);
    }
    return stmt;
  }
}
