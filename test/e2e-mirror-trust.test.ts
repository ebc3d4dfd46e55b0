/**
 * Issue 9, "mirrors": a holder of the mirror token, and an approved mirror that turned hostile,
 * against a real primary (`patchwire serve`) on 127.0.0.1. The hostile "mirror" is a node:http
 * server written here (test/helpers/hostile-peer.ts) that announces itself and then answers
 * whatever each test sets; a second listener is the target of its redirects and must receive
 * nothing. The tests run in this order on one primary, each starting where the previous left it.
 *
 * The primary asks for pages of 10 records (test hook PATCHWIRE_MIRROR_PAGE_RECORDS), so its
 * limit of 1000 pages per run is reached in 1000 small requests; the page byte limit is the real
 * one (8 MiB).
 */
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { HostilePeer, json, streamHuge } from './helpers/hostile-peer.js';
import { ServerClock } from './helpers/server-clock.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait-for.js';
import type { MirrorView, ReconcileView, StatusView } from '../src/protocol/wire.js';

const MT = 'trust-mirror-token';
const suite = Cleanup.forSuite();
let f: Fleet;
let hostile: HostilePeer;
let target: HostilePeer;
let clock: ServerClock;

const announce = (url: string) => fetch(`${f.server.url}/v1/mirror/announce`, {
  method: 'POST', headers: { authorization: `Bearer ${MT}`, 'content-type': 'application/json' }, body: JSON.stringify({ url }),
});
const mirrors = async () => (await runJson<{ mirrors: MirrorView[] }>(['mirrors', 'list', ...f.admin(), '--json'])).mirrors;
/** `reconcile --json`: its exit code and view. */
const reconcile = async () => {
  const r = await runCli(['reconcile', ...f.admin(), '--json']);
  return { code: r.code, view: JSON.parse(r.stdout) as ReconcileView, stderr: r.stderr };
};
const macs = async () => (await f.devices()).map((d) => d.deviceId).sort();
const vmHwmKiB = async (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]);
const iso = (ms = Date.now()) => new Date(ms).toISOString();
/** A record as a mirror sends it: each MAC with its own key (a record without one is never merged). */
const record = (deviceId: string, over: Record<string, unknown> = {}) => ({
  deviceId, product: 'acme', channel: 'stable', version: '1.0.0', firstSeenAt: iso(), lastSeenAt: iso(), lastReportAt: null,
  source: hostile.url, updatedAt: iso(), publicKey: createHash('sha256').update(deviceId).digest('hex'), ...over,
});
/** The hostile mirror answers pushes and schedules like a real one. */
const acceptWrites = (res: import('node:http').ServerResponse, method: string, path: string): boolean => {
  if (method === 'POST' && path === '/v1/mirror/devices') return json(res, 200, { merged: 0 }), true;
  if (method === 'PUT' && path === '/v1/mirror/schedules') return json(res, 200, { changed: false }), true;
  return false;
};

before(async () => {
  clock = new ServerClock(join(await tempDir(suite, 'patchwire-trust-clock-'), 'offset-ms'));
  hostile = await HostilePeer.start(suite);
  target = await HostilePeer.start(suite);
  f = await startFleet(suite, {
    token: 'trust-admin', prefix: 'patchwire-e2e-mirror-trust-',
    server: {
      name: 'primary',
      args: ['--mirror-token', MT, '--reconcile-interval', '1h', '--alarm-webhook', `${hostile.url}/hook`],
      env: { ...clock.env, PATCHWIRE_MIRROR_PAGE_RECORDS: '10' },
    },
    releases: [['1.0.0', { README: 'one' }]],
  });
  // One real device at the primary, so "nothing changed" has something to compare.
  assert.equal((await f.rawCheck('aa:00:00:00:09:01', '1.0.0')).status, 200);
  await waitFor(async () => (await macs()).length === 1, { what: 'the device to be registered' });
});

