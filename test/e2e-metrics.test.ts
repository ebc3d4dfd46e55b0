/**
 * GET /metrics on a real `patchwire serve` process (docs/protocol.md "Metrics"): a known scenario
 * of agents (real `patchwire check` processes) and hand-made device calls, then a scrape whose
 * counts must be exactly those of the scenario; and the metrics token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { Scrape } from './helpers/prometheus.js';
import { waitFor } from './helpers/wait-for.js';
import { targetUrl } from '../src/protocol/urls.js';

const TOKEN = 'e2e-metrics-admin-token';
const METRICS_TOKEN = 'e2e-metrics-scrape-token-0123456789';

/** Big and varied enough that a delta beats the compressed archive (as in e2e-delta.test.ts). */
function tree(version: string): Record<string, string> {
  const files: Record<string, string> = { VERSION: version };
  for (let f = 0; f < 8; f++) {
    const lines = Array.from({ length: 300 }, (_, i) => `export const value_${f}_${i} = ${(f * 7919 + i * 104729) % 1000003}; // module ${f} line ${i}`);
    if (f === 3) lines[150] = `export const changed = '${version}';`;
    files[`lib/module${f}.js`] = lines.join('\n');
  }
  return files;
}

const suite = Cleanup.forSuite();
let f: Fleet;
before(async () => {
  f = await startFleet(suite, {
    token: TOKEN,
    prefix: 'patchwire-metrics-',
    server: { args: ['--metrics-token', METRICS_TOKEN] },
    releases: [['1.0.0', tree('1.0.0')]],
  });
});
after(() => suite.run());

