import type { SqliteConnection } from './sqlite-connection.js';

/** Every connection to the database file (the store's, the sighting worker's). */
export function openPragmas(conn: SqliteConnection): void {
  conn.pragma('busy_timeout = 5000');
  conn.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
  conn.pragma('synchronous = NORMAL');
  conn.pragma('foreign_keys = ON');
  // Page cache of up to 64 MiB per connection (SQLite's default is 2 MiB): a mirror sync writes
  // thousands of rows per transaction into the devices table and its seven indexes, and with the
  // default most of those index pages were read again from the file (issue 10, bench/README.md).
  conn.pragma('cache_size = -65536');
}
