import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from './helpers/fleet.js';
import { Cleanup } from './helpers/cleanup.js';
import { launchBrowser, openPage, signIn } from './helpers/browser.js';
import type { Browser } from 'playwright-core';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ServerClock } from './helpers/server-clock.js';

// The dashboard's rollout and history steps (issue 11): staged rollouts (`publish --rollout`,
// GET /v1/admin/rollouts, POST .../rollout/:action) and device history
// (GET /v1/admin/products/:product/devices/:deviceId, the `q` filter) driven from the page.
// The server's clock is moved by a file (test/helpers/server-clock.ts), never waited for.
const TOKEN = 'dashboard-rollout-token';
const suite = Cleanup.forSuite();
let fleet: Fleet;
const clock = new ServerClock(join(process.env.TMPDIR ?? '/tmp', `patchwire-dash-rollout-clock-${randomBytes(4).toString('hex')}`));
let browser: Browser;
const macs = ['aa:bb:cc:10:00:01', 'aa:bb:cc:10:00:02', 'aa:bb:cc:10:00:03', 'aa:bb:cc:10:00:04', 'dd:ee:ff:10:00:05'];

before(async () => {
  fleet = await Fleet.start(suite, { token: TOKEN, prefix: 'patchwire-dash-rollout-', server: { args: ['--device-token-ttl', '1d'], env: clock.env }, releases: [['1.0.0', { 'bin/app': 'echo 1.0.0' }]] });
  for (const m of macs) assert.equal((await fleet.rawCheck(m, '1.0.0')).status, 200);
  browser = await launchBrowser(suite);
});

describe('the dashboard with staged rollouts and device history', () => {
  it('pauses a rollout from its button; a device outside the phase is still not offered the release after its phase time', async (t) => {
    // Phase 1 holds 1% of the devices; phase 2 would open an hour later were the rollout not paused.
    const published = Date.now();
    const p = await fleet.publish('1.1.0', { 'bin/app': 'echo 1.1.0' }, { extra: ['--rollout', '1%,100%', '--every', '1h'] });
    assert.equal(p.code, 0, p.stderr);
    const { page } = await openPage(browser, t);
    await signIn(page, fleet.server.url, TOKEN);
    await page.getByRole('link', { name: 'Releases' }).click();
    const card = page.getByTestId('rollout-acme-stable');
    await card.waitFor();
    assert.equal(await card.getByTestId('rollout-state').textContent(), 'active');
    assert.match((await card.textContent()) ?? '', /Phase 1 of 2 \(1% of devices\)/);
    await card.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('status').filter({ hasText: 'paused' }).waitFor();
    // The card shows the state the server answered once the page has reloaded the rollouts.
    await card.getByTestId('rollout-state').filter({ hasText: 'paused' }).waitFor();
    assert.equal(await card.getByTestId('rollout-state').textContent(), 'paused');
    assert.equal(await card.getByRole('button', { name: 'Resume' }).isEnabled(), true);

    // Past the phase time on the server's clock: a paused rollout stands still.
    await clock.passTime(new Date(published), 2 * 3_600_000);
    const { rollouts } = await fleet.adminGet<{ rollouts: Array<{ percent: number; state: string }> }>('/rollouts?product=acme');
    assert.deepEqual(rollouts.map((r) => [r.percent, r.state]), [[1, 'paused']], 'no phase advanced while paused');
    const answers = await Promise.all(macs.map((m) => fleet.rawCheck(m, '1.0.0')));
    const outside = answers.filter((a) => a.body.status === 'up-to-date');
    assert.ok(outside.length >= 1, `devices outside the 1% phase are not offered 1.1.0: ${JSON.stringify(answers.map((a) => [a.status, a.body.status]))}`);
  });

  it('searches devices by MAC prefix and opens one device with its history', async (t) => {
    const { page } = await openPage(browser, t);
    await signIn(page, fleet.server.url, TOKEN);
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByLabel('MAC prefix').fill('dd:ee');
    await page.getByRole('button', { name: 'Search' }).click();
    const table = page.getByTestId('devices');
    // The unfiltered page is on screen first: wait for the search's answer to replace it.
    await table.locator('tbody th', { hasText: macs[0]! }).waitFor({ state: 'detached' });
    await table.locator('tbody tr').first().waitFor();
    assert.deepEqual((await table.locator('tbody th').allTextContents()), [macs[4]]);
    await page.getByRole('link', { name: macs[4]! }).click();
    await page.getByRole('heading', { level: 1, name: `Device ${macs[4]}` }).waitFor();
    assert.equal(await page.getByTestId('device-version').textContent(), 'none');
  });
});
