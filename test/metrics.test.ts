/**
 * The parts of GET /metrics that a scrape alone cannot pin down (e2e-metrics.test.ts scrapes a real
 * server): the fleet figures are read from the store once per cache window however many scrapes
 * and gauges ask, and the rollout gauges show exactly the rollouts they are given. A real SQLite
 * store in a temporary folder; the cache's clock is injected, so nothing waits on real time.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { ServerMetrics } from '../src/server/metrics/server-metrics.js';
import type { RolloutView } from '../src/server/metrics/rollout-metrics.js';
import type { AlarmView } from '../src/protocol/wire.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { Scrape } from './helpers/prometheus.js';

const suite = Cleanup.forSuite();
let store: SqliteStore;
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
before(async () => {
  store = await SqliteStore.open(join(await tempDir(suite, 'patchwire-metrics-unit-'), 'patchwire.db'));
  await store.migrate();
  await store.createProduct({ name: 'acme', createdAt: at(0) }, []);
  await store.recordSightings(['aa:00:00:00:00:01', 'aa:00:00:00:00:02', 'aa:00:00:00:00:03'].map((deviceId) => (
    { deviceId, product: 'acme', channel: 'stable', seenAt: at(1), source: 'http://127.0.0.1:1' })));
  await store.upsertMirror('http://127.0.0.1:2', at(1));
  await store.updateMirror('http://127.0.0.1:2', { lastSyncAt: at(10) });
});
after(async () => {
  await store.close();
  await suite.run();
});

function metrics(o: { rollouts?: () => RolloutView[]; alarms?: AlarmView[] } = {}) {
  let flushes = 0;
  const m = new ServerMetrics({
    fleet: { store, flushSightings: async () => { flushes++; }, alarms: () => o.alarms ?? [] },
    clock: () => at(70),
    rollouts: o.rollouts,
  });
  return { m, flushes: () => flushes };
}

test('fleet gauges: one read of the store per scrape window, shared by every gauge and by concurrent scrapes', async () => {
  const { m, flushes } = metrics({ alarms: [{ kind: 'schedule-overdue', product: 'acme', channel: 'stable', scheduledAt: at(5).toISOString() }] });
  const [a, b] = await Promise.all([m.text(), m.text()]);
  assert.equal(m.fleet.reads, 1, 'three gauges, two concurrent scrapes, one read');
  assert.equal(flushes(), 1, 'the batched sightings are written before the read');
  assert.equal(a.body, b.body);
  const s = new Scrape(a.body);
  assert.deepEqual(s.series('patchwire_devices'), ['{channel="stable",product="acme",version="none"} 3']);
  assert.deepEqual(s.series('patchwire_mirror_sync_age_seconds'), ['{mirror="http://127.0.0.1:2"} 60'], 'on the server clock: synced at 0:10, now 1:10');
  assert.deepEqual(s.series('patchwire_alarms'), ['{kind="identity-conflict"} 0', '{kind="schedule-overdue"} 1']);
  assert.match(a.contentType, /^text\/plain/);
});

test('the cached figures are reused within the window and read again after it', async () => {
  let now = 0;
  const { m } = metrics();
  // The window is measured on an injected monotonic clock (FleetSnapshot's third parameter).
  const { FleetSnapshot } = await import('../src/server/metrics/fleet-snapshot.js');
  const fleet = new FleetSnapshot({ store, flushSightings: async () => {}, alarms: () => [] }, 5000, () => now);
  await fleet.get();
  now = 4999;
  await store.recordSightings([{ deviceId: 'aa:00:00:00:00:04', product: 'acme', channel: 'stable', seenAt: at(2), source: 'http://127.0.0.1:1' }]);
  assert.equal((await fleet.get()).devices[0]!.devices, 3, 'within 5 s: the figures of the first read');
  assert.equal(fleet.reads, 1);
  now = 5000;
  assert.equal((await fleet.get()).devices[0]!.devices, 4, 'after 5 s: read again');
  assert.equal(fleet.reads, 2);
  assert.ok(m.fleet.reads === 0, 'another server\'s metrics keep their own cache');
});

test('rollout gauges show exactly the rollouts the source lists at each scrape', async () => {
  const counts = { offered: 40, attempted: 30, applied: 27, failed: 2, rolledBack: 1 };
  let views: RolloutView[] = [
    { product: 'acme', channel: 'stable', version: '1.1.0', phase: 1, percent: 25, state: 'active', counts },
    { product: 'acme', channel: 'beta', version: '2.0.0-beta.1', phase: 0, percent: 5, state: 'paused', counts: { ...counts, offered: 3 } },
  ];
  const { m } = metrics({ rollouts: () => views });
  let s = new Scrape((await m.text()).body);
  assert.equal(s.value('patchwire_rollout_phase', { product: 'acme', channel: 'stable', version: '1.1.0', state: 'active' }), 1);
  assert.equal(s.value('patchwire_rollout_percent', { product: 'acme', channel: 'beta', version: '2.0.0-beta.1' }), 5);
  assert.deepEqual(s.series('patchwire_rollout_devices').filter((l) => l.includes('"1.1.0"')), [
    '{channel="stable",outcome="applied",product="acme",version="1.1.0"} 27',
    '{channel="stable",outcome="attempted",product="acme",version="1.1.0"} 30',
    '{channel="stable",outcome="failed",product="acme",version="1.1.0"} 2',
    '{channel="stable",outcome="offered",product="acme",version="1.1.0"} 40',
    '{channel="stable",outcome="rolled-back",product="acme",version="1.1.0"} 1',
  ]);
  views = [views[0]!];
  s = new Scrape((await m.text()).body);
  assert.deepEqual(s.series('patchwire_rollout_percent'), ['{channel="stable",product="acme",version="1.1.0"} 25'], 'a rollout no longer listed disappears');
  assert.equal(s.series('patchwire_rollout_devices').length, 5);
});

test('without a rollout source the rollout gauges are empty; two servers in one process keep apart registries', async () => {
  const one = metrics().m;
  const two = metrics().m;
  one.checked({ status: 'update', moved: null } as Parameters<ServerMetrics['checked']>[0]);
  const s1 = new Scrape((await one.text()).body);
  const s2 = new Scrape((await two.text()).body);
  assert.equal(s1.value('patchwire_checks_total', { result: 'update' }), 1);
  assert.equal(s2.value('patchwire_checks_total', { result: 'update' }), 0);
  assert.deepEqual(s1.series('patchwire_rollout_phase'), []);
});
