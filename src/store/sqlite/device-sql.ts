/**
 * Raw SQL of the device statements on the server's hot paths (and of mirror consolidation, which
 * merges up to 10,000 records per call). They run as cached better-sqlite3 prepared statements,
 * not through kysely: building and compiling a kysely query per check costs more than the indexed
 * lookup itself, and the sighting upsert runs 10,000 times per batch. Everything else goes
 * through kysely.
 */

const DEVICE_COLUMNS = 'device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at';

/** Point lookup on the (device_id, product) primary key of the WITHOUT ROWID devices table. */
export const GET_DEVICE_SQL = `
  SELECT ${DEVICE_COLUMNS}
  FROM devices WHERE device_id = ? AND product = ?`;

/**
 * Adds or refreshes a device from a sighting. Batches from several server processes can arrive
 * out of order, so last_seen_at only moves forward and channel/source follow the newest sighting
 * (an older sighting must not overwrite where the device was last heard from). In an SQLite
 * UPDATE every right-hand side reads the old row, so the comparisons below see the old values.
 * updated_at (the last parameter, the write time) moves only when the row actually changes, so a
 * stale sighting does not make consolidation resend an unchanged record.
 */
export const UPSERT_SIGHTING_SQL = `
  INSERT INTO devices (${DEVICE_COLUMNS})
  VALUES (?, ?, ?, NULL, ?, ?, NULL, ?, ?)
  ON CONFLICT (device_id, product) DO UPDATE SET
    channel = CASE WHEN excluded.last_seen_at >= devices.last_seen_at THEN excluded.channel ELSE devices.channel END,
    source = CASE WHEN excluded.last_seen_at >= devices.last_seen_at THEN excluded.source ELSE devices.source END,
    last_seen_at = max(devices.last_seen_at, excluded.last_seen_at),
    updated_at = CASE
      WHEN excluded.last_seen_at > devices.last_seen_at
        OR (excluded.last_seen_at = devices.last_seen_at
            AND (excluded.channel <> devices.channel OR excluded.source <> devices.source))
      THEN excluded.updated_at ELSE devices.updated_at END`;

/** Writes a merged record (mergeDevices); the caller has already decided that it changed. */
export const PUT_DEVICE_SQL = `
  INSERT INTO devices (${DEVICE_COLUMNS})
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device_id, product) DO UPDATE SET
    channel = excluded.channel, version = excluded.version, first_seen_at = excluded.first_seen_at,
    last_seen_at = excluded.last_seen_at, last_report_at = excluded.last_report_at,
    source = excluded.source, updated_at = excluded.updated_at`;

/**
 * The newest change time in the table (one descent of the devices_updated_at index). Writes take
 * max(Date.now(), this) so updated_at never goes backwards when the wall clock is stepped back; a
 * change written "before" the cursor a primary already holds would never be pulled.
 */
export const MAX_UPDATED_AT_SQL = 'SELECT max(updated_at) AS t FROM devices';

/** listDevicesChangedSince; the order is that of the devices_updated_at index. */
export const CHANGED_SINCE_SQL = `
  SELECT ${DEVICE_COLUMNS} FROM devices WHERE updated_at >= ?
  ORDER BY updated_at, device_id, product LIMIT ?`;

/** listDevicesChangedSince with a keyset position: strictly after (updated_at, device_id, product). */
export const CHANGED_AFTER_SQL = `
  SELECT ${DEVICE_COLUMNS} FROM devices WHERE (updated_at, device_id, product) > (?, ?, ?)
  ORDER BY updated_at, device_id, product LIMIT ?`;

/**
 * Adds a mirror or refreshes its announce time. A different store id means the mirror lost or
 * replaced its store: both cursors reset, so the next consolidation re-syncs it in full. (In an
 * SQLite UPDATE every right-hand side reads the old row, so the CASEs see the old store_id.)
 */
export const UPSERT_MIRROR_SQL = `
  INSERT INTO mirrors (url, announced_at, store_id, cursor, push_cursor, last_sync_at, last_attempt_at, pulled, pushed, error)
  VALUES (?, ?, ?, NULL, NULL, NULL, NULL, 0, 0, NULL)
  ON CONFLICT (url) DO UPDATE SET
    announced_at = excluded.announced_at,
    cursor = CASE WHEN excluded.store_id IS NOT NULL AND excluded.store_id IS NOT mirrors.store_id THEN NULL ELSE mirrors.cursor END,
    push_cursor = CASE WHEN excluded.store_id IS NOT NULL AND excluded.store_id IS NOT mirrors.store_id THEN NULL ELSE mirrors.push_cursor END,
    store_id = coalesce(excluded.store_id, mirrors.store_id)`;
