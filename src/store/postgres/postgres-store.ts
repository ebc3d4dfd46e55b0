import pg from 'pg';
import * as rollouts from '../sqlite/rollout-queries.js';
import { KyselyHawkbitRecords } from '../sqlite/hawkbit-queries.js';
import type { HawkbitRecords } from '../hawkbit-records.js';
import { Kysely, PostgresDialect, sql, type Compilable } from 'kysely';
import type {
  ChangeCursor, ChannelVersionCount, VersionSnapshotRow, DeltaRecord, DeviceChanges, DevicePage, DeviceRecord, MetadataRecord, MetadataRole, MirrorRecord,
  DeviceFilter, MirrorState, MirrorUpdate, MovedRecord, ProductRecord, ReleaseRecord, ReportRecord, ScheduleRecord, RolloutRecord, RolloutOutcomes, Sighting, Store,
} from '../store.js';
import { REPORTS_KEPT_PER_DEVICE } from '../store.js';
import { devicePageQuery, devicePageResult, type PageDialect } from '../device-page-query.js';
import { StoreConflictError } from '../errors.js';
import * as shared from '../sqlite/shared-queries.js';
import * as snapshots from '../sqlite/snapshot-queries.js';
import { mergeDevice, sameMerged } from '../device-merge.js';
import type { AdmissionPolicy, DeviceIdentityRecord, PreauthorizationRecord } from '../identity.js';
// The PostgreSQL schema has SQLite's table shapes (times in ms, int8 parsed as numbers), so the
// row types, row converters and cursor forms are shared with the SQLite store.
import type { DeviceIdentitiesTable, DevicesTable, MetadataTable, PreauthorizationsTable, SqliteSchema as Schema } from '../sqlite/sqlite-schema.js';
import {
  mergeableToDevice, metadataRow, rowToMergeable, toDevice, toMergeable, toMetadata, toMoved, toProduct, toRelease, toReport,
  toSchedule, toBinding, type ChangeExtras, type MergeableRow,
} from '../sqlite/sqlite-rows.js';
import { identityRow, toIdentity, toPreauthorization } from '../sqlite/identity-rows.js';
import { formatCursor, formatDeviceCursor, parseCursor, parseDeviceCursor } from '../sqlite/change-cursor.js';
import { migratePg } from './pg-migrations.js';
import { PgCoordination } from './pg-coordination.js';
import { clientConfig, createPool, describeConnectError, isUniqueViolation, lockKey, parsePgUrl, type PgSettings } from './pg-connection.js';
import {
  ADD_IDENTITIES, CHANGED_AFTER, DEVICE_READ_COLUMNS, GET_DEVICE, GET_DEVICES, GET_IDENTITIES, GET_IDENTITY, GET_PREAUTHORIZATIONS, LATEST_METADATA, NEWEST_CHANGE, OLDEST_CHANGE,
  PUT_DEVICES, RECORD_REPORT, TOUCH_DEVICE, UPSERT_SIGHTINGS, UPSERT_MIRROR, type Prepared,
} from './pg-sql.js';


const PUT_IDENTITIES_CHUNK = 2000;
/**
 * The device-feed lock, taken (pg_advisory_xact_lock, released at commit or rollback) by every
 * transaction that writes device rows, in every process. A sequence alone does not make the
 * change feed safe with concurrent writers: a transaction can draw a lower position and commit
 * after another one's higher position was read, and a reader whose cursor passed the higher one
 * would never see it. Under this lock positions are drawn and committed one transaction at a
 * time, so position order is commit order and "every change committed after a page was read
 * comes after that page's next" holds across processes. The cost: device writes (reports,
 * sighting batches, merges) are serialised per database, a few round trips each.
 */
const DEVICE_FEED_LOCK = lockKey('store:device-feed');
const BEGIN_DEVICE_WRITE = `BEGIN; SELECT pg_advisory_xact_lock(${DEVICE_FEED_LOCK})`;

