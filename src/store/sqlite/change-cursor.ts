import { InvalidCursorError } from '../errors.js';
import type { ChangeCursor } from '../store.js';

/**
 * The SQLite store's ChangeCursor: the decimal change_seq of the last row read. One connection
 * writes at a time (BEGIN IMMEDIATE), so sequence order is commit order and `> seq` never skips
 * a change committed later.
 */
export function formatCursor(seq: number): ChangeCursor {
  return String(seq);
}

/** Cursors come back over the wire: anything but a number this store could have made is refused. */
export function parseCursor(cursor: ChangeCursor): number {
  const seq = /^-?\d{1,15}$/.test(cursor) ? Number(cursor) : NaN;
  if (!Number.isSafeInteger(seq)) throw new InvalidCursorError(cursor);
  return seq;
}

/**
 * The SQLite store's device listing cursor: the primary key (device id, product) of the last row
 * of a page, as base64url JSON so that no character of either needs escaping.
 */
export function formatDeviceCursor(deviceId: string, product: string): string {
  return Buffer.from(JSON.stringify([deviceId, product]), 'utf8').toString('base64url');
}

export function parseDeviceCursor(cursor: string): [deviceId: string, product: string] {
  let v: unknown;
  try {
    v = /^[A-Za-z0-9_-]{1,1024}$/.test(cursor) ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined;
  } catch {
    v = undefined;
  }
  // The keys this server issues are MACs and names: printable ASCII. Anything else is forged (found
  // by an attacker: a NUL in a forged cursor reached PostgreSQL and came back as a 500).
  const key = (x: unknown): x is string => typeof x === 'string' && /^[\x20-\x7e]{1,256}$/.test(x);
  if (!Array.isArray(v) || v.length !== 2 || !key(v[0]) || !key(v[1])) throw new InvalidCursorError(cursor);
  return [v[0], v[1]];
}
