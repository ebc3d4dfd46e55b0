import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import Database from 'better-sqlite3';
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
const file = '/tmp/fleet-x/m.db';
const h = (n: number) => n.toString(16).padStart(2, '0');
const id = (i: number) => `aa:bb:cc:${h((i >> 16) & 255)}:${h((i >> 8) & 255)}:${h(i & 255)}`;
if (!existsSync(file)) {
  const s = await SqliteStore.open(file); await s.migrate(); await s.close();
  const db = new Database(file); db.pragma('journal_mode = WAL');
  const st = db.prepare(`INSERT INTO devices (device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at, change_seq) VALUES (?, 'acme','stable','1.0.0',1,1,1,'x',1,?)`);
  db.transaction(() => { for (let i = 1; i <= 1e6; i++) st.run(id(i), i); })();
  db.pragma('wal_checkpoint(TRUNCATE)'); db.close();
}
const mode = process.argv[2] ?? 'default';
const store = await SqliteStore.open(file);
const conn = (store as any)['conn'] ?? undefined;
// reach the private connection through a pragma hook: reopen via better-sqlite3 is not the same; so patch via env
const times: number[] = [];
for (let k = 0; k < 200; k++) {
  const batch = [];
  for (let j = 0; j < 500; j++) batch.push({ deviceId: id(1 + Math.floor(Math.random() * 1e6)), product: 'acme', channel: 'stable', seenAt: new Date(), source: 'x' });
  const t = performance.now();
  await store.recordSightings(batch);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(mode, 'chunk of 500: p50', times[100].toFixed(1), 'p90', times[180].toFixed(1), 'max', times[199].toFixed(1), 'ms');
await store.close();
