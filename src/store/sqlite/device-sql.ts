/**
 * Raw SQL of the two device statements on the server's hot paths. They run as cached
 * better-sqlite3 prepared statements, not through kysely: building and compiling a kysely query
 * per check costs more than the indexed lookup itself, and the sighting upsert runs 10,000 times
 * per batch. Everything else goes through kysely.
 */

/** Point lookup on the (device_id, product) primary key of the WITHOUT ROWID devices table. */
export const GET_DEVICE_SQL = `
  SELECT device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source
  FROM devices WHERE device_id = ? AND product = ?`;

/**
 * Adds or refreshes a device from a sighting. Batches from several server processes can arrive
 * out of order, so last_seen_at only moves forward and channel/source follow the newest sighting
 * (an older sighting must not overwrite where the device was last heard from). In an SQLite
 * UPDATE every right-hand side reads the old row, so the comparisons below see the old last_seen_at.
 */
export const UPSERT_SIGHTING_SQL = `
  INSERT INTO devices (device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source)
  VALUES (?, ?, ?, NULL, ?, ?, NULL, ?)
  ON CONFLICT (device_id, product) DO UPDATE SET
    channel = CASE WHEN excluded.last_seen_at >= devices.last_seen_at THEN excluded.channel ELSE devices.channel END,
    source = CASE WHEN excluded.last_seen_at >= devices.last_seen_at THEN excluded.source ELSE devices.source END,
    last_seen_at = max(devices.last_seen_at, excluded.last_seen_at)`;
