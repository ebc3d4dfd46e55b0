/**
 * Diagnostic micro-benchmark of the two registry statements on the check path, in-process, on
 * a 100,000-device SQLite file built exactly as bench/check.ts builds it:
 *   - SqliteStore.getDevice (the point read of every `version: null` check), random devices;
 *   - SqliteStore.recordSightings with a full batch (SightingBatcher's maxBatch, 5,000): it is
 *     synchronous, so its duration is how long the server's event loop is blocked per flush;
 *   - the same point read on a raw better-sqlite3 connection with a larger page cache / mmap,
 *     to show what the store's pragmas cost.
 *
 *   node --import tsx bench/registry-micro.ts
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { GET_DEVICE_SQL } from '../src/store/sqlite/device-sql.js';
import type { Sighting } from '../src/store/store.js';
import { cleanup, makeTempDir, percentile, runMain, table } from './lib.js';

const DEVICES = 100_000;
const LOOKUPS = 200_000;

function deviceId(i: number): string {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `aa:bb:cc:${h((i >> 16) & 255)}:${h((i >> 8) & 255)}:${h(i & 255)}`;
}

const ids = Array.from({ length: LOOKUPS }, () => deviceId(1 + Math.floor(Math.random() * DEVICES)));

function timeLookups(get: (id: string) => unknown): number {
  for (let i = 0; i < 20_000; i++) get(ids[i]!); // warm
  const t0 = performance.now();
  for (const id of ids) get(id);
  return ((performance.now() - t0) * 1000) / LOOKUPS; // microseconds per lookup
}

async function main(): Promise<void> {
  const tmp = await makeTempDir('patchwire-bench-registry-');
  const file = join(tmp, 'patchwire.db');
  const store = await SqliteStore.open(file);
  await store.migrate();
  const seenAt = new Date();
  for (let start = 1; start <= DEVICES; start += 10_000) {
    const batch: Sighting[] = [];
    for (let i = start; i < start + 10_000 && i <= DEVICES; i++) batch.push({ deviceId: deviceId(i), product: 'acme', channel: 'stable', seenAt, source: 'http://127.0.0.1:1' });
    await store.recordSightings(batch);
  }
  for (let i = 4; i <= DEVICES; i += 4) {
    await store.recordReport({ deviceId: deviceId(i), product: 'acme', channel: 'stable', event: 'applied', version: '1.0.0', previousVersion: null, detail: null, at: seenAt, source: 'http://127.0.0.1:1' });
  }

  const rows: string[][] = [];
  // The store's own getDevice (async wrapper around the cached prepared statement).
  const tAsync0 = performance.now();
  for (let i = 0; i < 50_000; i++) await store.getDevice(ids[i]!, 'acme');
  rows.push(['SqliteStore.getDevice (await, store pragmas)', `${(((performance.now() - tAsync0) * 1000) / 50_000).toFixed(2)} us/lookup`]);

  // Full sighting batches: the event-loop block per SightingBatcher flush.
  const flushMs: number[] = [];
  for (let round = 0; round < 10; round++) {
    const batch: Sighting[] = [];
    const now = new Date();
    for (let k = 0; k < 5000; k++) batch.push({ deviceId: ids[round * 5000 + k]!, product: 'acme', channel: 'stable', seenAt: now, source: 'http://127.0.0.1:2' });
    const t0 = performance.now();
    await store.recordSightings(batch);
    flushMs.push(performance.now() - t0);
  }
  rows.push(['recordSightings(5,000 random existing devices), median', `${percentile(flushMs, 50).toFixed(1)} ms (event loop blocked)`]);
  rows.push(['recordSightings(5,000 random existing devices), max', `${Math.max(...flushMs).toFixed(1)} ms`]);
  await store.close();

  for (const [label, pragmas] of [
    ['raw statement, store pragmas (cache_size default -2000 = 2 MB)', [] as string[]],
    ['raw statement, cache_size = -65536 (64 MB)', ['cache_size = -65536']],
    ['raw statement, mmap_size = 268435456', ['mmap_size = 268435456']],
  ] as const) {
    const db = new Database(file, { readonly: true });
    db.pragma('journal_mode = WAL');
    for (const p of pragmas) db.pragma(p);
    const stmt = db.prepare(GET_DEVICE_SQL);
    const us = timeLookups((id) => stmt.get(id, 'acme'));
    rows.push([label, `${us.toFixed(2)} us/lookup`]);
    db.close();
  }
  const size = (await import('node:fs')).statSync(file).size;
  process.stdout.write(`registry file ${(size / 1e6).toFixed(1)} MB, ${DEVICES} devices, ${LOOKUPS} random lookups per raw row\n`);
  process.stdout.write(`${table(['measurement', 'result'], rows)}\n`);
}

runMain(async () => {
  try {
    await main();
  } finally {
    await cleanup();
  }
});
