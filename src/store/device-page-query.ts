import { DEVICE_PAGE_SCAN, type DeviceFilter } from './store.js';

/**
 * The SQL of one filtered device page (Store.listDevicePage), the same in SQLite and PostgreSQL
 * but for the dialect hooks below. Every page is a range of one index ordered by device id:
 *
 * - the equalities go first: lastEvent (index (product,) last_event), else version (index
 *   (product,) version), else product (index product), else none (the primary key); each of
 *   these indexes continues with device_id, so the page's order is the index's;
 * - the cursor and the id prefix bound that device_id range from below and above;
 * - what is left (seenBefore, and version when lastEvent took the index) is a residual filter:
 *   the range is then read at most DEVICE_PAGE_SCAN rows far, and the last row read is returned
 *   too (`tail`), so the next page starts after it even when none of those rows matched.
 *
 * last_seen_at has no index on purpose: sightings rewrite it all the time.
 */

/** The indexes a page can read (each ordered by device_id after its equality columns). */
export type PageIndex = 'primary' | 'product' | 'version' | 'product_version' | 'event' | 'product_event';

export interface PageDialect {
  /** The n-th (1-based) bind parameter, with its type where the dialect needs one (`$3::text`). */
  param(n: number, type: 'text' | 'bigint'): string;
  /** Placed after `FROM devices`: an index hint (SQLite's INDEXED BY), or '' to leave the choice to the planner. */
  indexHint(index: PageIndex): string;
}

export interface PageQuery {
  text: string;
  values: unknown[];
  /** True when the query reads a bounded scan with a residual filter (rows carry `tail` and `scanned`). */
  residual: boolean;
  /** The rows the scan reads at most (residual queries). */
  scan: number;
}

/** The cursor position a page starts after: (device id, product) in primary-key order. */
export interface PageStart {
  deviceId: string;
  product: string;
}

/** The last device id a prefix can match: every id character (0-9 a-f :) sorts below '~'. */
const PREFIX_END = '~';

export function devicePageQuery(columns: string, filter: DeviceFilter, start: PageStart | null, limit: number, d: PageDialect): PageQuery {
  const values: unknown[] = [];
  const p = (v: unknown, type: 'text' | 'bigint' = 'text'): string => {
    values.push(v);
    return d.param(values.length, type);
  };
  const eq = (column: string, v: string | null): string => (v === null ? `${column} IS NULL` : `${column} = ${p(v)}`);
  const conds: string[] = [];
  const residual: string[] = [];
  const product = filter.product;
  if (product !== undefined) conds.push(`product = ${p(product)}`);
  let index: PageIndex = product !== undefined ? 'product' : 'primary';
  if (filter.lastEvent !== undefined) {
    conds.push(eq('last_event', filter.lastEvent));
    index = product !== undefined ? 'product_event' : 'event';
    if (filter.version !== undefined) residual.push(eq('version', filter.version));
  } else if (filter.version !== undefined) {
    conds.push(eq('version', filter.version));
    index = product !== undefined ? 'product_version' : 'version';
  }
  // The lower bound: after the cursor, and not before the prefix ((prefix, '') sorts before
  // every device of it: no product name is empty).
  let from = start;
  if (filter.idPrefix !== undefined && (from === null || from.deviceId < filter.idPrefix)) from = { deviceId: filter.idPrefix, product: '' };
  if (from !== null) {
    if (product !== undefined) {
      // One product: the rows after (a, b) are those with device_id > a, and device_id = a too
      // when the product sorts after b. Written on device_id alone, so any index serves it.
      conds.push(`device_id ${product > from.product ? '>=' : '>'} ${p(from.deviceId)}`);
    } else {
      conds.push(`(device_id, product) > (${p(from.deviceId)}, ${p(from.product)})`);
    }
  }
  if (filter.idPrefix !== undefined) conds.push(`device_id < ${p(filter.idPrefix + PREFIX_END)}`);
  if (filter.seenBefore !== undefined) residual.push(`last_seen_at < ${p(filter.seenBefore.getTime(), 'bigint')}`);

  const where = conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '';
  const from_ = `devices${d.indexHint(index)}`;
  if (residual.length === 0) {
    const text = `SELECT ${columns} FROM ${from_} ${where} ORDER BY device_id, product LIMIT ${p(limit + 1, 'bigint')}`;
    return { text, values, residual: false, scan: limit + 1 };
  }
  const scan = Math.max(DEVICE_PAGE_SCAN, limit + 1);
  // One scan of the range, read once (MATERIALIZED): the matching rows of it, and its last row.
  const text = `WITH scan AS MATERIALIZED (
      SELECT ${columns}, CASE WHEN ${residual.join(' AND ')} THEN 1 ELSE 0 END AS m
      FROM ${from_} ${where} ORDER BY device_id, product LIMIT ${p(scan, 'bigint')})
    SELECT * FROM (SELECT ${columns}, 0 AS tail, 0 AS scanned FROM scan WHERE m = 1 ORDER BY device_id, product LIMIT ${p(limit + 1, 'bigint')}) AS hits
    UNION ALL
    SELECT * FROM (SELECT ${columns}, 1 AS tail, (SELECT count(*) FROM scan) AS scanned FROM scan ORDER BY device_id DESC, product DESC LIMIT 1) AS last_row`;
  return { text, values, residual: true, scan };
}

/** A row of a page query: the device's columns, and for residual queries the tail flag and scan count. */
export interface PageRow {
  device_id: string;
  product: string;
  tail?: number | string;
  scanned?: number | string;
}

/**
 * The page and its cursor from the query's rows: `limit` matching rows and the last of them as
 * the cursor when there are more; else, when the bounded scan read all it may, its last row;
 * else the end (null).
 */
export function devicePageResult<R extends PageRow>(q: PageQuery, rows: R[], limit: number): { rows: R[]; next: PageStart | null } {
  const hits = q.residual ? rows.filter((r) => Number(r.tail) === 0) : rows;
  const page = hits.slice(0, limit);
  const key = (r: R): PageStart => ({ deviceId: r.device_id, product: r.product });
  if (hits.length > limit) return { rows: page, next: key(page[page.length - 1]!) };
  const tail = q.residual ? rows.find((r) => Number(r.tail) === 1) : undefined;
  if (tail && Number(tail.scanned) >= q.scan) return { rows: page, next: key(tail) };
  return { rows: page, next: null };
}
