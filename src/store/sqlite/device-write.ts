import { NEWEST_CHANGE_SQL, OLDEST_CHANGE_SQL, UPSERT_SIGHTING_SQL } from './device-sql.js';
import type { SqliteConnection, SqliteRawStatement } from './sqlite-connection.js';

export interface DeviceWrite { at: number; nextSeq(): number; upstreamSeq(): number }

/**
 * A transaction that writes device rows. BEGIN IMMEDIATE takes the write lock before the newest
 * change is read, so with several connections on one file (the sighting worker's and the store's)
 * the sequence follows the commit order: every change made after a reader's page gets a higher
 * change_seq than that page, and the `> cursor` of listDeviceChanges never skips it. Every row
 * written takes its own `nextSeq()`; a row learnt from upstream that needs no resending takes
 * `upstreamSeq()`, counting down below every position handed out so far. The time `at` is later
 * than the newest updated_at (a clock stepped back, or a second write in the same millisecond,
 * keeps the history in order).
 */
export function deviceWrite<T>(conn: SqliteConnection, statement: (sql: string) => SqliteRawStatement, now: number, fn: (w: DeviceWrite) => T): T {
  const newestChange = statement(NEWEST_CHANGE_SQL);
  const oldestChange = statement(OLDEST_CHANGE_SQL);
  return conn.transaction(() => {
    const newest = newestChange.get() as { seq: number; t: number } | undefined;
    // Local changes count up from 1 after the newest; rows from upstream count down from 0.
    let high = Math.max(newest?.seq ?? 0, 0);
    let low: number | undefined;
    const upstreamSeq = (): number => {
      low ??= Math.min((oldestChange.get() as { seq: number | null }).seq ?? 1, 1);
      return --low;
    };
    return fn({ at: newest ? Math.max(now, newest.t + 1) : now, nextSeq: () => ++high, upstreamSeq });
  }).immediate();
}

/** A sighting as it crosses to the worker: deviceId, product, channel, seen at (ms), source. */
export type SightingRow = [string, string, string, number, string];

/** The sightings of one batch, upserted in one device write. */
export function writeSightings(conn: SqliteConnection, statement: (sql: string) => SqliteRawStatement, now: number, rows: SightingRow[]): void {
  const upsert = statement(UPSERT_SIGHTING_SQL);
  deviceWrite(conn, statement, now, (w) => {
    for (const [deviceId, product, channel, t, source] of rows) upsert.run(deviceId, product, channel, t, t, source, w.at, w.nextSeq());
  });
}
