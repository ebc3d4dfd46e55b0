import type { SqliteConnection } from './sqlite-connection.js';

/** Every connection to the database file (the store's, the sighting worker's). */
export function openPragmas(conn: SqliteConnection): void {
  conn.pragma('busy_timeout = 5000');
  conn.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
  conn.pragma('synchronous = NORMAL');
  conn.pragma('foreign_keys = ON');
}
