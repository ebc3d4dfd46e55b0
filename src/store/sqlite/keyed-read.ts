import type { SqliteRawStatement } from './sqlite-connection.js';

/** Keys per statement (a page of the change feed; the JSON text of 5000 keys is ~150 KB). */
const KEYS_PER_READ = 5000;

/**
 * `SELECT ... FROM <table>` joined to a JSON array of [device_id, product] keys on the table's
 * (device_id, product) primary key: each key's row (or none), with `ord`, the key's place.
 */
export const keyedReadSql = (table: string, columns = 't.*'): string => `
  SELECT j.key AS ord, ${columns} FROM json_each(?) AS j
  JOIN ${table} AS t ON t.device_id = j.value ->> 0 AND t.product = j.value ->> 1`;

/**
 * The rows of a batch of (device_id, product) keys, in the keys' order (undefined: no row), read
 * with one statement per KEYS_PER_READ keys (keyedReadSql) instead of one point read per key:
 * the first sync of a million devices made ~3 million point reads, each a call from JS into
 * SQLite and back (bench/README.md, "Issue 10: reconcile, session 2026-12-03").
 */
export function readByKeys<R>(read: SqliteRawStatement, keys: ReadonlyArray<{ deviceId: string; product: string }>): Array<R | undefined> {
  const out = new Array<R | undefined>(keys.length).fill(undefined);
  for (let from = 0; from < keys.length; from += KEYS_PER_READ) {
    const chunk = keys.slice(from, from + KEYS_PER_READ);
    const rows = read.all(JSON.stringify(chunk.map((k) => [k.deviceId, k.product]))) as Array<R & { ord: number }>;
    for (const r of rows) out[from + r.ord] = r;
  }
  return out;
}
