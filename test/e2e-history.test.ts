/**
 * Progress and history (issue 11) with real processes: `patchwire serve`, agents updated by
 * `patchwire check`, and `patchwire devices show` / `devices --version --status --stale --mac`
 * as an operator types them; then filters and paging over a few thousand devices written
 * straight into the server's SQLite file (as bench/listing.ts does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { startFleet } from './helpers/fleet.js';
import { startProxy } from './helpers/proxy.js';
import { deviceSession } from './helpers/device-session.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { DeviceDetail, DeviceListPage, DeviceView } from '../src/protocol/wire.js';

const TOKEN = 'history-admin-token';
const A = '02:00:00:00:11:01';
const B = '02:00:00:00:11:02';
const C = '02:00:00:00:12:01';

test('an update reports downloading, installing, applied in order; a failing install reports failed with its state and error; devices filters', async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-history-', releases: [['1.0.0', { VERSION: '1.0.0' }]] });
  const show = (mac: string) => runJson<DeviceDetail>(['devices', 'show', mac, ...f.admin(), '--product', 'acme', '--json']);

  const a = await f.initAgent('a', A);
  assert.equal((await f.check(a)).result, 'updated');
  assert.equal((await f.publish('1.1.0', { VERSION: '1.1.0' })).code, 0);
  const second = await f.check(a, '--force');
  assert.equal(second.result, 'updated');
  assert.equal(second.warnings, undefined, 'every progress report arrived');

  const da = await show(A);
  assert.deepEqual([da.device.deviceId, da.device.version, da.device.lastEvent], [A, '1.1.0', 'applied']);
  // Newest first; each entry names the release of its update and the version it started from.
  assert.deepEqual(da.history.map((h) => [h.event, h.version, h.fromVersion, h.state, h.error]), [
    ['applied', '1.1.0', '1.0.0', null, null],
    ['installing', '1.1.0', '1.0.0', null, null],
    ['downloading', '1.1.0', '1.0.0', null, null],
    ['applied', '1.0.0', null, null, null],
    ['installing', '1.0.0', null, null, null],
    ['downloading', '1.0.0', null, null, null],
  ]);
  const times = da.history.map((h) => Date.parse(h.at));
  assert.deepEqual(times, [...times].sort((x, y) => y - x), 'newest first by time too');
  // The older endpoint keeps its meaning: the outcome reports only.
  assert.deepEqual((await f.reports(A)).map((r) => `${r.event} ${r.version}`), ['applied 1.0.0', 'applied 1.1.0']);

  // A first install whose health check fails: `failed`, with the state and the command's error.
  const b = await f.initAgent('b', B, { extra: ['--health-cmd', 'echo "config missing" >&2; exit 4', '--health-timeout', '10s'] });
  const failedCheck = await runCli(['check', '--dir', b, '--json']);
  assert.equal(failedCheck.code, 1, failedCheck.stderr);
  const db = await show(B);
  assert.deepEqual([db.device.version, db.device.lastEvent], [null, 'failed']);
  assert.deepEqual(db.history.map((h) => [h.event, h.version, h.fromVersion, h.state]), [
    ['failed', '1.1.0', null, 'health'], ['installing', '1.1.0', null, null], ['downloading', '1.1.0', null, null],
  ]);
  assert.match(db.history[0]!.error ?? '', /1\.1\.0 failed its health check: .*exited 4.*config missing/);

  // The table for people: the device, then its history.
  const human = await runCli(['devices', 'show', B, ...f.admin(), '--product', 'acme']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^device {6}02:00:00:00:11:02$/m);
  assert.match(human.stdout, /^last event {2}failed$/m);
  assert.match(human.stdout, /^\S+ +failed +1\.1\.0 +- +health +first install: version 1\.1\.0 failed its health check/m);

  // Unknown device, bad MAC: a clear error, exit 2.
  const unknown = await runCli(['devices', 'show', '02:00:00:00:99:99', ...f.admin(), '--product', 'acme', '--json']);
  assert.equal(unknown.code, 2);
  assert.equal((JSON.parse(unknown.stdout) as { error: { code: string } }).error.code, 'PW_UNKNOWN_DEVICE');
  const res = await fetch(`${f.server.url}/v1/admin/products/acme/devices/not-a-mac`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { code: string }).code, 'PW_BAD_REQUEST');

  // Filters, as an operator types them.
  const list = async (...flags: string[]) => (await runJson<DeviceView[]>(['devices', ...f.admin(), '--json', ...flags])).map((d) => d.deviceId);
  assert.deepEqual(await list('--status', 'failed'), [B]);
  assert.deepEqual(await list('--status', 'applied', '--product', 'acme'), [A]);
  assert.deepEqual(await list('--version', '1.1.0'), [A]);
  assert.deepEqual(await list('--version', 'none'), [B]);
  assert.deepEqual(await list('--mac', '02:00:00:00:11:0'), [A, B]);
  assert.deepEqual(await list('--mac', '0200000011'), [A, B], 'a prefix without separators');
  assert.deepEqual(await list('--stale', '1h'), [], 'both were seen just now');
  assert.deepEqual(await list('--status', 'downloading'), []);
  const bad = await runCli(['devices', ...f.admin(), '--status', 'exploded']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--status 'exploded' is not a report event: use one of applied, rolled-back, failed/);
  // Bad progress reports are refused with a code and change nothing.
  const D = '02:00:00:00:11:09';
  const s = await deviceSession(f.server.url, D);
  const post = async (body: object) => {
    const res = await fetch(`${f.server.url}/v1/report`, { method: 'POST', headers: { 'content-type': 'application/json', ...s.headers }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { code?: string; message?: string } };
  };
  const base = { deviceId: D, product: 'acme', channel: 'stable', version: '1.1.0', previousVersion: '1.1.0' };
  for (const [body, status, code, message] of [
    [{ ...base, event: 'downloading' }, 400, 'PW_BAD_REQUEST', /needs toVersion/],
    [{ ...base, event: 'installing', toVersion: '9.9.9' }, 404, 'PW_UNKNOWN_RELEASE', /has no release 9\.9\.9/],
    [{ ...base, event: 'failed', toVersion: '1.1.0', detail: 'x'.repeat(1001) }, 400, 'PW_BAD_REQUEST', /detail/],
    [{ ...base, event: 'failed', toVersion: '1.1.0', state: 'Not A State!' }, 400, 'PW_BAD_REQUEST', /state/],
  ] as const) {
    const r = await post(body);
    assert.deepEqual([r.status, r.body.code], [status, code], JSON.stringify(r.body));
    assert.match(r.body.message ?? '', message);
  }
  assert.deepEqual((await show(D)).history, [], 'nothing recorded');
  const badApi = await fetch(`${f.server.url}/v1/admin/devices?staleSeconds=-5`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(badApi.status, 400);
  assert.match(((await badApi.json()) as { message: string }).message, /staleSeconds '-5' must be a whole number of seconds/);
});

test('a progress report the server does not take is a warning: the update goes on and is applied', async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-history-lost-', releases: [['1.0.0', { VERSION: '1.0.0' }]] });
  // The network loses the answer to every `downloading` report (the server has it; the agent cannot know).
  const proxy = await startProxy(f.server.url, (req) =>
    req.method === 'POST' && req.path === '/v1/report' && JSON.parse(req.body.toString()).event === 'downloading' ? { status: 503, body: Buffer.from('{}') } : undefined);
  t.after(() => proxy.close());
  const dir = await f.initAgent('c', C, { server: proxy.url });
  const r = await runCli(['check', '--dir', dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { result: string; version: string; warnings?: string[] };
  assert.deepEqual([result.result, result.version], ['updated', '1.0.0']);
  assert.match((result.warnings ?? []).join('\n'), /the progress report 'downloading' of 1\.0\.0 did not reach the server .*503.*; the update goes on without it/);
  assert.match(r.stderr, /patchwire: warning: the progress report 'downloading'/);
  const d = await runJson<DeviceDetail>(['devices', 'show', C, ...f.admin(), '--product', 'acme', '--json']);
  assert.deepEqual(d.history.map((h) => h.event), ['applied', 'installing', 'downloading']);
});

test('filters and paging over 3,000 devices written into the SQLite file return exactly the right devices', async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-history-bulk-', releases: [['1.0.0', { VERSION: '1.0.0' }], ['1.1.0', { VERSION: '1.1.0' }]] });
  await f.createProduct({ product: 'other' });
  await f.server.stop();
  const N = 3000;
  const id = (i: number) => `0a:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const now = Date.now();
  const old = new Date(now - 30 * 86_400_000);
  type Want = { version: string | null; event: string | null; stale: boolean; product: string };
  const want = new Map<string, Want>();
  const store = await SqliteStore.open(join(f.root, 'server', 'patchwire.db'));
  try {
    await store.migrate();
    const product = (i: number) => (i % 5 === 0 ? 'other' : 'acme');
    await store.recordSightings(Array.from({ length: N }, (_, i) => ({
      deviceId: id(i), product: product(i), channel: 'stable', seenAt: i % 7 === 0 ? old : new Date(now), source: 'http://127.0.0.1',
    })));
    for (let i = 0; i < N; i++) {
      const stale = i % 7 === 0;
      let w: Want = { version: null, event: null, stale, product: product(i) };
      const rep = (event: 'applied' | 'failed' | 'downloading', version: string | null) => store.recordReport({
        deviceId: id(i), product: product(i), channel: 'stable', event, version, previousVersion: null, detail: null, at: stale ? old : new Date(now), source: 'http://127.0.0.1',
      });
      if (i % 3 === 0) { await rep('applied', i % 2 ? '1.1.0' : '1.0.0'); w = { ...w, version: i % 2 ? '1.1.0' : '1.0.0', event: 'applied' }; }
      if (i % 11 === 0) { await rep('failed', w.version); w = { ...w, event: 'failed' }; }
      if (i % 13 === 0) { await rep('downloading', w.version); w = { ...w, event: 'downloading' }; }
      want.set(id(i), w);
    }
  } finally {
    await store.close();
  }
  f.server = await f.serve('server');

  const pageAll = async (query: Record<string, string>, limit: number) => {
    const out: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 5000; pages++) {
      const q: URLSearchParams = new URLSearchParams({ ...query, limit: String(limit), ...(after ? { after } : {}) });
      const page: DeviceListPage = await f.adminGet<DeviceListPage>(`/devices?${q}`);
      assert.ok(page.devices.length <= limit);
      out.push(...page.devices.map((d) => d.deviceId));
      if (page.next === null) return out;
      after = page.next;
    }
    throw new Error('paging did not end');
  };
  const expected = (p: (w: Want, id: string) => boolean) => [...want.entries()].filter(([k, w]) => p(w, k)).map(([k]) => k).sort();
  const cases: Array<[Record<string, string>, (w: Want, id: string) => boolean]> = [
    [{ product: 'acme' }, (w) => w.product === 'acme'],
    [{ version: '1.1.0' }, (w) => w.version === '1.1.0'],
    [{ product: 'acme', version: 'none' }, (w) => w.product === 'acme' && w.version === null],
    [{ status: 'failed' }, (w) => w.event === 'failed'],
    [{ status: 'none', product: 'other' }, (w) => w.event === null && w.product === 'other'],
    [{ staleSeconds: String(7 * 86_400) }, (w) => w.stale],
    [{ staleSeconds: String(7 * 86_400), status: 'applied', product: 'acme' }, (w) => w.stale && w.event === 'applied' && w.product === 'acme'],
    [{ status: 'downloading', version: '1.0.0' }, (w) => w.event === 'downloading' && w.version === '1.0.0'],
    [{ q: '0a:00:00:00:05' }, (_w, k) => k.startsWith('0a:00:00:00:05')],
    [{ q: '0a:00:00:00:0', status: 'failed', product: 'acme' }, (w, k) => k.startsWith('0a:00:00:00:0') && w.event === 'failed' && w.product === 'acme'],
  ];
  for (const [query, p] of cases) {
    const exp = expected(p);
    assert.ok(exp.length > 0 || query.q !== undefined, `the case ${JSON.stringify(query)} selects something`);
    assert.deepEqual(await pageAll(query, 97), exp, `${JSON.stringify(query)} in pages of 97`);
  }
  assert.deepEqual(await pageAll({}, 1000), [...want.keys()].sort(), 'no filter: every device once');
  // The CLI pages through as well.
  const cli = await runJson<DeviceView[]>(['devices', ...f.admin(), '--json', '--stale', '7d', '--status', 'failed']);
  assert.deepEqual(cli.map((d) => d.deviceId).sort(), expected((w) => w.stale && w.event === 'failed'));
  assert.ok(cli.every((d) => d.lastEvent === 'failed'));
});