const scrape = async (authorization?: string): Promise<{ status: number; type: string | null; text: string }> => {
  const res = await fetch(`${f.server.url}/metrics`, { headers: authorization ? { authorization } : {} });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

const scraped = async (): Promise<Scrape> => {
  const r = await scrape(`Bearer ${METRICS_TOKEN}`);
  assert.equal(r.status, 200, r.text);
  return new Scrape(r.text);
};

const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<number> => {
  const res = await fetch(`${f.server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
};

test('after a known scenario the scrape counts exactly its checks, reports, devices, bytes and request durations', async () => {
  const [release] = await f.releases();
  assert.ok(release);
  const archiveUrl = targetUrl(f.server.url, 'acme', release.target, release.sha256);

  // Agent A: first check (an update, the full archive downloaded, an `applied` report), then up to date.
  const a = await f.initAgent('a', 'AA-BB-CC-00-10-01');
  const first = await f.check(a);
  assert.equal(first.result, 'updated');
  assert.equal(first.patch?.kind, 'full');
  assert.equal((await f.check(a, '--force')).result, 'up-to-date');

  // Device B by hand: two checks with nothing installed (each offered 1.0.0, nothing downloaded),
  // then a failed report.
  const B = 'aa:bb:cc:00:10:02';
  for (let i = 0; i < 2; i++) assert.equal((await f.rawCheck(B, null)).body.status, 'update');
  const headers = await f.sessions.headers(f.server.url, B);
  assert.equal(await post('/v1/report', { deviceId: B, product: 'acme', channel: 'stable', event: 'failed', version: null, previousVersion: null, detail: 'disk full' }, headers), 200);

  // Two refused checks: a channel the product does not have (404), no device token (401).
  assert.equal(await post('/v1/check', { deviceId: B, product: 'acme', channel: 'nightly', version: null }, headers), 404);
  assert.equal(await post('/v1/check', { deviceId: B, product: 'acme', channel: 'stable', version: null }), 401);

  // The archive downloaded by hand: whole, then its first 100 bytes; a HEAD sends no bytes.
  const whole = await fetch(archiveUrl);
  assert.equal(whole.status, 200);
  assert.equal((await whole.arrayBuffer()).byteLength, release.length);
  const part = await fetch(archiveUrl, { headers: { range: 'bytes=0-99' } });
  assert.equal(part.status, 206);
  assert.equal((await part.arrayBuffer()).byteLength, 100);
  assert.equal((await fetch(archiveUrl, { method: 'HEAD' })).status, 200);

  const s = await scraped();
  assert.deepEqual(s.series('patchwire_checks_total'), [
    '{result="error"} 2', '{result="moved"} 0', '{result="up-to-date"} 1', '{result="update"} 3',
  ]);
  // Agent A's update reported its steps (downloading, installing) and its outcome (applied).
  assert.deepEqual(s.series('patchwire_reports_total'), [
    '{event="applied"} 1', '{event="delta-failed"} 0', '{event="downloading"} 1', '{event="failed"} 1',
    '{event="installing"} 1', '{event="rolled-back"} 0',
  ]);
  // Agent A's download and the hand-made ones: two whole archives and 100 bytes.
  assert.equal(s.value('patchwire_served_bytes_total', { kind: 'full' }), 2 * release.length + 100);
  assert.equal(s.value('patchwire_served_bytes_total', { kind: 'delta' }), 0);
  assert.deepEqual(s.series('patchwire_devices'), [
    '{channel="stable",product="acme",version="1.0.0"} 1',
    '{channel="stable",product="acme",version="none"} 1',
  ]);
  assert.deepEqual(s.series('patchwire_alarms'), ['{kind="identity-conflict"} 0', '{kind="schedule-overdue"} 0']);
  // Request durations by route pattern and status, never by URL.
  const count = (method: string, route: string, status: number) =>
    s.value('patchwire_http_request_duration_seconds_count', { method, route, status: String(status) });
  assert.equal(count('POST', '/v1/check', 200), 4);
  assert.equal(count('POST', '/v1/check', 404), 1);
  assert.equal(count('POST', '/v1/check', 401), 1);
  assert.equal(count('POST', '/v1/report', 200), 4, 'downloading, installing and applied of agent A, failed of B');
  assert.equal(count('GET', '/v1/products/:product/targets/*', 200), 2);
  assert.equal(count('GET', '/v1/products/:product/targets/*', 206), 1);
  assert.equal(count('HEAD', '/v1/products/:product/targets/*', 200), 1);
  assert.ok(!s.text.includes(release.sha256), 'no label holds a raw URL');
  assert.ok(s.value('process_resident_memory_bytes')! > 0, 'the process metrics of a server process');
});

test('a publish and an agent applying it: the delta bytes it downloads are counted as delta', async () => {
  const before = await scraped();
  const p = await f.publish('1.1.0', tree('1.1.0'));
  assert.equal(p.code, 0, p.stderr);
  // The server computes the delta from 1.0.0 in the background; a hand-made check (counted) tells when it is offered.
  let handChecks = 0;
  const offer = await waitFor(async () => {
    handChecks++;
    const r = await f.rawCheck('aa:bb:cc:00:10:03', '1.0.0');
    return r.body.release?.kind === 'delta' ? r.body.release.delta : undefined;
  }, { what: 'the delta from 1.0.0 to 1.1.0 to be offered', timeout: 60_000, interval: 250 });
  const r = await f.check(f.agentDir('a'), '--force');
  assert.equal(r.result, 'updated');
  assert.equal(r.patch?.kind, 'delta');
  const s = await scraped();
  const delta = (x: Scrape, labels: Record<string, string>, name = 'patchwire_checks_total') => (x.value(name, labels) ?? 0);
  assert.equal(delta(s, { result: 'update' }) - delta(before, { result: 'update' }), handChecks + 1);
  assert.equal(delta(s, { event: 'applied' }, 'patchwire_reports_total') - delta(before, { event: 'applied' }, 'patchwire_reports_total'), 1);
  assert.equal(delta(s, { kind: 'delta' }, 'patchwire_served_bytes_total'), offer!.length, 'the delta, once');
  assert.equal(delta(s, { kind: 'full' }, 'patchwire_served_bytes_total'), delta(before, { kind: 'full' }, 'patchwire_served_bytes_total'), 'no full archive this time');
});

// Last: the first scrape that answers fills the fleet figures' cache (5 s), and the scenario
// test must be the one that reads them first.
test('the metrics token is enforced: 401 PW_METRICS_TOKEN without it or with a wrong one, 200 with it', async () => {
  for (const authorization of [undefined, `Bearer ${METRICS_TOKEN}x`, `Bearer ${TOKEN}`, METRICS_TOKEN]) {
    const r = await scrape(authorization);
    assert.equal(r.status, 401, `${authorization}: ${r.text}`);
    const body = JSON.parse(r.text) as { code: string; message: string };
    assert.equal(body.code, 'PW_METRICS_TOKEN');
    assert.match(body.message, /--metrics-token|PATCHWIRE_METRICS_TOKEN/);
  }
  const ok = await scrape(`Bearer ${METRICS_TOKEN}`);
  assert.equal(ok.status, 200);
  assert.match(ok.type ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(ok.text, /^# HELP patchwire_checks_total /m);
  // The refused scrapes are timed like any request (the one that answered is counted after it).
  assert.equal(new Scrape(ok.text).value('patchwire_http_request_duration_seconds_count', { method: 'GET', route: '/metrics', status: '401' }), 4);
});
