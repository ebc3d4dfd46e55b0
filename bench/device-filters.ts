/**
 * What one filtered device page costs (issue 11), in-process, on a registry of N devices in one
 * SQLite file (and, with --pg URL, in a PostgreSQL database that URL names, emptied first):
 *
 *   node --import tsx bench/device-filters.ts [--devices 100000] [--pg postgres://postgres@127.0.0.1:5432/bench]
 *
 * The devices are bulk-written with the Store (sightings, 10,000 per batch; every third device
 * reports applied, every eleventh failed; every seventh was last seen 30 days ago). For each
 * filter the bench pages through the whole listing (pages of 1,000, as `patchwire devices`
 * does) and prints the pages read, the devices listed, and the slowest and median page: the
 * longest the store's one connection is held by a listing (SQLite runs on the server's event
 * loop, so that is the longest stall a listing can cause).
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import pg from 'pg';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import type { DeviceFilter, Sighting, Store } from '../src/store/store.js';
import { makeTempDir, percentile, runMain, table } from './lib.js';

const argv = process.argv.slice(2);
const arg = (name: string, d: string | undefined): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : d);
const DEVICES = Number(arg('--devices', '100000'));
const PG_URL = arg('--pg', undefined);

const id = (i: number) => `0a:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

async function fill(store: Store): Promise<void> {
  const now = Date.now();
  const old = new Date(now - 30 * 86_400_000);
  for (let start = 0; start < DEVICES; start += 10_000) {
    const batch: Sighting[] = [];
    for (let i = start; i < Math.min(DEVICES, start + 10_000); i++) {
      batch.push({ deviceId: id(i), product: 'acme', channel: 'stable', seenAt: i % 7 === 0 ? old : new Date(now), source: 'http://127.0.0.1' });
    }
    await store.recordSightings(batch);
  }
  for (let i = 0; i < DEVICES; i++) {
    const event = i % 11 === 0 ? 'failed' : i % 3 === 0 ? 'applied' : undefined;
    if (!event) continue;
    await store.recordReport({
      deviceId: id(i), product: 'acme', channel: 'stable', event, version: event === 'applied' ? '1.0.0' : null, previousVersion: null,
      detail: null, at: i % 7 === 0 ? old : new Date(now), source: 'http://127.0.0.1',
    });
  }
}

const FILTERS: Array<[string, DeviceFilter]> = [
  ['none', {}],
  ['product', { product: 'acme' }],
  ['version 1.0.0', { product: 'acme', version: '1.0.0' }],
  ['status failed', { product: 'acme', lastEvent: 'failed' }],
  ['status none', { lastEvent: null }],
  ['MAC prefix (1/256)', { idPrefix: '0a:00:00:00:05' }],
  ['stale 7d (residual)', { seenBefore: new Date(Date.now() - 7 * 86_400_000) }],
  ['stale 7d + failed', { product: 'acme', lastEvent: 'failed', seenBefore: new Date(Date.now() - 7 * 86_400_000) }],
];

async function measure(name: string, store: Store): Promise<string[][]> {
  const rows: string[][] = [];
  for (const [label, filter] of FILTERS) {
    const times: number[] = [];
    let listed = 0;
    let after: string | null = null;
    do {
      const t0 = performance.now();
      const page = await store.listDevicePage(filter, after, 1000);
      times.push(performance.now() - t0);
      listed += page.devices.length;
      after = page.next;
    } while (after !== null);
    rows.push([name, label, String(times.length), String(listed), `${Math.max(...times).toFixed(1)} ms`, `${percentile(times, 50).toFixed(1)} ms`]);
  }
  return rows;
}

async function fillAndMeasure(name: string, store: Store): Promise<string[][]> {
  try {
    await store.migrate();
    await fill(store);
    return await measure(name, store);
  } finally {
    await store.close();
  }
}

runMain(async () => {
  const out: string[][] = [];
  const dir = await makeTempDir('patchwire-bench-filters-');
  out.push(...(await fillAndMeasure('sqlite', await SqliteStore.open(join(dir, 'patchwire.db')))));
  if (PG_URL) {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    await c.end();
    out.push(...(await fillAndMeasure('postgres', await PostgresStore.open(PG_URL))));
  }
  console.log(`${DEVICES} devices, pages of 1000`);
  console.log(table(['store', 'filter', 'pages', 'devices', 'slowest page', 'median page'], out));
});