describe('mirror trust: a mirror token holder and a hostile approved mirror against a real primary', () => {
  test('announced URLs are validated: not http(s), credentials, a path, query or fragment, too long are 400 PW_BAD_MIRROR_URL; nothing is recorded', async () => {
    const bad: Array<[string, RegExp]> = [
      ['ftp://127.0.0.1:21', /is not http or https/],
      ['file:///etc/passwd', /is not http or https/],
      ['http://user:secret@127.0.0.1:1', /user name or password/],
      ['http://127.0.0.1:1/some/path', /has a path/],
      ['http://127.0.0.1:1/?x=1', /query or a fragment/],
      ['http://127.0.0.1:1#frag', /query or a fragment/],
      [`http://${'a'.repeat(600)}.example`, /longer than 512 characters/],
      ['not a url', /is not a URL/],
    ];
    for (const [url, why] of bad) {
      const res = await announce(url);
      const body = await res.json() as { code: string; message: string };
      assert.equal(res.status, 400, url);
      assert.equal(body.code, 'PW_BAD_MIRROR_URL', url);
      assert.match(body.message, why, url);
      assert.match(body.message, /--public-url, http\(s\):\/\/host\[:port\]/, 'says what to give instead');
    }
    assert.deepEqual(await mirrors(), [], 'no mirror recorded');
  });

  test('an announced mirror is pending and never contacted: reconcile and status name it, the hostile server sees no request', async () => {
    const res = await announce(`${hostile.url}/`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, state: 'pending' });
    const [m] = await mirrors();
    assert.deepEqual([m?.url, m?.state, m?.approvedAt], [hostile.url, 'pending', null], 'normalised (no trailing slash), pending');
    const r = await reconcile();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.view, { mirrors: [], pending: [hostile.url] });
    const text = await runCli(['status', ...f.admin()]);
    assert.match(text.stdout, new RegExp(`${hostile.url}: PENDING approval, never contacted: \`patchwire mirrors approve ${hostile.url}\``));
    assert.deepEqual(hostile.seen, [], 'the primary sent nothing to a pending mirror');
    // Approving a URL that never announced is refused and approves nothing.
    const unknown = await runCli(['mirrors', 'approve', 'http://127.0.0.1:9', ...f.admin()]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /PW_UNKNOWN_MIRROR/);
    assert.match(unknown.stderr, /--mirror-allow/);
    assert.equal((await mirrors()).length, 1);
  });

  test('approved, its invalid records (version 99.0.0, unknown product or channel, future or pre-2000 times, bad MAC, no or bad device key) are skipped and counted, never merged', async () => {
    hostile.handler = (req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      if (acceptWrites(res, req.method!, path)) return;
      if (path !== '/v1/mirror/devices') return void res.writeHead(404).end();
      json(res, 200, {
        next: 'c1',
        records: [
          record('aa:00:00:00:09:02'),
          record('aa:00:00:00:09:03', { version: '99.0.0' }),
          record('aa:00:00:00:09:04', { product: 'nope' }),
          record('aa:00:00:00:09:05', { channel: 'beta' }),
          record('aa:00:00:00:09:06', { lastSeenAt: '+275760-09-13T00:00:00.000Z' }),
          record('aa:00:00:00:09:07', { firstSeenAt: '1970-01-01T00:00:00.000Z' }),
          record('not-a-mac'),
          record('aa:00:00:00:09:0a', { publicKey: null }),
          record('aa:00:00:00:09:0b', { publicKey: 'zz'.repeat(32) }),
        ],
      });
    };
    const ok = await runCli(['mirrors', 'approve', hostile.url, ...f.admin()]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /approved mirror/);
    const r = await reconcile();
    assert.equal(r.code, 0, r.stderr);
    const [m] = r.view.mirrors;
    assert.equal(m?.pulled, 1, 'only the valid record');
    assert.equal(m?.skipped, 8);
    for (const why of [/1 version not released \(e\.g\. version 99\.0\.0 was never released on acme\/stable\)/, /1 unknown product/, /1 unknown channel \(e\.g\. channel 'beta'/,
      /1 lastSeenAt in the future/, /1 firstSeenAt before 2000/, /1 bad MAC/, /1 no device key/, /1 bad key/]) assert.match(m?.skippedWhy ?? '', why);
    assert.deepEqual(await macs(), ['aa:00:00:00:09:01', 'aa:00:00:00:09:02'], 'the bad records are not in the registry');
    const [listed] = await mirrors();
    assert.deepEqual([listed?.state, listed?.skipped, listed?.error], ['approved', 8, null]);
    assert.match(listed?.skippedWhy ?? '', /version not released/);
    assert.ok(hostile.seen.every((s) => s.authorization === `Bearer ${MT}`));
  });

  test('a huge page is cut off at 8 MiB: the sync fails with a clear error, nothing is merged, the primary stays under 400 MB', async (t) => {
    const before = await macs();
    let written = 0;
    hostile.handler = async (req, res) => {
      if (acceptWrites(res, req.method!, new URL(req.url!, 'http://x').pathname)) return;
      written = await streamHuge(res, 400 * 1024 ** 2);
    };
    const from = hostile.seen.length;
    const r = await reconcile();
    assert.equal(r.code, 1, 'a failed mirror is exit 1');
    assert.match(r.view.mirrors[0]?.error ?? '', /answered more than 8 MiB; refused, nothing of it was used/);
    await waitFor(() => written > 0, { what: 'the hostile stream to end' });
    assert.ok(written < 100 * 1024 ** 2, `the primary hung up early (the peer wrote ${written} bytes)`);
    assert.deepEqual(hostile.since(from).map((s) => s.method), ['GET'], 'one page asked, nothing pushed after the failed pull');
    assert.match(hostile.since(from)[0]!.url, /after=c1/, 'from the saved cursor');
    assert.deepEqual(await macs(), before);
    const hwm = await vmHwmKiB(f.server.proc.pid!);
    assert.ok(hwm < 400 * 1024, `primary VmHWM ${hwm} kB`);
    t.diagnostic(`primary VmHWM ${hwm} kB`);
  });

  test('endless pages stop at 1000 pages per run with an error; the next run resumes from the saved cursor', async (t) => {
    let n = 0;
    hostile.handler = (req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      if (acceptWrites(res, req.method!, path)) return;
      n++;
      json(res, 200, { next: `p${n}`, records: Array.from({ length: 10 }, () => record('aa:00:00:00:09:08')) });
    };
    const from = hostile.seen.length;
    const r = await reconcile();
    assert.equal(r.code, 1);
    assert.match(r.view.mirrors[0]?.error ?? '', /still had device pages after 1000 pages in one run; stopped .* the next run resumes/);
    const gets = hostile.since(from);
    assert.equal(gets.length, 1000, 'exactly 1000 pages, no push after the failed pull');
    assert.ok(gets.every((s) => s.method === 'GET'));
    // The next run starts after the last page merged.
    hostile.handler = (req, res) => {
      if (acceptWrites(res, req.method!, new URL(req.url!, 'http://x').pathname)) return;
      json(res, 200, { next: 'p-end', records: [] });
    };
    const next = hostile.seen.length;
    const r2 = await reconcile();
    assert.equal(r2.code, 0, JSON.stringify(r2.view));
    assert.match(hostile.seen[next]!.url, /after=p1000(&|$)/);
    assert.ok((await macs()).includes('aa:00:00:00:09:08'), 'a valid record of those pages was merged (an approved mirror speaks for its devices)');
    const hwm = await vmHwmKiB(f.server.proc.pid!);
    assert.ok(hwm < 400 * 1024, `primary VmHWM ${hwm} kB`);
    t.diagnostic(`primary VmHWM ${hwm} kB`);
  });

  test('redirects are never followed (pull and schedule push): the error names the Location, the redirect target receives nothing', async () => {
    for (const [method, status] of [['GET', 302], ['PUT', 307]] as const) {
      hostile.handler = (req, res) => {
        const path = new URL(req.url!, 'http://x').pathname;
        if (req.method === method) return void res.writeHead(status, { location: `${target.url}${req.url}` }).end();
        if (path === '/v1/mirror/devices' && req.method === 'GET') return json(res, 200, { next: 'p-end', records: [] });
        acceptWrites(res, req.method!, path);
      };
      const r = await reconcile();
      assert.equal(r.code, 1, `${method} ${status}`);
      const error = r.view.mirrors[0]?.error ?? '';
      assert.match(error, new RegExp(`answered ${status}, a redirect to ${target.url}/v1/mirror/`));
      assert.match(error, /never follows redirects between servers: announce a mirror at its final URL/);
    }
    assert.deepEqual(target.seen, [], 'the redirect target received nothing (no registry, no token)');
  });

  test('the alarm webhook does not follow a redirect: a warn line names the Location, the target receives nothing', async () => {
    hostile.handler = (req, res) => {
      if (req.url === '/hook') return void res.writeHead(307, { location: `${target.url}/stolen` }).end();
      res.writeHead(404).end();
    };
    const at = new Date(clock.now() + 60_000);
    const s = await runCli(['schedule', ...f.admin(), '--product', 'acme', '--at', at.toISOString()]);
    assert.equal(s.code, 0, s.stderr);
    await clock.passTime(at, 1000);
    assert.equal((await runJson<StatusView>(['status', ...f.admin(), '--json'])).alarms[0]?.kind, 'schedule-overdue');
    await waitFor(() => f.server.output().includes(`a redirect to ${target.url}/stolen; it was not followed: set --alarm-webhook to the final URL`),
      { what: 'the warn line about the redirected webhook', detail: f.server.output });
    assert.equal(hostile.seen.filter((r) => r.url === '/hook').length, 1, 'posted once to the configured URL');
    assert.deepEqual(target.seen, []);
  });

  test('a mirror token holder posing as the primary to a real mirror: pushed records with bad times or MACs are skipped, absurd schedules refused', async () => {
    const mirror = await f.serve('mirror', { token: 'trust-mirror-admin', args: ['--upstream', f.server.url, '--upstream-token', MT, '--sync-interval', '1h'] });
    // The mirror is told it waits for approval (and how to give it).
    await waitFor(() => mirror.output().includes(`the primary has not approved this mirror yet: it replicates, but its devices are not consolidated until the operator runs \`patchwire mirrors approve ${mirror.url}\``),
      { what: 'the mirror to log that it is pending', detail: mirror.output });
    await waitFor(async () => (await f.releases({ server: mirror.url })).length === 1, { what: 'the mirror to replicate 1.0.0' });
    const post = (path: string, method: string, body: unknown) => fetch(`${mirror.url}/v1/mirror/${path}`, {
      method, headers: { authorization: `Bearer ${MT}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const res = await post('devices', 'POST', { records: [
      record('aa:00:00:00:09:10'),
      record('aa:00:00:00:09:11', { lastReportAt: '+275760-09-13T00:00:00.000Z' }),
      record('aa:00:00:00:09:12', { lastSeenAt: '-000001-01-01T00:00:00.000Z' }),
      record('zz:zz'),
    ] });
    assert.equal(res.status, 200);
    const answer = await res.json() as { merged: number; skipped: number; skippedWhy: string };
    assert.deepEqual([answer.merged, answer.skipped], [1, 3]);
    assert.match(answer.skippedWhy, /1 lastReportAt in the future .*1 lastSeenAt before 2000 .*1 bad MAC/);
    assert.deepEqual((await f.devices(mirror.url)).map((d) => d.deviceId), ['aa:00:00:00:09:10'], 'only the valid record at the mirror');
    const schedule = { product: 'acme', channel: 'stable', at: '+275760-09-13T00:00:00.000Z', spreadSeconds: 0, setAt: iso() };
    const put = await post('schedules', 'PUT', { schedules: [schedule] });
    assert.equal(put.status, 400);
    assert.match((await put.json() as { message: string }).message, /schedules\[0\] has a time that is not ISO-8601 between 2000 and 2999/);
    assert.deepEqual((await f.rawCheck('aa:00:00:00:09:10', '1.0.0', { server: mirror.url })).body.schedule,
      (await f.rawCheck('aa:00:00:00:09:10', '1.0.0')).body.schedule, 'the mirror still answers the primary\'s schedule, not the forged one');
  });
});
