/**
 * Issue 10, device pages in format 2 (docs/protocol.md "Device pages, format 2"): a real primary
 * (`patchwire serve`) on 127.0.0.1 against a "mirror" that is a node:http server written here
 * (test/helpers/hostile-peer.ts), answering pages of format 1 (as a mirror from before format 2)
 * or 2, valid and hostile; and a real mirror taking pushes in both formats. The primary asks for
 * pages of 20 records (test hook PATCHWIRE_MIRROR_PAGE_RECORDS). The tests run in this
 * order on one primary, each starting where the previous left it.
 */
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { HostilePeer, json } from './helpers/hostile-peer.js';
import { waitFor } from './helpers/wait-for.js';
import type { ReconcileView } from '../src/protocol/wire.js';

const MT = 'format-mirror-token';
const STORE_ID = 'f'.repeat(32);
const suite = Cleanup.forSuite();
let f: Fleet;
let peer: HostilePeer;
/** The POST bodies the peer received (the primary's pushes). */
let pushes: string[] = [];

const reconcile = async () => {
  const r = await runCli(['reconcile', ...f.admin(), '--json']);
  return { code: r.code, view: JSON.parse(r.stdout) as ReconcileView, stderr: r.stderr };
};
const macs = async (server?: string) => (await f.devices(server)).map((d) => d.deviceId).sort();
const keyOf = (mac: string) => createHash('sha256').update(mac).digest('hex');
const now = () => Date.now() - 60_000;
/** A record of format 1, as a mirror from before format 2 sends it. */
const objectRecord = (deviceId: string, over: Record<string, unknown> = {}) => ({
  deviceId, product: 'acme', channel: 'stable', version: '1.0.0', firstSeenAt: new Date(now()).toISOString(), lastSeenAt: new Date(now()).toISOString(),
  lastReportAt: null, source: peer.url, updatedAt: new Date().toISOString(), publicKey: keyOf(deviceId), status: 'accepted', ...over,
});
/** A record of format 2: [deviceId, product, channel, version, firstSeenAt, lastSeenAt, lastReportAt, source, lastEvent, publicKey, status]. */
const arrayRecord = (deviceId: string, over: Record<number, unknown> = {}): unknown[] => {
  const r: unknown[] = [deviceId, 'acme', 'stable', '1.0.0', now(), now(), now(), peer.url, 'applied', keyOf(deviceId), 'accepted'];
  for (const [i, v] of Object.entries(over)) r[Number(i)] = v;
  return r;
};
/** The peer answers GET /v1/mirror/devices with `page`, takes pushes and schedules like a real mirror. */
const answer = (page: unknown) => {
  peer.handler = (req, res, body) => {
    const path = new URL(req.url!, 'http://x').pathname;
    if (req.method === 'POST' && path === '/v1/mirror/devices') return pushes.push(body), json(res, 200, { merged: 0 });
    if (req.method === 'PUT' && path === '/v1/mirror/schedules') return json(res, 200, { changed: false });
    if (path !== '/v1/mirror/devices') return void res.writeHead(404).end();
    json(res, 200, page);
  };
};

