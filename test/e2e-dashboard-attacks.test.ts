/**
 * The dashboard under attack (issue 11; docs/security.md "The dashboard"), in a real chromium
 * against a real `patchwire serve` on 127.0.0.1: script in what devices report, a page of another
 * site (another port of 127.0.0.1: the same *site* for SameSite cookies, another origin) that
 * frames the dashboard and posts a form at the admin API with the operator's cookie.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Fleet } from './helpers/fleet.js';
import { Cleanup } from './helpers/cleanup.js';
import { freePort } from './helpers/ports.js';
import { waitFor } from './helpers/wait-for.js';
import { launchBrowser, openPage, signIn } from './helpers/browser.js';
import type { Browser } from 'playwright-core';

const TOKEN = 'dashboard-attacks-token';
const MAC = 'aa:bb:cc:7a:00:01';
const SCRIPTS = [
  '<img src=x onerror="window.__pwned=1">',
  '"><script>window.__pwned=2</script>',
  '<svg onload="window.__pwned=3"></svg><a href="javascript:window.__pwned=4">x</a>',
];
const suite = Cleanup.forSuite();
let fleet: Fleet;
let browser: Browser;
let server: string;
let evil: Server;
let evilUrl: string;

before(async () => {
  fleet = await Fleet.start(suite, { token: TOKEN, prefix: 'patchwire-dash-attacks-', server: { args: ['--device-token-ttl', '1d'] }, releases: [['1.0.0', { README: 'one' }]] });
  server = fleet.server.url;
  // The device's own reports over the device API, each failure's detail a script.
  for (const detail of SCRIPTS) {
    const res = await fetch(`${server}/v1/report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await fleet.sessions.headers(server, MAC, 'acme')) },
      body: JSON.stringify({ deviceId: MAC, product: 'acme', channel: 'stable', event: 'failed', version: null, previousVersion: null, detail }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  browser = await launchBrowser(suite);
  // Another origin of the same site: it frames the dashboard and posts a JSON-looking text/plain form at the yank route.
  const port = await freePort();
  evilUrl = `http://127.0.0.1:${port}`;
  evil = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><iframe id="f" src="${server}/"></iframe>
      <form id="csrf" method="POST" action="${server}/v1/admin/products/acme/yank" enctype="text/plain" target="out">
      <input name='{"version":"1.0.0","x":"' value='"}'></form><iframe name="out"></iframe>`);
  });
  await new Promise<void>((r) => evil.listen(port, '127.0.0.1', r));
});

after(() => new Promise<void>((r) => evil.close(() => r())));

describe('the dashboard under attack', () => {
  it('shows a device\'s reported scripts (and one in the URL) as text: nothing runs, nothing is fetched elsewhere', async (t) => {
    const { page, requested } = await openPage(browser, t);
    const dialogs: string[] = [];
    page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
    await signIn(page, server, TOKEN);
    await page.goto(`${server}/#/device/acme/${MAC}`);
    for (const s of SCRIPTS) await page.getByText(s, { exact: true }).waitFor();
    // A script in the route itself: the refusal message shows it as text.
    await page.goto(`${server}/#/device/acme/${encodeURIComponent('<img src=y onerror="window.__pwned=5">')}`);
    await page.getByRole('alert').filter({ hasText: 'is not a MAC address' }).waitFor();
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'no script ran');
    assert.equal(await page.locator('main img, main svg[onload], main a[href^="javascript:"]').count(), 0, 'no element made from the text');
    assert.deepEqual(dialogs, []);
    for (const u of requested) assert.ok(u.startsWith(`${server}/`), `only the server is asked: ${u}`);
  });

  it('a page of another origin on the same site cannot frame the dashboard nor yank a release with the operator\'s cookie', async (t) => {
    const { page, context } = await openPage(browser, t);
    await signIn(page, server, TOKEN);
    assert.ok((await context.cookies(server)).some((c) => c.name === 'pw_session'));
    const answers: Array<{ url: string; status: number }> = [];
    page.on('response', (r) => { if (r.url().includes('/v1/admin/')) answers.push({ url: r.url(), status: r.status() }); });
    await page.goto(`${evilUrl}/`);
    // frame-ancestors 'none' (and X-Frame-Options): the framed dashboard never renders its form.
    const framed = page.frames().find((fr) => fr.name() !== 'out' && fr !== page.mainFrame());
    assert.ok(framed);
    await waitFor(async () => framed.url() !== 'about:blank', { what: 'the framed load to end', timeout: 20_000 });
    assert.equal(await framed.locator('input').count().catch(() => 0), 0, `the frame shows nothing of the dashboard (${framed.url()})`);
    // The form post carries the cookie (same site), but not the CSRF header: refused, nothing yanked.
    await page.locator('#csrf').evaluate((f) => (f as HTMLFormElement).submit());
    await waitFor(() => answers.some((a) => a.url.endsWith('/yank')), { what: 'the forged yank to be answered', timeout: 20_000 });
    assert.deepEqual(answers.filter((a) => a.url.endsWith('/yank')).map((a) => a.status), [403]);
    const offered = await fleet.rawCheck('aa:bb:cc:7a:00:02', null);
    assert.equal(offered.body.release?.version, '1.0.0', 'the release is not yanked: still offered');
  });
});