type Client = pg.PoolClient;

/** Typed positional parameters; no index hints: the planner picks the device_id-ordered index the conditions name (pg-migrations.ts 0002). */
const PG_PAGE: PageDialect = { param: (n, type) => `$${n}::${type}`, indexHint: () => '' };

/** When the database cannot be reached (start PostgreSQL, create the database...): `message` says what to do. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/**
 * The PostgreSQL Store (`serve --db postgres://USER@HOST:PORT/DB`): node pg's pool, kysely as the
 * query builder, named prepared statements on the hot paths (pg-sql.ts). Several server
 * processes may share one database; coordination (locks, LISTEN/NOTIFY) is PgCoordination.
 *
 * Multi-statement writes run on one pool client between BEGIN and COMMIT, with queries compiled
 * by kysely or prepared (pg-sql.ts); reads outside transactions go through the pool.
 */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly coordination: PgCoordination;
  #closed = false;

  private constructor(settings: PgSettings, now: () => Date) {
    this.#pool = createPool(settings);
    this.#db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: this.#pool }) });
    this.#now = now;
    this.coordination = new PgCoordination(this.#pool, clientConfig(settings));
    this.hawkbit = new KyselyHawkbitRecords(this.#db as unknown as Kysely<any>);
  }

  /** Issue 12: the hawkBit DDI's records (sqlite/hawkbit-queries.ts, the same in both dialects). */
  readonly hawkbit: HawkbitRecords;

  /**
   * Connects to the database the URL names (it must exist); call migrate() before other methods.
   * DatabaseUnavailableError when it cannot be reached, saying what failed and what to do.
   */
  static async open(url: string, opts: { now?: () => Date } = {}): Promise<PostgresStore> {
    const settings = parsePgUrl(url);
    const store = new PostgresStore(settings, opts.now ?? (() => new Date()));
    try {
      await store.#pool.query('SELECT 1');
    } catch (err) {
      await store.close();
      const why = describeConnectError(err, settings);
      throw why ? new DatabaseUnavailableError(why, { cause: err }) : err;
    }
    return store;
  }

  async migrate(): Promise<void> {
    await migratePg(this.#db);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.coordination.close();
    await this.#db.destroy();
    // destroy() ends the pool only once kysely ran a query; the store's own statements use it too.
    if (!this.#pool.ended) await this.#pool.end();
  }

  async getSetting(key: string): Promise<string | undefined> {
    const row = await this.#db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.#db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
  }

  async createProduct(product: ProductRecord, metadata: MetadataRecord[]): Promise<void> {
    await this.#transaction(async (c) => {
      await this.#insert(c, 'product', this.#db.insertInto('products')
        .values({ name: product.name, created_at: product.createdAt.getTime(), admission: product.admission ?? 'auto' }));
      await this.#insertMetadata(c, metadata);
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
    // The newest version is read on every signed check answer (the timestamp): prepared.
    if (version === undefined) {
      const [row] = await this.#query<MetadataTable>(this.#pool, LATEST_METADATA, [product, role]);
      return row && toMetadata(row);
    }
    const row = await this.#db.selectFrom('metadata').selectAll()
      .where('product', '=', product).where('role', '=', role).where('version', '=', version).executeTakeFirst();
    return row && toMetadata(row);
  }

  async putMetadata(records: MetadataRecord[]): Promise<void> {
    await this.#transaction((c) => this.#insertMetadata(c, records));
  }

  async commitRelease(release: ReleaseRecord, metadata: MetadataRecord[]): Promise<void> {
    await this.#transaction(async (c) => {
      await this.#insert(c, 'release', this.#db.insertInto('releases').values({
        product: release.product, channel: release.channel, version: release.version, target: release.target, sha256: release.sha256,
        length: release.length, tree_hash: release.treeHash, created_at: release.createdAt.getTime(),
      }));
      await this.#insertMetadata(c, metadata);
    });
  }

  async getRelease(product: string, channel: string, version: string): Promise<ReleaseRecord | undefined> {
    const row = await this.#db.selectFrom('releases').selectAll()
      .where('product', '=', product).where('channel', '=', channel).where('version', '=', version).executeTakeFirst();
    return row && toRelease(row);
  }

  async listReleases(product: string, channel?: string): Promise<ReleaseRecord[]> {
    let q = this.#db.selectFrom('releases').selectAll().where('product', '=', product);
    if (channel !== undefined) q = q.where('channel', '=', channel);
    return (await q.orderBy('seq').execute()).map(toRelease);
  }

  async yankRelease(product: string, channel: string, version: string, at: Date): Promise<ReleaseRecord | undefined> {
    // coalesce: a second yank keeps the time of the first.
    const row = await this.#db.updateTable('releases').set({ yanked_at: sql<number>`coalesce(yanked_at, ${at.getTime()}::bigint)` })
      .where('product', '=', product).where('channel', '=', channel).where('version', '=', version).returningAll().executeTakeFirst();
    return row && toRelease(row);
  }

  async addDelta(d: DeltaRecord, metadata: MetadataRecord[]): Promise<void> {
    await this.#transaction(async (c) => {
      await this.#insert(c, 'delta', this.#db.insertInto('deltas').values({
        product: d.product, channel: d.channel, from_version: d.fromVersion, to_version: d.toVersion, target: d.target,
        sha256: d.sha256, length: d.length, engine: d.engine, created_at: d.createdAt.getTime(), failed: d.failed ? 1 : 0,
      }));
      await this.#insertMetadata(c, metadata);
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
    // Served by the partial index reports_delta_failed.
    const row = await this.#db.selectFrom('reports')
      .select((eb) => eb.fn.count<number>('device_id').distinct().as('n'))
      .where('product', '=', product).where('event', '=', 'delta-failed').where('detail', '=', target)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async setMoved(moved: MovedRecord, metadata: MetadataRecord[]): Promise<void> {
    const row = { product: moved.product, url: moved.url, target: moved.target, sha256: moved.sha256, set_at: moved.setAt.getTime() };
    await this.#transaction(async (c) => {
      await this.#run(c, this.#db.insertInto('moved').values(row)
        .onConflict((oc) => oc.column('product').doUpdateSet({ url: row.url, target: row.target, sha256: row.sha256, set_at: row.set_at })));
      await this.#insertMetadata(c, metadata);
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
    const row = await this.#db.selectFrom('schedules').selectAll().where('product', '=', product).where('channel', '=', channel).executeTakeFirst();
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
    const [row] = await this.#query<DevicesTable>(this.#pool, GET_DEVICE, [deviceId, product]);
    return row && toDevice(row);
  }

  async getDevices(keys: Array<{ deviceId: string; product: string }>): Promise<Array<DeviceRecord | undefined>> {
    if (keys.length === 0) return [];
    const rows = await this.#query<DevicesTable>(this.#pool, GET_DEVICES, [keys.map((k) => k.deviceId), keys.map((k) => k.product)]);
    const found = new Map(rows.map((r) => [`${r.product}\u0000${r.device_id}`, toDevice(r)]));
    return keys.map((k) => found.get(`${k.product}\u0000${k.deviceId}`));
  }

  async recordSightings(batch: Sighting[]): Promise<void> {
    if (batch.length === 0) return;
    const rows = foldSightings(batch);
    await this.#lockedWrite(async (c) => {
      await this.#query(c, UPSERT_SIGHTINGS, [
        rows.map((r) => r.deviceId), rows.map((r) => r.product), rows.map((r) => r.channel), rows.map((r) => r.firstSeenAt),
        rows.map((r) => r.lastSeenAt), rows.map((r) => r.source), this.#now().getTime(),
      ]);
    });
  }

  async recordReport(r: ReportRecord): Promise<DeviceRecord> {
    // Only the device's own applied / rolled-back report changes its applied version.
    const setsVersion = r.event === 'applied' || r.event === 'rolled-back';
    return this.#lockedWrite(async (c) => {
      const [row] = await this.#query<DevicesTable>(c, RECORD_REPORT, [
        r.deviceId, r.product, r.channel, r.version, r.at.getTime(), r.source, this.#now().getTime(), setsVersion, r.event, r.previousVersion, r.detail,
        r.toVersion ?? null, r.state ?? null, REPORTS_KEPT_PER_DEVICE - 1,
      ]);
      return toDevice(row!);
    });
  }

  async listDevices(filter?: { product?: string }): Promise<DeviceRecord[]> {
    let q = this.#db.selectFrom('devices').selectAll();
    if (filter?.product !== undefined) q = q.where('product', '=', filter.product);
    return (await q.orderBy('product').orderBy('device_id').execute()).map(toDevice);
  }

  async listDevicePage(filter: DeviceFilter, after: string | null, limit: number): Promise<DevicePage> {
    const start = after === null ? null : parseDeviceCursor(after);
    const q = devicePageQuery(DEVICE_READ_COLUMNS, filter, start && { deviceId: start[0], product: start[1] }, limit, PG_PAGE);
    // Unnamed: the texts vary with the filter (a few dozen forms), and pg plans each with its values.
    const { rows, next } = devicePageResult(q, (await this.#pool.query<DevicesTable>(q.text, q.values)).rows, limit);
    return { devices: rows.map(toDevice), next: next && formatDeviceCursor(next.deviceId, next.product) };
  }

  async removeDevice(deviceId: string, product: string): Promise<boolean> {
    // Under the device-feed lock like every device write, so a merge's read-modify-write never races it.
    return this.#deviceWrite(async (c) => {
      await this.#run(c, this.#db.deleteFrom('reports').where('device_id', '=', deviceId).where('product', '=', product));
      const count = async (q: Compilable) => {
        const { sql: text, parameters } = q.compile();
        return (await c.query(text, parameters as unknown[])).rowCount ?? 0;
      };
      const devices = await count(this.#db.deleteFrom('devices').where('device_id', '=', deviceId).where('product', '=', product));
      const identities = await count(this.#db.deleteFrom('device_identities').where('device_id', '=', deviceId).where('product', '=', product));
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

  async getIdentity(deviceId: string, product: string): Promise<DeviceIdentityRecord | undefined> {
    const [row] = await this.#query<DeviceIdentitiesTable>(this.#pool, GET_IDENTITY, [deviceId, product]);
    return row && toIdentity(row);
  }

  async getIdentities(keys: Array<{ deviceId: string; product: string }>): Promise<Array<DeviceIdentityRecord | undefined>> {
    const out: Array<DeviceIdentityRecord | undefined> = keys.map(() => undefined);
    if (keys.length === 0) return out;
    const rows = await this.#query<DeviceIdentitiesTable & { ord: number }>(this.#pool, GET_IDENTITIES,
      [keys.map((k) => k.deviceId), keys.map((k) => k.product)]);
    for (const { ord, ...row } of rows) out[ord - 1] = toIdentity(row);
    return out;
  }

  async addIdentity(identity: DeviceIdentityRecord): Promise<boolean> {
    const r = await this.#db.insertInto('device_identities').values(identityRow(identity))
      .onConflict((oc) => oc.columns(['device_id', 'product']).doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async addIdentities(identities: DeviceIdentityRecord[]): Promise<boolean[]> {
    if (identities.length === 0) return [];
    const rows = identities.map(identityRow);
    const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
    const added = await this.#transaction(async (c) => this.#query<{ device_id: string; product: string }>(c, ADD_IDENTITIES, [
      col('device_id'), col('product'), col('channel'), col('public_key'), col('key_id'), col('status'),
      col('pending_public_key'), col('pending_key_id'), col('pending_at'), col('created_at'), col('updated_at'),
    ]));
    // Of two identities for one device in the batch, the first is the one added (as SQLite's row-by-row insert).
    const fresh = new Set(added.map((r) => `${r.product}\u0000${r.device_id}`));
    return rows.map((r) => fresh.delete(`${r.product}\u0000${r.device_id}`));
  }

  async updateIdentity(identity: DeviceIdentityRecord): Promise<boolean> {
    const { device_id, product, ...set } = identityRow(identity);
    const r = await this.#db.updateTable('device_identities').set(set).where('device_id', '=', device_id).where('product', '=', product).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async putIdentities(identities: DeviceIdentityRecord[]): Promise<void> {
    if (identities.length === 0) return;
    // ON CONFLICT cannot touch one row twice in a statement: fold to the last record per device
    // (the later wins, as in the SQLite store's row-by-row upsert), then write in chunks that stay
    // under PostgreSQL's 65,535 bind parameters (11 per row).
    const last = new Map<string, DeviceIdentityRecord>();
    for (const i of identities) {
      const k = `${i.product}\u0000${i.deviceId}`;
      last.delete(k);
      last.set(k, i);
    }
    const rows = [...last.values()].map(identityRow);
    await this.#transaction(async (c) => {
      for (let i = 0; i < rows.length; i += PUT_IDENTITIES_CHUNK) {
        await this.#run(c, this.#db.insertInto('device_identities').values(rows.slice(i, i + PUT_IDENTITIES_CHUNK))
          .onConflict((oc) => oc.columns(['device_id', 'product']).doUpdateSet((eb) => ({
            channel: eb.ref('excluded.channel'), public_key: eb.ref('excluded.public_key'), key_id: eb.ref('excluded.key_id'),
            status: eb.ref('excluded.status'), pending_public_key: eb.ref('excluded.pending_public_key'),
            pending_key_id: eb.ref('excluded.pending_key_id'), pending_at: eb.ref('excluded.pending_at'),
            created_at: eb.ref('excluded.created_at'), updated_at: eb.ref('excluded.updated_at'),
          }))));
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
    const out: Array<PreauthorizationRecord | undefined> = keys.map(() => undefined);
    if (keys.length === 0) return out;
    const rows = await this.#query<PreauthorizationsTable & { ord: number }>(this.#pool, GET_PREAUTHORIZATIONS, [keys.map((k) => k.deviceId), keys.map((k) => k.product)]);
    for (const { ord, ...row } of rows) out[Number(ord) - 1] = toPreauthorization(row);
    return out;
  }

  async listReports(deviceId: string, product: string): Promise<ReportRecord[]> {
    const rows = await this.#db.selectFrom('reports').selectAll().where('device_id', '=', deviceId).where('product', '=', product).orderBy('id').execute();
    return rows.map(toReport);
  }

  async listDeviceChanges(after: ChangeCursor | null, limit: number): Promise<DeviceChanges> {
    const from = after === null ? Number.MIN_SAFE_INTEGER : parseCursor(after);
    const rows = await this.#query<DevicesTable & ChangeExtras>(this.#pool, CHANGED_AFTER, [from, limit]);
    const last = rows[rows.length - 1];
    return { devices: rows.map(toDevice), next: last ? formatCursor(last.change_seq) : after, heldBy: rows.map((r) => r.held), bindings: rows.map(toBinding) };
  }

  async mergeDevices(records: DeviceRecord[], opts: { fromUpstream?: boolean; heldBy?: string } = {}): Promise<DeviceRecord[]> {
    if (records.length === 0) return [];
    return this.#deviceWrite(async (c, w) => {
      // The batch's rows in one read; then merged in order in memory (a record given twice merges
      // into what the first made), and every changed row written in one statement.
      const key = (d: { deviceId: string; product: string }) => `${d.product}\0${d.deviceId}`;
      const rows = new Map<string, CurrentRow>();
      for (const r of await this.#query<DevicesTable>(c, GET_DEVICES, [records.map((d) => d.deviceId), records.map((d) => d.product)])) {
        rows.set(key({ deviceId: r.device_id, product: r.product }), { merged: rowToMergeable(r), updatedAt: r.updated_at, seq: r.change_seq });
      }
      const writes = new Map<string, CurrentRow>();
      const changed: DeviceRecord[] = [];
      for (const record of records) {
        const incoming = toMergeable(record);
        const k = key(incoming);
        const row = rows.get(k);
        const merged = row ? mergeDevice(row.merged, incoming) : incoming;
        if (row && sameMerged(row.merged, merged)) continue;
        const exact = sameMerged(merged, incoming);
        const upstream = opts.fromUpstream && exact;
        const stamp = upstream ? (row?.updatedAt ?? 0) : w.at;
        // null: a new local position, drawn when written.
        const seq = upstream ? (row ? row.seq : await w.upstreamSeq()) : null;
        const heldBy = opts.heldBy !== undefined && exact && !opts.fromUpstream ? opts.heldBy : null;
        const next = { merged, updatedAt: stamp, seq, heldBy };
        rows.set(k, next);
        writes.set(k, next);
        changed.push(mergeableToDevice(merged, stamp));
      }
      if (writes.size > 0) {
        const ws = [...writes.values()];
        const col = <T>(f: (r: CurrentRow) => T): T[] => ws.map(f);
        await this.#query(c, PUT_DEVICES, [
          col((r) => r.merged.deviceId), col((r) => r.merged.product), col((r) => r.merged.channel), col((r) => r.merged.version),
          col((r) => r.merged.firstSeenAt), col((r) => r.merged.lastSeenAt), col((r) => r.merged.lastReportAt), col((r) => r.merged.source),
          col((r) => r.updatedAt), col((r) => r.seq), col((r) => r.merged.lastEvent), col((r) => r.heldBy ?? null),
        ]);
      }
      // A record repeated in the batch changed its row more than once: report it once, as stored.
      if (changed.length < 2) return changed;
      const last = new Map(changed.map((d) => [key(d), d]));
      return last.size === changed.length ? changed : [...last.values()];
    });
  }

  async touchDevice(deviceId: string, product: string): Promise<boolean> {
    return this.#deviceWrite(async (c, w) => {
      const r = await c.query({ ...TOUCH_DEVICE, values: [w.at, deviceId, product] });
      return (r.rowCount ?? 0) > 0;
    });
  }

  async upsertMirror(url: string, announcedAt: Date, storeId?: string): Promise<MirrorState> {
    const [row] = await this.#query<{ state: string }>(this.#pool, UPSERT_MIRROR, [url, announcedAt.getTime(), storeId ?? null]);
    return row?.state === 'approved' ? 'approved' : 'pending';
  }

  async approveMirror(url: string, at: Date): Promise<boolean> {
    const r = await this.#db.updateTable('mirrors').set({ state: 'approved', approved_at: sql<number>`coalesce(approved_at, ${at.getTime()}::bigint)` })
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
    // NULLS FIRST: SQLite's order (PostgreSQL puts nulls last by default).
    const rows = await q.groupBy(['product', 'channel', 'version']).orderBy('product').orderBy('channel')
      .orderBy((ob) => ob.ref('version'), (o) => o.asc().nullsFirst()).execute();
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


  async #insertMetadata(c: Client, records: MetadataRecord[]): Promise<void> {
    if (records.length > 0) await this.#insert(c, 'metadata', this.#db.insertInto('metadata').values(records.map(metadataRow)));
  }

  /** Runs an insert, turning a duplicate key into StoreConflictError (the transaction then rolls back). */
  async #insert(c: Client, what: StoreConflictError['what'], query: Compilable): Promise<void> {
    try {
      await this.#run(c, query);
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreConflictError(`${what} already exists`, what, { cause: err });
      throw err;
    }
  }

  async #run(c: Client, query: Compilable): Promise<void> {
    const { sql: text, parameters } = query.compile();
    await c.query(text, parameters as unknown[]);
  }

  async #query<R>(on: pg.Pool | Client, p: Prepared, values: unknown[]): Promise<R[]> {
    return (await on.query({ name: p.name, text: p.text, values })).rows as R[];
  }

  async #transaction<T>(fn: (c: Client) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const c = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await c.query(begin);
      const value = await fn(c);
      await c.query('COMMIT');
      return value;
    } catch (err) {
      // A connection that cannot even roll back is not returned to the pool.
      await c.query('ROLLBACK').catch((e: Error) => { broken = e; });
      throw err;
    } finally {
      c.release(broken);
    }
  }

  /**
   * A transaction that writes device rows, under the device-feed lock (DEVICE_FEED_LOCK above).
   * `at`, the time every row it writes is stamped with, is later than the newest change's, so a
   * clock stepped back (or another process's clock a little ahead) keeps the history in order.
   * Local rows take positions from the devices_change_seq sequence; a row learnt from upstream that
   * needs no resending takes `upstreamSeq()`, counting down below every position handed out.
   */
  #deviceWrite<T>(fn: (c: Client, w: { at: number; upstreamSeq(): Promise<number> }) => Promise<T>): Promise<T> {
    return this.#lockedWrite(async (c) => {
      // After the lock, in a statement of its own: its snapshot sees every earlier holder's commit.
      const [newest] = await this.#query<{ updated_at: number }>(c, NEWEST_CHANGE, []);
      const now = this.#now().getTime();
      let low: number | undefined;
      const upstreamSeq = async (): Promise<number> => {
        if (low === undefined) {
          const [row] = await this.#query<{ seq: number | null }>(c, OLDEST_CHANGE, []);
          low = Math.min(row?.seq ?? 1, 1);
        }
        return --low;
      };
      return fn(c, { at: newest ? Math.max(now, newest.updated_at + 1) : now, upstreamSeq });
    });
  }

  /**
   * A transaction under the device-feed lock. The two hot writes (recordReport, recordSightings)
   * use it directly: their statements stamp the time themselves (STAMP in pg-sql.ts, the rule of
   * #deviceWrite), one round trip less while the lock is held.
   */
  #lockedWrite<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    return this.#transaction(fn, BEGIN_DEVICE_WRITE);
  }
}

