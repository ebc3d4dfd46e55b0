import type { Kysely } from 'kysely';
import type { DeviceIdentityRecord, PreauthorizationRecord } from '../identity.js';
import type { MirrorRecord, MirrorUpdate } from '../store.js';
import type { MirrorsTable, SqliteSchema } from './sqlite-schema.js';
import { toIdentity, toPreauthorization } from './identity-rows.js';
import { toMirror } from './sqlite-rows.js';

/**
 * The Store methods whose kysely query reads the same in SQLite and PostgreSQL (both stores use
 * this schema type): one copy, called by SqliteStore and PostgresStore. Hot paths and writes that
 * need a dialect's own SQL stay in each store.
 */
type Db = Kysely<SqliteSchema>;
type ProductFilter = { product?: string };

export async function listMirrors(db: Db): Promise<MirrorRecord[]> {
  return (await db.selectFrom('mirrors').selectAll().orderBy('url').execute()).map(toMirror);
}

export async function removeMirror(db: Db, url: string): Promise<boolean> {
  const r = await db.deleteFrom('mirrors').where('url', '=', url).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function updateMirror(db: Db, url: string, update: MirrorUpdate): Promise<void> {
  const ms = (d: Date | null): number | null => (d === null ? null : d.getTime());
  const set: Partial<MirrorsTable> = {};
  if (update.cursor !== undefined) set.pull_after = update.cursor;
  if (update.pushCursor !== undefined) set.push_after = update.pushCursor;
  if (update.lastSyncAt !== undefined) set.last_sync_at = ms(update.lastSyncAt);
  if (update.lastAttemptAt !== undefined) set.last_attempt_at = ms(update.lastAttemptAt);
  if (update.pulled !== undefined) set.pulled = update.pulled;
  if (update.pushed !== undefined) set.pushed = update.pushed;
  if (update.error !== undefined) set.error = update.error;
  if (update.skipped !== undefined) set.skipped = update.skipped;
  if (update.skippedWhy !== undefined) set.skipped_why = update.skippedWhy;
  if (Object.keys(set).length === 0) return;
  await db.updateTable('mirrors').set(set).where('url', '=', url).execute();
}

export async function countVersions(db: Db, filter?: ProductFilter): Promise<Record<string, number>> {
  let q = db.selectFrom('devices').select((eb) => ['version', eb.fn.countAll<number>().as('n')]);
  if (filter?.product !== undefined) q = q.where('product', '=', filter.product);
  const counts: Record<string, number> = {};
  for (const row of await q.groupBy('version').execute()) counts[row.version ?? 'none'] = Number(row.n);
  return counts;
}

export async function countDevices(db: Db, filter?: ProductFilter): Promise<number> {
  let q = db.selectFrom('devices').select((eb) => eb.fn.countAll<number>().as('n'));
  if (filter?.product !== undefined) q = q.where('product', '=', filter.product);
  return Number((await q.executeTakeFirstOrThrow()).n);
}

export async function listIdentities(db: Db, filter: ProductFilter & { conflicts?: boolean } = {}): Promise<DeviceIdentityRecord[]> {
  let q = db.selectFrom('device_identities').selectAll();
  if (filter.product !== undefined) q = q.where('product', '=', filter.product);
  if (filter.conflicts) q = q.where('pending_key_id', 'is not', null);
  return (await q.orderBy('product').orderBy('device_id').execute()).map(toIdentity);
}

export async function countIdentities(db: Db, product: string): Promise<number> {
  const row = await db.selectFrom('device_identities').select((eb) => eb.fn.countAll<number>().as('n')).where('product', '=', product).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function countIdentityConflicts(db: Db): Promise<number> {
  const row = await db.selectFrom('device_identities').select((eb) => eb.fn.countAll<number>().as('n')).where('pending_key_id', 'is not', null).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function putPreauthorization(db: Db, p: PreauthorizationRecord): Promise<void> {
  const row = { device_id: p.deviceId, product: p.product, public_key: p.publicKey, created_at: p.createdAt.getTime() };
  await db.insertInto('preauthorizations').values(row)
    .onConflict((oc) => oc.columns(['device_id', 'product']).doUpdateSet({ public_key: row.public_key, created_at: row.created_at })).execute();
}

export async function getPreauthorization(db: Db, deviceId: string, product: string): Promise<PreauthorizationRecord | undefined> {
  const row = await db.selectFrom('preauthorizations').selectAll().where('device_id', '=', deviceId).where('product', '=', product).executeTakeFirst();
  return row && toPreauthorization(row);
}