before(async () => {
  peer = await HostilePeer.start(suite);
  f = await startFleet(suite, {
    token: 'format-admin', prefix: 'patchwire-e2e-mirror-format-',
    server: { name: 'primary', args: ['--mirror-token', MT, '--reconcile-interval', '1h'], env: { PATCHWIRE_ENABLE_FAULTS: '1', PATCHWIRE_MIRROR_PAGE_RECORDS: '20' } },
    releases: [['1.0.0', { README: 'one' }]],
  });
  assert.equal((await f.rawCheck('aa:00:00:00:0a:01', '1.0.0')).status, 200);
  await waitFor(async () => (await macs()).length === 1, { what: 'the device to be registered' });
  const res = await fetch(`${f.server.url}/v1/mirror/announce`, {
    method: 'POST', headers: { authorization: `Bearer ${MT}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: peer.url, storeId: STORE_ID }),
  });
  assert.equal(res.status, 200);
  answer({ records: [], next: null });
  const ok = await runCli(['mirrors', 'approve', peer.url, ...f.admin()]);
  assert.equal(ok.code, 0, ok.stderr);
});

describe('device pages in format 2 between a real primary and a mirror', () => {
  test('a mirror from before format 2 (pages of objects, no format) is pulled as before and pushed in format 1', async () => {
    pushes = [];
    const from = peer.seen.length;
    answer({ records: [objectRecord('aa:00:00:00:0a:02')], next: 'c1' });
    const r = await reconcile();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([r.view.mirrors[0]?.pulled, r.view.mirrors[0]?.skipped, r.view.mirrors[0]?.error], [1, 0, undefined]);
    assert.match(peer.since(from, '/v1/mirror/devices?')[0]!.url, /format=2/, 'the primary asks for format 2');
    assert.deepEqual(await macs(), ['aa:00:00:00:0a:01', 'aa:00:00:00:0a:02']);
    assert.equal(pushes.length, 1);
    const body = JSON.parse(pushes[0]!) as { format?: unknown; records: Array<Record<string, unknown>> };
    assert.equal(body.format, undefined, 'format 1: no format field (an older mirror refuses unknown fields)');
    // Its own record, merged exactly as it sent it, is not pushed back; the primary's device is, as an object.
    assert.deepEqual(body.records.map((x) => x.deviceId), ['aa:00:00:00:0a:01']);
    assert.equal(typeof body.records[0]!.lastSeenAt, 'string');
  });

  test('format 2: valid records merged; invalid ones (wrong length, not an array, ISO or fractional or future or pre-2000 times, bad MAC, bad key or status) skipped and counted; pushed in format 2 without its own', async () => {
    pushes = [];
    answer({
      format: 2, next: 'c2',
      records: [
        arrayRecord('aa:00:00:00:0a:03'),
        arrayRecord('aa:00:00:00:0a:04').slice(0, 10),
        { ...objectRecord('aa:00:00:00:0a:05') },
        arrayRecord('aa:00:00:00:0a:06', { 4: new Date().toISOString() }),
        arrayRecord('aa:00:00:00:0a:07', { 5: now() + 0.5 }),
        arrayRecord('aa:00:00:00:0a:08', { 5: Date.now() + 3_600_000 }),
        arrayRecord('aa:00:00:00:0a:09', { 4: 0 }),
        arrayRecord('aa:00:00:00:0a:0a', { 6: 9e15 }),
        arrayRecord('not-a-mac'),
        arrayRecord('aa:00:00:00:0a:0b', { 9: 'zz'.repeat(32) }),
        arrayRecord('aa:00:00:00:0a:0c', { 10: 'root' }),
        arrayRecord('aa:00:00:00:0a:0d', { 3: '99.0.0' }),
      ],
    });
    const r = await reconcile();
    assert.equal(r.code, 0, r.stderr);
    const [m] = r.view.mirrors;
    assert.equal(m?.pulled, 1, 'only the valid record');
    assert.equal(m?.skipped, 11);
    for (const why of [/2 not a record array \(e\.g\. a format-2 record is not an array of 11 values/, /1 firstSeenAt not a time \(e\.g\. firstSeenAt is not a whole number of milliseconds/,
      /1 lastSeenAt not a time/, /1 lastSeenAt in the future/, /1 firstSeenAt before 2000/, /1 lastReportAt in the future \(e\.g\. lastReportAt 9000000000000000 ms is in the future/,
      /1 bad MAC/, /1 bad key/, /1 bad status/, /1 version not released/]) assert.match(m?.skippedWhy ?? '', why);
    assert.deepEqual(await macs(), ['aa:00:00:00:0a:01', 'aa:00:00:00:0a:02', 'aa:00:00:00:0a:03'], 'the bad records are not in the registry');
    const [d] = (await f.devices()).filter((x) => x.deviceId === 'aa:00:00:00:0a:03');
    assert.equal(d?.lastEvent, 'applied');
    // The pull answered format 2, so the push is in format 2; its own record is not sent back.
    assert.equal(pushes.length, 0, 'nothing changed at the primary since the last push but this mirror\'s own record');
  });

  test('hostile format-2 pages are refused whole with a clear error, nothing merged: another format, records not an array, more records than asked', async () => {
    const before = await macs();
    const cases: Array<[unknown, RegExp]> = [
      [{ format: 3, records: [arrayRecord('aa:00:00:00:0a:20')], next: null }, /answered a device page of format 3; this server reads format 1 \(no format field\) and 2; refused, nothing of it was merged/],
      [{ format: '2', records: [arrayRecord('aa:00:00:00:0a:21')], next: null }, /answered a device page of format "2"/],
      [{ format: 2, records: { 0: arrayRecord('aa:00:00:00:0a:22') }, next: null }, /answered a device page that is not \{ records, next \}/],
      [{ format: 2, records: Array.from({ length: 21 }, (_, i) => arrayRecord(`aa:00:00:00:0b:${(16 + i).toString(16)}`)), next: 'c3' }, /answered 21 records for a page of at most 20; refused, nothing of it was merged/],
    ];
    for (const [page, why] of cases) {
      answer(page);
      const r = await reconcile();
      assert.equal(r.code, 1, 'a failed mirror is exit 1');
      assert.match(r.view.mirrors[0]?.error ?? '', why);
      assert.deepEqual(await macs(), before);
    }
  });

  test('a real mirror answers format 2 when asked, refuses an unknown format, and takes pushes in both formats with the same checks', async () => {
    const mirror = await f.serve('mirror', { token: 'format-mirror-admin', args: ['--upstream', f.server.url, '--upstream-token', MT, '--sync-interval', '1h'] });
    await waitFor(async () => (await f.releases({ server: mirror.url })).length === 1, { what: 'the mirror to replicate 1.0.0' });
    const call = (path: string, init: RequestInit = {}) => fetch(`${mirror.url}/v1/mirror/${path}`, {
      ...init, headers: { authorization: `Bearer ${MT}`, 'content-type': 'application/json' },
    });
    const post = async (body: unknown) => {
      const res = await call('devices', { method: 'POST', body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() as { merged: number; skipped: number; skippedWhy: string; message?: string } };
    };
    // Format 1, as a primary from before format 2 pushes.
    const one = await post({ records: [objectRecord('aa:00:00:00:0c:01')] });
    assert.deepEqual([one.status, one.body.merged, one.body.skipped], [200, 1, 0]);
    // Format 2: the same checks.
    const two = await post({ format: 2, records: [arrayRecord('aa:00:00:00:0c:02'), arrayRecord('aa:00:00:00:0c:03', { 5: Date.now() + 3_600_000 }), arrayRecord('zz:zz'), [1, 2]] });
    assert.deepEqual([two.status, two.body.merged, two.body.skipped], [200, 1, 3]);
    assert.match(two.body.skippedWhy, /1 lastSeenAt in the future .*1 bad MAC .*1 not a record array/);
    // An unknown format is a 400 and merges nothing.
    const three = await post({ format: 3, records: [arrayRecord('aa:00:00:00:0c:04')] });
    assert.equal(three.status, 400);
    assert.match(three.body.message ?? '', /format/);
    assert.deepEqual(await macs(mirror.url), ['aa:00:00:00:0c:01', 'aa:00:00:00:0c:02']);
    // Pages: format 2 when asked, objects otherwise, a clear 400 for another format.
    const compact = await (await call('devices?limit=1&format=2')).json() as { format: number; records: unknown[][]; next: string };
    assert.equal(compact.format, 2);
    assert.equal(compact.records.length, 1);
    assert.equal(compact.records[0]!.length, 11);
    assert.equal(typeof compact.records[0]![4], 'number', 'times in milliseconds');
    const objects = await (await call('devices?limit=1')).json() as { format?: number; records: Array<Record<string, unknown>> };
    assert.equal(objects.format, undefined);
    assert.equal(typeof objects.records[0]!.deviceId, 'string');
    const bad = await call('devices?format=7');
    assert.equal(bad.status, 400);
    assert.match((await bad.json() as { message: string }).message, /format must be 1 \(records as objects\) or 2 \(records as arrays\); this server knows no format "7"/);
  });
});