interface CurrentRow {
  merged: MergeableRow;
  updatedAt: number;
  /** Position in the feed; null: a new local one. */
  seq: number | null;
  /** mergeDevices `heldBy` when the row is written as exactly the incoming record. */
  heldBy?: string | null;
}

interface FoldedSighting {
  deviceId: string;
  product: string;
  channel: string;
  source: string;
  firstSeenAt: number;
  lastSeenAt: number;
}

/**
 * One row per (device, product) of a batch, as applying its sightings one by one would leave it:
 * first seen is the first sighting's time (for a device that is new), the rest follows the
 * newest sighting (the later one on a tie, as in SQLite's row-by-row upsert).
 */
export function foldSightings(batch: Sighting[]): FoldedSighting[] {
  const rows = new Map<string, FoldedSighting>();
  for (const s of batch) {
    const t = s.seenAt.getTime();
    const k = `${s.product}\0${s.deviceId}`;
    const row = rows.get(k);
    if (!row) rows.set(k, { deviceId: s.deviceId, product: s.product, channel: s.channel, source: s.source, firstSeenAt: t, lastSeenAt: t });
    else if (t >= row.lastSeenAt) Object.assign(row, { channel: s.channel, source: s.source, lastSeenAt: t });
  }
  return [...rows.values()];
}
