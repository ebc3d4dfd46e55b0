/**
 * The sighting writer's thread (sighting-writer.ts): its own connection to the database file
 * writes the batches and folds the WAL into the file, so neither the upserts at random keys of a
 * large registry nor the checkpoint's copy and fsync run on the server's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { SqliteConnection, SqliteRawStatement } from './sqlite-connection.js';
import { writeSightings, type SightingRow } from './device-write.js';
import { openPragmas } from './pragmas.js';

const { file, checkpointMs } = workerData as { file: string; checkpointMs: number };
const conn = new Database(file) as unknown as SqliteConnection;
openPragmas(conn);
const statements = new Map<string, SqliteRawStatement>();
const statement = (text: string) => {
  let s = statements.get(text);
  if (!s) statements.set(text, (s = conn.prepare(text)));
  return s;
};

// PASSIVE: copies what no reader still needs and never waits on a lock; the store's connection
// does not checkpoint (wal_autocheckpoint = 0), so this keeps the WAL from growing.
const checkpoint = () => {
  try {
    conn.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy (another checkpoint, or a writer at that moment): the next tick tries again.
  }
};
const timer = setInterval(checkpoint, checkpointMs);

parentPort!.on('message', (m: { id: number; now: number; rows: SightingRow[] } | { stop: true }) => {
  if ('stop' in m) {
    clearInterval(timer);
    conn.close();
    process.exit(0); // ends this thread only
  }
  try {
    writeSightings(conn, statement, m.now, m.rows);
    parentPort!.postMessage({ id: m.id });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code });
  }
});
