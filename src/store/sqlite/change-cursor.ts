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
