/**
 * Raw SQL of the PostgreSQL store's hot paths, run as named prepared statements (pg parses and
 * plans each once per connection): building a kysely query per check costs more than the indexed
 * lookup. Batches go as arrays through unnest(), one statement per batch. Everything else goes
 * through kysely. The semantics are SQLite's (src/store/sqlite/device-sql.ts), written for
 * PostgreSQL: greatest() for max(), IS DISTINCT FROM for IS NOT.
 */

/** A prepared statement: pg keeps it per connection under `name`. */
export interface Prepared {
  name: string;
  text: string;
}

const DEVICE_COLUMNS = 'device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at, change_seq';
/** What reads return: the written columns and the latest report's event (written by reports and merges only). */
export const DEVICE_READ_COLUMNS = `${DEVICE_COLUMNS}, last_event`;

export const GET_DEVICE: Prepared = {
  name: 'pw_get_device',
  text: `SELECT ${DEVICE_READ_COLUMNS} FROM devices WHERE device_id = $1 AND product = $2`,
};

export const LATEST_METADATA: Prepared = {
  name: 'pw_latest_metadata',
  text: 'SELECT product, role, version, json, expires_at FROM metadata WHERE product = $1 AND role = $2 ORDER BY version DESC LIMIT 1',
};

export const GET_IDENTITY: Prepared = {
  name: 'pw_get_identity',
  text: 'SELECT * FROM device_identities WHERE device_id = $1 AND product = $2',
};

/** getIdentities: one pass over the keys, in their order (ord). */
export const GET_IDENTITIES: Prepared = {
  name: 'pw_get_identities',
  text: `SELECT k.ord, i.* FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(device_id, product, ord)
    JOIN device_identities i ON i.device_id = k.device_id AND i.product = k.product`,
};

/** getPreauthorizations: one pass over the keys, in their order (ord). */
export const GET_PREAUTHORIZATIONS: Prepared = {
  name: 'pw_get_preauthorizations',
  text: `SELECT k.ord, p.* FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(device_id, product, ord)
    JOIN preauthorizations p ON p.device_id = k.device_id AND p.product = k.product`,
};

/**
 * addIdentities: insert-if-absent of a batch in one statement; RETURNING names the rows added
 * (a device bound already, or repeated in the batch, is skipped by DO NOTHING).
 */
export const ADD_IDENTITIES: Prepared = {
  name: 'pw_add_identities',
  text: `INSERT INTO device_identities (device_id, product, channel, public_key, key_id, status, pending_public_key, pending_key_id, pending_at, created_at, updated_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[])
    ON CONFLICT (device_id, product) DO NOTHING
    RETURNING device_id, product`,
};

/**
 * The newest local change (one descent of devices_change_seq_idx): a write's time is later than
 * its updated_at, so the history stays in order when the clock steps back.
 */
export const NEWEST_CHANGE: Prepared = {
  name: 'pw_newest_change',
  text: 'SELECT updated_at FROM devices ORDER BY change_seq DESC LIMIT 1',
};

/**
 * The same rule inside a write statement, as a CTE `stamp(at)` from the clock's time `$N`: the
 * statement runs after the device-feed lock was taken, so its snapshot sees every earlier
 * holder's commit, and the write needs no round trip of its own to read the newest change.
 */
const STAMP = `stamp AS (SELECT greatest($N::bigint, coalesce((SELECT updated_at + 1 FROM devices ORDER BY change_seq DESC LIMIT 1), $N::bigint)) AS at)`;

/**
 * recordSightings: one statement per batch, deduplicated by the caller (ON CONFLICT cannot touch
 * a row twice in one statement). As SQLite's UPSERT_SIGHTING_SQL, forward-only: last_seen_at
 * only moves forward and channel/source follow the newest sighting. Every column the update
 * sets comes from the sighting exactly when it changes the row (later, or as late with another
 * channel or source), so the WHERE skips the others: a stale sighting writes nothing, keeps
 * updated_at and its place in the change feed. $7 is the clock's time (STAMP makes the write
 * time of it). nextval() is drawn for every proposed row;
 * positions of skipped rows are gaps, which the feed does not mind.
 */
export const UPSERT_SIGHTINGS: Prepared = {
  name: 'pw_upsert_sightings',
  text: `
  WITH ${STAMP.replace(/\$N/g, '$7')}
  INSERT INTO devices AS d (${DEVICE_COLUMNS})
  SELECT s.device_id, s.product, s.channel, NULL, s.first_seen_at, s.last_seen_at, NULL, s.source, stamp.at, nextval('devices_change_seq')
  FROM stamp, unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
    AS s(device_id, product, channel, first_seen_at, last_seen_at, source)
  ON CONFLICT (device_id, product) DO UPDATE SET
    channel = excluded.channel, source = excluded.source, last_seen_at = excluded.last_seen_at,
    updated_at = excluded.updated_at, change_seq = excluded.change_seq
  WHERE excluded.last_seen_at > d.last_seen_at
    OR (excluded.last_seen_at = d.last_seen_at AND (excluded.channel <> d.channel OR excluded.source <> d.source))`,
};

/**
 * recordReport in one statement: the write time (STAMP, from the clock's $7), the device upsert
 * (the version only for applied/rolled-back, $8; the event $9 as last_event), the history row, and
 * the trim of the device's history to its newest reports ($14: how many older ones stay: every
 * part of the statement sees the table as it was before it, so the new row is not among them),
 * returning the device as stored.
 */
