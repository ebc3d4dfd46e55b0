/**
 * What the dashboard's fleet snapshot (services/fleet-history.ts) costs the server, in-process on
 * a SQLite file: one snapshot (countChannelVersions + addVersionSnapshot; on SQLite the grouped
 * count runs on the server's thread, so its duration is how long the event loop is blocked every
 * 15 minutes) and the chart's read of 30 days of snapshots (2,880 of them, 10 versions each).
 *
 *   node --import tsx bench/fleet-snapshot.ts [DEVICES=100000]
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { FleetHistory } from '../src/server/services/fleet-history.js';
import type { Sighting } from '../src/store/store.js';
import { cleanup, makeTempDir, runMain, table } from './lib.js';

const DEVICES = Number(process.argv[2] ?? 100_000);
const VERSIONS = 10;

function deviceId(i: number): string {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `aa:bb:cc:${h((i >> 16) & 255)}:${h((i >> 8) & 255)}:${h(i & 255)}`;
}

async function median(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

runMain(async () => {
  const tmp = await makeTempDir('patchwire-bench-snapshot-');
  const store = await SqliteStore.open(join(tmp, 'patchwire.db'));
  await store.migrate();
  const at = new Date();
  for (let i = 0; i < DEVICES; i += 5000) {
    const batch: Sighting[] = [];
    for (let j = i; j < Math.min(DEVICES, i + 5000); j++) batch.push({ deviceId: deviceId(j), product: 'acme', channel: 'stable', seenAt: at, source: 'http://127.0.0.1' });
    await store.recordSightings(batch);
  }
  // Versions as reports would set them: ten distinct ones.
  for (let i = 0; i < Math.min(DEVICES, 2000); i++) {
    await store.recordReport({ deviceId: deviceId(i), product: 'acme', channel: 'stable', event: 'applied', version: `1.${i % VERSIONS}.0`, previousVersion: null, detail: null, at, source: 'http://127.0.0.1' });
  }
  let now = Date.now();
  const history = new FleetHistory(store, () => new Date(now), { intervalMs: 15 * 60_000 });
  const snapshot = await median(5, async () => { now += 15 * 60_000; await history.snapshot(); });
  // 30 days of snapshots of 10 versions, as the chart's longest read finds them.
  const rows = Array.from({ length: VERSIONS }, (_, v) => ({ product: 'acme', channel: 'stable', version: `1.${v}.0`, devices: 100 }));
  for (let k = 0; k < 2880; k++) await store.addVersionSnapshot(new Date(now - k * 15 * 60_000), rows, new Date(0));
  const read30 = await median(5, () => history.history(undefined, 30));
  const read7 = await median(5, () => history.history(undefined, 7));
  await store.close();
  await cleanup();
  console.log(table(['devices', 'snapshot (count + store), ms', 'history 7 days, ms', 'history 30 days (28,800 rows), ms'],
    [[String(DEVICES), snapshot.toFixed(1), read7.toFixed(1), read30.toFixed(1)]]));
});
