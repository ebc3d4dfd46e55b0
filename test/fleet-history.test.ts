import { it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { FleetHistory } from '../src/server/services/fleet-history.js';
import { tempDir } from './helpers/temp-dir.js';

it('fleet snapshots: one per interval between processes on one database, summed per version, kept for the retention', async (t) => {
  const store = await SqliteStore.open(join(await tempDir(t), 'patchwire.db'));
  t.after(() => store.close());
  await store.migrate();
  let now = new Date('2026-12-01T00:00:00Z');
  const clock = () => now;
  const o = { intervalMs: 3_600_000, retentionDays: 1 };
  const a = new FleetHistory(store, clock, o);
  const b = new FleetHistory(store, clock, o);
  const report = (deviceId: string, channel: string, version: string) => store.recordReport({
    deviceId, product: 'acme', channel, event: 'applied', version, previousVersion: null, detail: null, at: now, source: 'http://127.0.0.1',
  });
  await report('aa:00:00:00:00:01', 'stable', '1.0.0');
  await report('aa:00:00:00:00:02', 'beta', '1.0.0');
  assert.equal(await a.snapshot(), true);
  assert.equal(await b.snapshot(), false, 'the other process finds this interval taken');
  now = new Date(now.getTime() + 3_600_000);
  await report('aa:00:00:00:00:02', 'beta', '1.1.0');
  assert.equal(await b.snapshot(), true);
  const h = await a.history(undefined, 7);
  assert.deepEqual(h.points, [
    { at: '2026-12-01T00:00:00.000Z', versions: { '1.0.0': 2 } },
    { at: '2026-12-01T01:00:00.000Z', versions: { '1.0.0': 1, '1.1.0': 1 } },
  ]);
  assert.deepEqual((await a.history('other', 7)).points, []);
  // A day later the first snapshots fall out of the retention.
  now = new Date(now.getTime() + 86_400_000);
  assert.equal(await a.snapshot(), true);
  assert.deepEqual((await a.history(undefined, 7)).points.map((p) => p.at), ['2026-12-01T01:00:00.000Z', '2026-12-02T01:00:00.000Z']);
});