export const RECORD_REPORT: Prepared = {
  name: 'pw_record_report',
  text: `
  WITH ${STAMP.replace(/\$N/g, '$7')}, dev AS (
    INSERT INTO devices AS d (${DEVICE_READ_COLUMNS})
    SELECT $1, $2, $3, CASE WHEN $8::boolean THEN $4::text END, $5, $5, $5, $6, stamp.at, nextval('devices_change_seq'), $9 FROM stamp
    ON CONFLICT (device_id, product) DO UPDATE SET
      channel = excluded.channel, source = excluded.source,
      last_seen_at = greatest(d.last_seen_at, excluded.last_seen_at), last_report_at = excluded.last_report_at,
      updated_at = excluded.updated_at, change_seq = excluded.change_seq, last_event = excluded.last_event,
      version = CASE WHEN $8::boolean THEN excluded.version ELSE d.version END
    RETURNING ${DEVICE_READ_COLUMNS}
  ), rep AS (
    INSERT INTO reports (device_id, product, channel, event, version, previous_version, detail, at, source, to_version, state)
    VALUES ($1, $2, $3, $9, $4, $10, $11, $5, $6, $12, $13)
  ), trimmed AS (
    DELETE FROM reports WHERE device_id = $1 AND product = $2
      AND id <= (SELECT id FROM reports WHERE device_id = $1 AND product = $2 ORDER BY id DESC LIMIT 1 OFFSET $14::bigint)
  )
  SELECT * FROM dev`,
};

/** mergeDevices and getDevices: existing rows of a batch's keys, in one pass. */
export const GET_DEVICES: Prepared = {
  name: 'pw_get_devices',
  text: `SELECT d.* FROM unnest($1::text[], $2::text[]) AS k(device_id, product)
    JOIN devices d ON d.device_id = k.device_id AND d.product = k.product`,
};

/**
 * mergeDevices: writes merged records (the caller decided they changed); a null position takes the
 * next one. held_by: the mirror store that sent exactly this record, or null; held_seq is the
 * position written (the mark holds while the row keeps it; every other write moves it).
 */
export const PUT_DEVICES: Prepared = {
  name: 'pw_put_devices_held',
  text: `
  WITH v AS MATERIALIZED (SELECT u.*, coalesce(u.change_seq, nextval('devices_change_seq')) AS seq
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::text[])
    AS u(device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at, change_seq, last_event, held_by))
  INSERT INTO devices AS d (${DEVICE_READ_COLUMNS}, held_by, held_seq)
  SELECT v.device_id, v.product, v.channel, v.version, v.first_seen_at, v.last_seen_at, v.last_report_at, v.source, v.updated_at,
    v.seq, v.last_event, v.held_by, CASE WHEN v.held_by IS NOT NULL THEN v.seq END
  FROM v
  ON CONFLICT (device_id, product) DO UPDATE SET
    channel = excluded.channel, version = excluded.version, first_seen_at = excluded.first_seen_at,
    last_seen_at = excluded.last_seen_at, last_report_at = excluded.last_report_at,
    source = excluded.source, updated_at = excluded.updated_at, change_seq = excluded.change_seq, last_event = excluded.last_event,
    held_by = excluded.held_by, held_seq = excluded.held_seq`,
};

/** The lowest position in the feed: rows learnt from upstream count down from there. */
export const OLDEST_CHANGE: Prepared = { name: 'pw_oldest_change', text: 'SELECT min(change_seq) AS seq FROM devices' };

export const CHANGED_AFTER: Prepared = {
  name: 'pw_changed_after_bound',
  text: `SELECT ${DEVICE_READ_COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')}, CASE WHEN d.held_seq = d.change_seq THEN d.held_by END AS held,
    i.public_key AS bound_public_key, i.key_id AS bound_key_id, i.status AS bound_status
    FROM devices d LEFT JOIN device_identities i ON i.device_id = d.device_id AND i.product = d.product
    WHERE d.change_seq > $1 ORDER BY d.change_seq LIMIT $2`,
};

export const TOUCH_DEVICE: Prepared = {
  name: 'pw_touch_device',
  text: `UPDATE devices SET updated_at = $1, change_seq = nextval('devices_change_seq') WHERE device_id = $2 AND product = $3`,
};

/** As SQLite's UPSERT_MIRROR_SQL: a different store id resets both cursors. */
export const UPSERT_MIRROR: Prepared = {
  name: 'pw_upsert_mirror',
  text: `
  INSERT INTO mirrors AS m (url, announced_at, store_id, pull_after, push_after, last_sync_at, last_attempt_at, pulled, pushed, error)
  VALUES ($1, $2, $3, NULL, NULL, NULL, NULL, 0, 0, NULL)
  ON CONFLICT (url) DO UPDATE SET
    announced_at = excluded.announced_at,
    pull_after = CASE WHEN excluded.store_id IS NOT NULL AND excluded.store_id IS DISTINCT FROM m.store_id THEN NULL ELSE m.pull_after END,
    push_after = CASE WHEN excluded.store_id IS NOT NULL AND excluded.store_id IS DISTINCT FROM m.store_id THEN NULL ELSE m.push_after END,
    store_id = coalesce(excluded.store_id, m.store_id)
  RETURNING state`,
};
