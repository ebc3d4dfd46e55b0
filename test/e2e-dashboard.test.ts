import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Fleet } from './helpers/fleet.js';
import { Cleanup } from './helpers/cleanup.js';
import { launchBrowser, openPage, signIn } from './helpers/browser.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Browser } from 'playwright-core';

// The web dashboard in a real chromium against a real `patchwire serve` (issue 11).
const TOKEN = 'dashboard-e2e-token';
const suite = Cleanup.forSuite();
let fleet: Fleet;
let browser: Browser;
let server: string;

const mac = (n: number) => `aa:bb:cc:00:00:${n.toString(16).padStart(2, '0')}`;

before(async () => {
  fleet = await Fleet.start(suite, { token: TOKEN, prefix: 'patchwire-dash-' });
  server = fleet.server.url;
  // Devices written to the server's own database at known versions: 3 at 1.0.0, 2 at 1.1.0, 1 with nothing applied.
  const store = await SqliteStore.open(join(fleet.root, 'server', 'patchwire.db'));
  try {
    const at = new Date();
    const report = (n: number, event: 'applied' | 'failed', version: string, previousVersion: string | null) => store.recordReport({
      deviceId: mac(n), product: 'acme', channel: 'stable', event, version, previousVersion, detail: event === 'failed' ? 'health check failed' : null, at, source: server,
    });
    for (const n of [1, 2, 3]) await report(n, 'applied', '1.0.0', null);
    for (const n of [4, 5]) await report(n, 'applied', '1.1.0', '1.0.0');
    // What an agent at 1.0.0 reports when its update to 1.1.0 fails its health check.
    await store.recordReport({
      deviceId: mac(1), product: 'acme', channel: 'stable', event: 'failed', version: '1.0.0', previousVersion: null,
      toVersion: '1.1.0', state: 'health', detail: 'health check failed', at, source: server,
    });
    await store.recordSightings([{ deviceId: mac(6), product: 'acme', channel: 'stable', seenAt: at, source: server }]);
    // An hour ago, as the snapshot job would have stored it: 4 devices at 1.0.0.
    await store.addVersionSnapshot(new Date(at.getTime() - 3_600_000), [{ product: 'acme', channel: 'stable', version: '1.0.0', devices: 4 }], new Date(0));
  } finally {
    await store.close();
  }
  browser = await launchBrowser(suite);
});

