import type { Kysely } from 'kysely';
import type { ChannelVersionCount, VersionSnapshotRow } from '../store.js';
import type { SqliteSchema } from './sqlite-schema.js';

/**
 * The fleet snapshots of the dashboard's chart (migration 0010_version_snapshots): the same
 * kysely queries in SQLite and PostgreSQL, called by both stores (as shared-queries.ts).
 */
type Db = Kysely<SqliteSchema>;

/** Rows per INSERT: well under SQLite's 32,766 bound parameters (5 per row). */
const ROWS_PER_INSERT = 1000;

export async function addVersionSnapshot(db: Db, at: Date, counts: ChannelVersionCount[], keepAfter: Date): Promise<void> {
  await db.deleteFrom('version_snapshots').where('at', '<', keepAfter.getTime()).execute();
  if (counts.length === 0) return;
  const rows = counts.map((c) => ({ at: at.getTime(), product: c.product, channel: c.channel, version: c.version, devices: c.devices }));
  if (rows.length <= ROWS_PER_INSERT) {
    await db.insertInto('version_snapshots').values(rows).execute();
    return;
  }
  // A fleet with more distinct (product, channel, version) triples than one statement holds.
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) await trx.insertInto('version_snapshots').values(rows.slice(i, i + ROWS_PER_INSERT)).execute();
  });
}

export async function listVersionSnapshots(db: Db, filter: { product?: string; since: Date }, limit: number): Promise<VersionSnapshotRow[]> {
  let q = db.selectFrom('version_snapshots').selectAll().where('at', '>=', filter.since.getTime());
  if (filter.product !== undefined) q = q.where('product', '=', filter.product);
  const rows = await q.orderBy('at').orderBy('product').orderBy('channel').orderBy('version', (ob) => ob.asc().nullsFirst()).limit(limit).execute();
  return rows.map((r) => ({ at: new Date(Number(r.at)), product: r.product, channel: r.channel, version: r.version, devices: Number(r.devices) }));
}

export async function latestVersionSnapshotAt(db: Db): Promise<Date | null> {
  const row = await db.selectFrom('version_snapshots').select((eb) => eb.fn.max('at').as('at')).executeTakeFirst();
  return row?.at === null || row?.at === undefined ? null : new Date(Number(row.at));
}
