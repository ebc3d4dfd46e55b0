import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Owner } from './cleanup.js';

/** Debian's chromium (`apt-get install -y chromium`; .ci/run installs it when missing). */
export const CHROMIUM = process.env.PATCHWIRE_CHROMIUM ?? '/usr/bin/chromium';

/** A headless chromium, closed with `owner`. */
export async function launchBrowser(owner: Owner): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  owner.after(() => browser.close());
  return browser;
}

/** A fresh browser context and page that records every URL it requests (to prove it talks to the server only). */
export async function openPage(browser: Browser, owner: Owner): Promise<{ context: BrowserContext; page: Page; requested: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  owner.after(() => context.close());
  const requested: string[] = [];
  context.on('request', (r) => { requested.push(r.url()); });
  const page = await context.newPage();
  return { context, page, requested };
}

/** Signs in through the dashboard's form and waits for the fleet page. */
export async function signIn(page: Page, server: string, token: string): Promise<void> {
  await page.goto(`${server}/`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
}

/**
 * What an operator sees of one device in the dashboard (a real chromium, signed in through the
 * form): its page's version, once it reads `version`, and its history rows, newest first.
 */
export async function dashboardDevice(owner: Owner, server: string, token: string, product: string, deviceId: string, version: string): Promise<{ version: string; history: string[] }> {
  const browser = await launchBrowser(owner);
  const { page } = await openPage(browser, owner);
  await signIn(page, server, token);
  await page.goto(`${server}/#/device/${encodeURIComponent(product)}/${encodeURIComponent(deviceId)}`);
  await page.getByRole('heading', { level: 1, name: `Device ${deviceId}` }).waitFor();
  const shown = page.getByTestId('device-version');
  await shown.filter({ hasText: version }).waitFor({ timeout: 15_000 }).catch(() => undefined);
  const history = await page.getByTestId('history').locator('tbody tr').allTextContents();
  return { version: (await shown.textContent()) ?? '', history };
}