async function signInByApi(origin = server): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${server}/v1/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin }, body: JSON.stringify({ token: TOKEN }) });
  assert.equal(res.status, 201, await res.clone().text());
  const cookie = /^(pw_session=[^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
  assert.ok(cookie, 'a session cookie is set');
  return { cookie, csrf: ((await res.json()) as { csrf: string }).csrf };
}

describe('the web dashboard', () => {
  it('signs in, shows the fleet per version, opens a device history, signs out; the old cookie then no longer works; every request goes to the server', async (t) => {
    const { context, page, requested } = await openPage(browser, t);
    await page.goto(`${server}/`);
    // A wrong token is refused on the form and signs nobody in.
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'wrong admin token' }).waitFor();
    // Keyboard only: the field is focused, Enter sends the form.
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByLabel('Admin token').press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();

    const cookies = await context.cookies(server);
    const session = cookies.find((c) => c.name === 'pw_session');
    assert.ok(session, 'signed in with a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page script cannot read the session');
    assert.equal(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)), '{}{}', 'nothing in storage');

    assert.equal(await page.getByTestId('total-devices').textContent(), '6');
    const count = (v: string) => page.getByTestId('versions').locator(`td[data-version="${v}"]`).textContent();
    assert.equal(await count('1.0.0'), '3');
    assert.equal(await count('1.1.0'), '2');
    assert.equal(await count('none'), '1');
    // The chart: one uPlot canvas with a series per version in its legend.
    await page.locator('.chart canvas').first().waitFor();
    const legend = await page.locator('.chart .u-legend').textContent();
    for (const v of ['1.0.0', '1.1.0', 'none']) assert.ok(legend?.includes(v), `legend shows ${v}: ${legend}`);

    // Devices page, then one device's history (keyboard: the link is focused and Enter follows it).
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('heading', { level: 1, name: 'Devices' }).waitFor();
    const link = page.getByRole('link', { name: mac(1) });
    await link.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: `Device ${mac(1)}` }).waitFor();
    const history = page.getByTestId('history');
    await history.waitFor();
    const rows = await history.locator('tbody tr').allTextContents();
    assert.equal(rows.length, 2, rows.join(' | '));
    assert.match(rows[0]!, /failed.*1\.1\.0.*1\.0\.0.*health check failed/);
    assert.match(rows[1]!, /applied.*1\.0\.0/);

    // Releases: a server without staged rollouts (their route 404s) shows none, and its releases.
    await page.getByRole('link', { name: 'Releases' }).click();
    await page.getByRole('heading', { level: 2, name: 'acme' }).waitFor();
    await page.getByText('No staged rollouts.').waitFor();
    await page.getByRole('link', { name: 'Mirrors' }).click();
    await page.getByText('No mirrors have announced themselves.').waitFor();

    // Schedule: a change made from the page (its CSRF header sent by the page itself).
    await page.getByRole('link', { name: 'Schedule' }).click();
    await page.getByLabel('Product').selectOption('acme');
    const due = new Date(Date.now() + 2 * 86_400_000);
    due.setSeconds(0, 0);
    const local = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}T${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    await page.getByLabel('Release time (local)').fill(local(due));
    await page.getByLabel('Spread (seconds)').fill('60');
    await page.getByRole('button', { name: 'Set schedule' }).click();
    await page.getByRole('status').filter({ hasText: 'Scheduled acme/stable' }).waitFor();
    const check = await fleet.rawCheck(mac(2), '1.0.0');
    assert.equal(check.body.schedule?.at, due.toISOString(), 'devices are told the new schedule');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    // The cookie the browser held before is signed out on the server, not just forgotten.
    const res = await fetch(`${server}/v1/admin/status`, { headers: { cookie: `pw_session=${session.value}` } });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { code: string }).code, 'PW_SESSION');
    await page.reload();
    await page.getByLabel('Admin token').waitFor();

    const foreign = requested.filter((u) => !u.startsWith(`${server}/`));
    assert.deepEqual(foreign, [], 'the page requested nothing but its own server');
    assert.ok(requested.some((u) => u.endsWith('/assets/app.js')));
  });

  it('answers the fleet history of the chart: devices per version at each snapshot, bounded days', async () => {
    const { cookie } = await signInByApi();
    const get = (query: string) => fetch(`${server}/v1/admin/fleet/history${query}`, { headers: { cookie } });
    const h = (await (await get('?product=acme&days=7')).json()) as { points: Array<{ versions: Record<string, number> }> };
    assert.deepEqual(h.points.map((p) => p.versions), [{ '1.0.0': 4 }]);
    for (const bad of ['?days=0', '?days=367', '?days=x']) {
      const res = await get(bad);
      assert.equal(res.status, 400, bad);
      assert.match(((await res.json()) as { message: string }).message, /days must be a whole number from 1 to 366/);
    }
    assert.equal((await get('?product=nope')).status, 404);
  });

  it('serves its page with a strict Content-Security-Policy and no inline script', async () => {
    const res = await fetch(`${server}/`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const page = await res.text();
    assert.doesNotMatch(page, /<script(?![^>]*\ssrc=)[^>]*>/, 'every script is a file of this server');
    assert.doesNotMatch(page, /https?:\/\//, 'no other host named');
  });

  it('refuses a change that carries the cookie without the CSRF header, or from a foreign Origin, and changes nothing', async () => {
    const { cookie, csrf } = await signInByApi();
    const remove = (headers: Record<string, string>) => fetch(`${server}/v1/admin/products/acme/devices/${mac(6)}`, { method: 'DELETE', headers: { cookie, ...headers } });
    const listed = async () => ((await (await fetch(`${server}/v1/admin/devices?product=acme`, { headers: { cookie } })).json()) as { devices: Array<{ deviceId: string }> }).devices.some((d) => d.deviceId === mac(6));

    let res = await remove({});
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { code: string }).code, 'PW_CSRF');
    res = await remove({ 'x-patchwire-csrf': csrf.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) });
    assert.equal(res.status, 403, 'a wrong CSRF token');
    res = await remove({ 'x-patchwire-csrf': csrf, origin: 'http://evil.example' });
    assert.equal(res.status, 403, 'a foreign Origin, even with the header');
    assert.match(((await res.json()) as { message: string }).message, /another site/);
    res = await remove({ 'x-patchwire-csrf': csrf, 'sec-fetch-site': 'cross-site' });
    assert.equal(res.status, 403, 'a cross-site fetch');
    assert.equal(await listed(), true, 'the refused requests removed nothing');

    // Another session's CSRF token does not fit this session.
    const other = await signInByApi();
    res = await remove({ 'x-patchwire-csrf': other.csrf });
    assert.equal(res.status, 403);

    res = await remove({ 'x-patchwire-csrf': csrf, origin: server });
    assert.equal(res.status, 200, await res.text());
    assert.equal(await listed(), false);

    // Sign-in from another site's page (login CSRF) is refused too.
    const foreign = await fetch(`${server}/v1/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: JSON.stringify({ token: TOKEN }) });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get('set-cookie'), null);
    // A form post (not JSON) cannot sign in.
    const form = await fetch(`${server}/v1/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` });
    assert.equal(form.status, 415);
  });

  it('pages through the devices 50 at a time with Next and Previous, each page one request of the paged API', async (t) => {
    const store = await SqliteStore.open(join(fleet.root, 'server', 'patchwire.db'));
    try {
      const seenAt = new Date();
      await store.recordSightings(Array.from({ length: 55 }, (_, i) => ({ deviceId: `aa:bb:dd:00:00:${i.toString(16).padStart(2, '0')}`, product: 'acme', channel: 'stable', seenAt, source: server })));
    } finally {
      await store.close();
    }
    const total = ((await (await fetch(`${server}/v1/admin/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { devices: number }).devices;
    assert.ok(total > 50 && total <= 100, `${total} devices`);
    const { page, requested } = await openPage(browser, t);
    await signIn(page, server, TOKEN);
    await page.getByRole('link', { name: 'Devices' }).click();
    const rows = page.getByTestId('devices').locator('tbody tr');
    await page.getByText('Page 1 (50 devices)').waitFor();
    const first = await rows.allTextContents();
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText(`Page 2 (${total - 50} devices)`).waitFor();
    const second = await rows.allTextContents();
    assert.equal(new Set([...first, ...second]).size, total, 'every device on one of the two pages, none twice');
    assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true, 'the last page');
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.getByText('Page 1 (50 devices)').waitFor();
    assert.deepEqual(await rows.allTextContents(), first);
    const listings = requested.filter((u) => u.includes('/v1/admin/devices'));
    assert.ok(listings.length >= 3);
    for (const u of listings) assert.equal(new URL(u).searchParams.get('limit') !== null && Number(new URL(u).searchParams.get('limit')) <= 50, true, u);
  });

  it('counts wrong sign-in tokens like other auth failures: past the limit the address is refused with 429', async () => {
    // Last in this file: it blocks 127.0.0.1 for a minute.
    const attempt = (token: string) => fetch(`${server}/v1/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    // The first test sent one wrong token already; the limit is 10 per address and minute.
    const codes: number[] = [];
    for (let i = 0; i < 11 && codes.at(-1) !== 429; i++) codes.push((await attempt(`guess-${i}`)).status);
    assert.equal(codes.at(-1), 429, codes.join(','));
    assert.ok(codes.length >= 9 && codes.slice(0, -1).every((c) => c === 401), codes.join(','));
    const right = await attempt(TOKEN);
    assert.equal(right.status, 429, 'the right token too, once blocked (no oracle)');
    assert.ok(Number(right.headers.get('retry-after')) >= 1);
  });
});
