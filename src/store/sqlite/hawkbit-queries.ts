import type { Kysely } from 'kysely';
import type { HawkbitRecords, HawkbitTargetRecord, SwuRecord } from '../hawkbit-records.js';

/**
 * The hawkBit DDI queries (issue 12, migration 0014_hawkbit): the same kysely in SQLite and
 * PostgreSQL, called by both stores (as rollout-queries.ts). Times are epoch milliseconds.
 * The tables are not in the typed schema (they belong to one compatibility surface), hence `any`.
 */
type Db = Kysely<any>;

interface SwuRow { action_id: number | string; product: string; channel: string; version: string; sha256: string; sha1: string; length: number | string; created_at: number | string }
interface TargetRow {
  product: string; device_id: string; token_hash: string | null; channel: string; config_at: number | string | null;
  attributes: string | null; failed_action: number | string | null; updated_at: number | string;
}

const toSwu = (r: SwuRow): SwuRecord => ({
  actionId: Number(r.action_id), product: r.product, channel: r.channel, version: r.version, sha256: r.sha256, sha1: r.sha1,
  length: Number(r.length), createdAt: new Date(Number(r.created_at)),
});

const toTarget = (r: TargetRow): HawkbitTargetRecord => ({
  product: r.product, deviceId: r.device_id, tokenHash: r.token_hash, channel: r.channel,
  configAt: r.config_at === null ? null : new Date(Number(r.config_at)),
  attributes: r.attributes === null ? null : (JSON.parse(r.attributes) as Record<string, string>),
  failedAction: r.failed_action === null ? null : Number(r.failed_action),
  updatedAt: new Date(Number(r.updated_at)),
});

/** Stores a release's .swu once (a second put of the same release keeps the first) and answers the stored row. */
export async function putSwu(db: Db, r: Omit<SwuRecord, 'actionId'>): Promise<SwuRecord> {
  await db.insertInto('hawkbit_swu')
    .values({ product: r.product, channel: r.channel, version: r.version, sha256: r.sha256, sha1: r.sha1, length: r.length, created_at: r.createdAt.getTime() })
    .onConflict((oc) => oc.columns(['product', 'channel', 'version']).doNothing()).execute();
  return (await getSwu(db, r.product, r.channel, r.version))!;
}

export async function getSwu(db: Db, product: string, channel: string, version: string): Promise<SwuRecord | undefined> {
  const row = await db.selectFrom('hawkbit_swu').selectAll().where('product', '=', product).where('channel', '=', channel).where('version', '=', version).executeTakeFirst();
  return row ? toSwu(row as SwuRow) : undefined;
}

export async function getSwuByAction(db: Db, product: string, actionId: number): Promise<SwuRecord | undefined> {
  const row = await db.selectFrom('hawkbit_swu').selectAll().where('product', '=', product).where('action_id', '=', actionId).executeTakeFirst();
  return row ? toSwu(row as SwuRow) : undefined;
}

export async function listSwu(db: Db, product: string): Promise<SwuRecord[]> {
  return ((await db.selectFrom('hawkbit_swu').selectAll().where('product', '=', product).orderBy('action_id').execute()) as SwuRow[]).map(toSwu);
}

export async function getHawkbitTarget(db: Db, product: string, deviceId: string): Promise<HawkbitTargetRecord | undefined> {
  const row = await db.selectFrom('hawkbit_targets').selectAll().where('product', '=', product).where('device_id', '=', deviceId).executeTakeFirst();
  return row ? toTarget(row as TargetRow) : undefined;
}

export async function putHawkbitTarget(db: Db, r: HawkbitTargetRecord): Promise<void> {
  const set = {
    token_hash: r.tokenHash, channel: r.channel, config_at: r.configAt?.getTime() ?? null,
    attributes: r.attributes === null ? null : JSON.stringify(r.attributes), failed_action: r.failedAction, updated_at: r.updatedAt.getTime(),
  };
  await db.insertInto('hawkbit_targets').values({ product: r.product, device_id: r.deviceId, ...set })
    .onConflict((oc) => oc.columns(['product', 'device_id']).doUpdateSet(set)).execute();
}

export async function getGatewayTokenHash(db: Db, product: string): Promise<string | undefined> {
  const row = await db.selectFrom('hawkbit_gateway').select('token_hash').where('product', '=', product).executeTakeFirst();
  return row ? (row as { token_hash: string }).token_hash : undefined;
}

/** Sets the product's gateway token, replacing the old one (rotation). */
export async function putGatewayTokenHash(db: Db, product: string, tokenHash: string, at: Date): Promise<void> {
  await db.insertInto('hawkbit_gateway').values({ product, token_hash: tokenHash, created_at: at.getTime() })
    .onConflict((oc) => oc.column('product').doUpdateSet({ token_hash: tokenHash, created_at: at.getTime() })).execute();
}

/** Store.hawkbit over a kysely of either dialect. */
export class KyselyHawkbitRecords implements HawkbitRecords {
  constructor(private readonly db: Db) {}
  putSwu(r: Omit<SwuRecord, 'actionId'>): Promise<SwuRecord> { return putSwu(this.db, r); }
  getSwu(product: string, channel: string, version: string): Promise<SwuRecord | undefined> { return getSwu(this.db, product, channel, version); }
  getSwuByAction(product: string, actionId: number): Promise<SwuRecord | undefined> { return getSwuByAction(this.db, product, actionId); }
  listSwu(product: string): Promise<SwuRecord[]> { return listSwu(this.db, product); }
  getTarget(product: string, deviceId: string): Promise<HawkbitTargetRecord | undefined> { return getHawkbitTarget(this.db, product, deviceId); }
  putTarget(r: HawkbitTargetRecord): Promise<void> { return putHawkbitTarget(this.db, r); }
  getGatewayTokenHash(product: string): Promise<string | undefined> { return getGatewayTokenHash(this.db, product); }
  putGatewayTokenHash(product: string, tokenHash: string, at: Date): Promise<void> { return putGatewayTokenHash(this.db, product, tokenHash, at); }
}
