// Screenshots of each dashboard page for the README (docs/images/dashboard-*.png), taken from a
// real `patchwire serve` with a small made-up fleet: `npm run build`, then
// `node --import tsx scripts/screenshots.ts`. Not a test: it asserts nothing.
import { join } from 'node:path';
import { Fleet } from '../test/helpers/fleet.js';
import { Cleanup } from '../test/helpers/cleanup.js';
import { launchBrowser, openPage, signIn } from '../test/helpers/browser.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const TOKEN = 'screenshots-token';
const out = (name: string) => join('docs', 'images', `dashboard-${name}.png`);
const cleanup = new Cleanup();
try {
  const fleet = await Fleet.start(cleanup, { token: TOKEN, prefix: 'patchwire-shots-', releases: [['1.0.0', { 'bin/app': 'echo 1.0.0' }], ['1.1.0', { 'bin/app': 'echo 1.1.0' }]] });
  const rollout = await fleet.publish('1.2.0', { 'bin/app': 'echo 1.2.0' }, { extra: ['--rollout', '5%,25%,100%', '--every', '1h'] });
  if (rollout.code !== 0) await fleet.publish('1.2.0', { 'bin/app': 'echo 1.2.0' }); // a server without staged rollouts
  await fleet.server.stop();
  const store = await SqliteStore.open(join(fleet.root, 'server', 'patchwire.db'));
  const now = Date.now();
  const mac = (n: number) => `aa:bb:cc:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
  // 60 devices moving from 1.0.0 to 1.1.0 over a week, snapshotted every 6 hours.
  for (let i = 0; i < 28; i++) {
    const moved = Math.min(50, Math.round(i * 2.2));
    const at = new Date(now - (28 - i) * 6 * 3_600_000);
    await store.addVersionSnapshot(at, [
      { product: 'acme', channel: 'stable', version: '1.0.0', devices: 55 - moved },
      { product: 'acme', channel: 'stable', version: '1.1.0', devices: moved },
      { product: 'acme', channel: 'stable', version: null, devices: 5 },
    ], new Date(0));
  }
  for (let n = 1; n <= 60; n++) {
    const version = n <= 5 ? null : n <= 55 - 50 + 5 ? '1.0.0' : '1.1.0';
    const at = new Date(now - (n % 7 === 0 ? 3 * 86_400_000 : n * 60_000));
    if (version === null) await store.recordSightings([{ deviceId: mac(n), product: 'acme', channel: 'stable', seenAt: at, source: fleet.server.url }]);
    else {
      if (version === '1.1.0') await store.recordReport({ deviceId: mac(n), product: 'acme', channel: 'stable', event: 'applied', version: '1.0.0', previousVersion: null, detail: null, at: new Date(at.getTime() - 86_400_000), source: fleet.server.url });
      await store.recordReport({ deviceId: mac(n), product: 'acme', channel: 'stable', event: 'applied', version, previousVersion: version === '1.1.0' ? '1.0.0' : null, detail: null, at, source: fleet.server.url });
    }
  }
  await store.recordReport({ deviceId: mac(6), product: 'acme', channel: 'stable', event: 'failed', version: '1.0.0', previousVersion: null, toVersion: '1.1.0', state: 'health', detail: 'health check exited 1', at: new Date(now - 60_000), source: fleet.server.url });
  await store.setSchedule({ product: 'acme', channel: 'stable', at: new Date(now - 60_000), spreadSeconds: 600, setAt: new Date(now - 1000) });
  await store.upsertMirror('http://mirror-eu.example:8081', new Date(now - 86_400_000));
  await store.approveMirror('http://mirror-eu.example:8081', new Date(now - 86_400_000));
  await store.updateMirror('http://mirror-eu.example:8081', { lastSyncAt: new Date(now - 40_000), lastAttemptAt: new Date(now - 40_000), pulled: 12, pushed: 3, error: null });
  await store.upsertMirror('http://mirror-us.example:8081', new Date(now - 3_600_000));
  await store.close();
  fleet.server = await fleet.serve('server');

  const browser = await launchBrowser(cleanup);
  const { page } = await openPage(browser, cleanup);
  await page.goto(`${fleet.server.url}/`);
  await page.getByLabel('Admin token').waitFor();
  await page.screenshot({ path: out('sign-in') });
  await signIn(page, fleet.server.url, TOKEN);
  const shots: Array<[string, string, string]> = [
    ['fleet', '#/fleet', 'Fleet'], ['releases', '#/releases', 'Releases'], ['devices', '#/devices', 'Devices'],
    ['device', `#/device/acme/${encodeURIComponent(mac(6))}`, `Device ${mac(6)}`], ['schedule', '#/schedule?product=acme&channel=stable', 'Schedule'], ['mirrors', '#/mirrors', 'Mirrors'],
  ];
  for (const [name, hash, heading] of shots) {
    await page.goto(`${fleet.server.url}/${hash}`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    await page.waitForLoadState('networkidle');
    // Every section of the page has answered (a "Loading…" left means a request still runs).
    await page.getByText('Loading…').first().waitFor({ state: 'detached', timeout: 30_000 }).catch(() => {});
    await page.screenshot({ path: out(name), fullPage: true });
    console.log(out(name));
  }
} finally {
  await cleanup.run();
}
