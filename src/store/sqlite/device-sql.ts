/**
 * Raw SQL of the device statements on the server's hot paths (and of mirror consolidation, which
 * merges up to 10,000 records per call). They run as cached better-sqlite3 prepared statements,
 * not through kysely: building and compiling a kysely query per check costs more than the indexed
 * lookup itself, and the sighting upsert runs 10,000 times per batch. Everything else goes
 * through kysely.
 */

const DEVICE_COLUMNS = 'device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at, change_seq';
/** What reads return: the written columns and the latest report's event (migration 0009, written by reports and merges only). */
export const DEVICE_READ_COLUMNS = `${DEVICE_COLUMNS}, last_event`;

/** Point lookup on the (device_id, product) primary key of the WITHOUT ROWID devices table. */
export const GET_DEVICE_SQL = `
  SELECT ${DEVICE_READ_COLUMNS}
  FROM devices WHERE device_id = ? AND product = ?`;

/**
 * Adds or refreshes a device from a sighting. Batches from several server processes can arrive
 * out of order, so last_seen_at only moves forward and channel/source follow the newest sighting
 * (an older sighting must not overwrite where the device was last heard from). In an SQLite
 * UPDATE every right-hand side reads the old row, so the comparisons below see the old values.
 * updated_at and change_seq (the last two parameters) move only when the row actually changes, so
 * a stale sighting does not make consolidation resend an unchanged record.
 */
const SIGHTING_CHANGES = `excluded.last_seen_at > devices.last_seen_at
        OR (excluded.last_seen_at = devices.last_seen_at
            AND (excluded.channel <> devices.channel OR excluded.source <> devices.source))`;
export const UPSERT_SIGHTING_SQL = `
  INSERT INTO devices (${DEVICE_COLUMNS})
  VALUES (?, ?, ?, NULL, ?, ?, NULL, ?, ?, ?)
  ON CONFLICT (device_id, product) DO UPDATE SET
    channel = CASE WHEN excluded.last_seen_at >= devices.last_seen_at THEN excluded.channel ELSE devices.channel END,
    source = CASE WHEN excluded.last_seen_at >= devices.last_seen_at THEN excluded.source ELSE devices.source END,
    last_seen_at = max(devices.last_seen_at, excluded.last_seen_at),
    updated_at = CASE WHEN ${SIGHTING_CHANGES} THEN excluded.updated_at ELSE devices.updated_at END,
    change_seq = CASE WHEN ${SIGHTING_CHANGES} THEN excluded.change_seq ELSE devices.change_seq END`;

/**
 * Writes a merged record (mergeDevices); the caller has already decided that it changed. The last
 * two: the mirror store that sent exactly this record (or null) and the change_seq again (the
 * mark holds while the row keeps that position; every other write moves it).
 */
export const PUT_DEVICE_SQL = `
  INSERT INTO devices (${DEVICE_READ_COLUMNS}, held_by, held_seq)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device_id, product) DO UPDATE SET
    channel = excluded.channel, version = excluded.version, first_seen_at = excluded.first_seen_at,
    last_seen_at = excluded.last_seen_at, last_report_at = excluded.last_report_at,
    source = excluded.source, updated_at = excluded.updated_at, change_seq = excluded.change_seq,
    last_event = excluded.last_event, held_by = excluded.held_by, held_seq = excluded.held_seq`;

/** mergeDevices: a device this store does not have, written as it came (changes 0 when it has it); the parameters of PUT_DEVICE_SQL. */
export const ADD_DEVICE_SQL = `
  INSERT INTO devices (${DEVICE_READ_COLUMNS}, held_by, held_seq)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device_id, product) DO NOTHING`;

/**
 * Keeps a device's newest REPORTS_KEPT_PER_DEVICE reports: deletes those at or below the one
 * that many places down (reports_device is (device_id, product) and ends with the rowid, id).
 */
export const TRIM_REPORTS_SQL = `
  DELETE FROM reports WHERE device_id = ? AND product = ? AND id <= (
    SELECT id FROM reports WHERE device_id = ? AND product = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`;

/**
 * The newest change (one descent of the devices_change_seq index): writes continue the sequence
 * after it, and take a time no earlier than its updated_at (every local write assigns both in
 * step, so this row also holds the newest time).
 */
export const NEWEST_CHANGE_SQL = 'SELECT change_seq AS seq, updated_at AS t FROM devices ORDER BY change_seq DESC LIMIT 1';

/** The lowest position in the feed: rows learnt from upstream count down from there. */
export const OLDEST_CHANGE_SQL = 'SELECT min(change_seq) AS seq FROM devices';

/**
 * listDeviceChanges, in the order of the devices_change_seq index; `held`: the mirror store holding
 * the row as it is (held_by while the row has not moved since); the device's binding joined on the
 * primary key of device_identities (a sync page carries it).
 */
export const CHANGED_AFTER_SQL = `
  SELECT ${DEVICE_READ_COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')}, CASE WHEN d.held_seq = d.change_seq THEN d.held_by END AS held,
    i.public_key AS bound_public_key, i.key_id AS bound_key_id, i.status AS bound_status
  FROM devices AS d INDEXED BY devices_change_seq
  LEFT JOIN device_identities AS i ON i.device_id = d.device_id AND i.product = d.product
  WHERE d.change_seq > ? ORDER BY d.change_seq LIMIT ?`;

/**
 * Adds a mirror or refreshes its announce time. A different store id means the mirror lost or
 * replaced its store: both cursors reset, so the next consolidation re-syncs it in full. (In an
 * SQLite UPDATE every right-hand side reads the old row, so the CASEs see the old store_id.)
 */
export const UPSERT_MIRROR_SQL = `
  INSERT INTO mirrors (url, announced_at, store_id, pull_after, push_after, last_sync_at, last_attempt_at, pulled, pushed, error)
  VALUES (?, ?, ?, NULL, NULL, NULL, NULL, 0, 0, NULL)
  ON CONFLICT (url) DO UPDATE SET
    announced_at = excluded.announced_at,
    pull_after = CASE WHEN excluded.store_id IS NOT NULL AND excluded.store_id IS NOT mirrors.store_id THEN NULL ELSE mirrors.pull_after END,
    push_after = CASE WHEN excluded.store_id IS NOT NULL AND excluded.store_id IS NOT mirrors.store_id THEN NULL ELSE mirrors.push_after END,
    store_id = coalesce(excluded.store_id, mirrors.store_id)
  RETURNING state`;
