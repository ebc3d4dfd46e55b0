/**
 * Device identity (issue 9; docs/security.md "Device identity") against real `patchwire serve`
 * and `patchwire check` processes on 127.0.0.1: only a device's own key can speak for it. Every
 * forged request is refused with its code and a message that says what to do, and the registry
 * is read back afterwards through the admin API to show that nothing changed.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { runCli, runJson } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { ServerClock } from './helpers/server-clock.js';
import { waitFor } from './helpers/wait-for.js';
import { assertError } from './helpers/requests.js';
import { authBody, authRaw, deviceSession } from './helpers/device-session.js';
import type { DeviceView, StatusView } from '../src/protocol/wire.js';

const TOKEN = 'device-auth-admin-token';
const suite = Cleanup.forSuite();
let f: Fleet;
let webhook: Array<{ alarm: { kind: string; deviceId?: string } }> = [];
let hookUrl = '';

before(async () => {
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => { webhook.push(JSON.parse(body) as (typeof webhook)[number]); res.end('ok'); });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  suite.after(() => new Promise<void>((r) => hook.close(() => r())));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
  f = await startFleet(suite, {
    token: TOKEN, prefix: 'patchwire-device-auth-',
    server: { args: ['--alarm-webhook', hookUrl] },
    releases: [['1.0.0', { 'bin/app': 'echo 1.0.0\n' }]],
  });
});

async function post(server: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

const device = async (mac: string, product = 'acme', server?: string): Promise<DeviceView | undefined> =>
  (await runJson<DeviceView[]>(['devices', ...f.admin(server), '--product', product, '--json'])).find((d) => d.deviceId === mac);
const status = (server?: string) => runJson<StatusView>(['status', ...f.admin(server), '--json']);
const tokenFile = async (dir: string) => JSON.parse(await readFile(join(dir, '.patchwire', 'device-tokens.json'), 'utf8')) as { tokens: Record<string, { token: string }> };
const checkCli = (dir: string) => runCli(['check', '--dir', dir, '--json', '--force']);

test('forged checks and reports for an enrolled MAC (no token, another device\'s, tampered) get 401 and change nothing', async () => {
  const MAC = 'aa:00:00:00:01:01';
  const dir = await f.initAgent('victim', MAC);
  assert.equal((await f.check(dir)).result, 'updated');
  const before = { device: await device(MAC), reports: await f.reports(MAC) };
  assert.equal(before.device?.version, '1.0.0');
  assert.equal(before.device?.status, 'accepted');
  assert.equal(before.reports.length, 1);

  const real = (await tokenFile(dir)).tokens[f.server.url]!.token;
  const other = await deviceSession(f.server.url, 'aa:00:00:00:01:02');
  // A tampered token: the victim's, with its payload changed by one character.
  const [p, payload, mac] = real.split('.');
  const tampered = `${p}.${payload!.slice(0, -2)}${payload!.endsWith('A') ? 'B' : 'A'}${payload!.slice(-1)}.${mac}`;
  const check = { deviceId: MAC, product: 'acme', channel: 'stable', version: null };
  const report = { deviceId: MAC, product: 'acme', channel: 'stable', event: 'rolled-back', version: '1.0.0', previousVersion: null, detail: 'forged' };
  const failed = { ...report, event: 'failed', detail: 'forged failure' };
  const logBefore = f.server.output().split('\n').length;
  for (const [, headers, message] of [
    ['no token', {}, /no device token.*POST \/v1\/auth/],
    ['another device\'s token', other.headers, /is for device aa:00:00:00:01:02 of acme, not aa:00:00:00:01:01/],
    ['a tampered token', { authorization: `Bearer ${tampered}` }, /signature does not verify/],
    ['a made-up token', { authorization: 'Bearer pwd1.eHh4.eHh4' }, /signature does not verify|not a patchwire device token/],
  ] as const) {
    for (const [path, body] of [['/v1/check', check], ['/v1/report', report], ['/v1/report', failed]] as const) {
      const r = await post(f.server.url, path, body, headers);
      assertError(r.status, r.text, { status: 401, code: 'PW_DEVICE_TOKEN', message });
    }
  }
  const after = { device: await device(MAC), reports: await f.reports(MAC) };
  assert.deepEqual(after, before, 'nothing changed: version, last seen, report history');
  // Twelve forged requests from one address: logged once a minute at most, not once per request.
  const refusedLines = f.server.output().split('\n').slice(logBefore - 1).filter((l) => l.includes('refused request'));
  assert.ok(refusedLines.length <= 1, `${refusedLines.length} log lines for 12 forged requests:\n${refusedLines.join('\n')}`);
  // The control: the victim's own token works.
  assert.equal((await post(f.server.url, '/v1/check', check, { authorization: `Bearer ${real}` })).status, 200);
});

test('an expired token gets 401 and records nothing; the agent re-authenticates by itself', async () => {
  const clock = new ServerClock(join(f.root, 'clock-expiry'));
  const s = await f.serve('server-expiry', { args: ['--device-token-ttl', '1m'], env: clock.env });
  // This server has its own online keys: the agent trusts the root made on it.
  await f.createProduct({ server: s.url, rootOut: join(f.root, 'expiry.root.json') });
  const MAC = 'aa:00:00:00:02:01';
  const dir = await f.initAgent('expiry', MAC, { server: s.url, rootFile: join(f.root, 'expiry.root.json') });
  assert.equal((await f.check(dir)).result, 'up-to-date');
  const token = (await tokenFile(dir)).tokens[s.url]!.token;
  const before = await device(MAC, 'acme', s.url);
  await clock.passTime(new Date(), 61_000);
  const r = await post(s.url, '/v1/check', { deviceId: MAC, product: 'acme', channel: 'stable', version: null }, { authorization: `Bearer ${token}` });
  assertError(r.status, r.text, { status: 401, code: 'PW_DEVICE_TOKEN', message: /expired at .*POST \/v1\/auth/ });
  assert.deepEqual(await device(MAC, 'acme', s.url), before, 'the expired token recorded no sighting');
  // The agent's clock says its cached token still has a minute: the server's 401 makes it re-authenticate once.
  assert.equal((await f.check(dir, '--force')).result, 'up-to-date');
  assert.notEqual((await tokenFile(dir)).tokens[s.url]!.token, token, 'a new token was cached');
});

test('approve: a new device waits as pending (exit 3, says what to run) until `devices accept`; then it updates', async () => {
  await f.createProduct({ product: 'gadget', rootOut: join(f.root, 'gadget.root.json') }).catch(() => undefined);
  assert.equal((await runCli(['product', 'admission', 'gadget', 'approve', ...f.admin()])).code, 0);
  assert.equal((await f.publish('1.0.0', { 'bin/g': 'g1\n' }, { product: 'gadget' })).code, 0);
  const MAC = 'aa:00:00:00:03:01';
  const dir = await f.initAgent('gadget-1', MAC, { product: 'gadget', rootFile: join(f.root, 'gadget.root.json') });
  const waiting = await checkCli(dir);
  assert.equal(waiting.code, 3, waiting.stderr);
  assert.match(waiting.stderr, /waits for approval.*patchwire devices accept aa:00:00:00:03:01 --product gadget/);
  const pending = await device(MAC, 'gadget');
  assert.equal(pending?.status, 'pending');
  assert.equal(pending?.version, null);
  assert.deepEqual(await f.reports(MAC, { product: 'gadget' }), [], 'a pending device reported nothing');
  const acc = await runJson<{ status: string }>(['devices', 'accept', MAC, '--product', 'gadget', ...f.admin(), '--json']);
  assert.equal(acc.status, 'accepted');
  const r = await f.check(dir, '--force');
  assert.equal(r.result, 'updated');
  assert.equal((await device(MAC, 'gadget'))?.version, '1.0.0');

  // Preauthorised: admitted at its first auth even under approve (with --key: only that key).
  const PRE = 'aa:00:00:00:03:02';
  assert.equal((await runCli(['devices', 'preauthorize', PRE, '--product', 'gadget', ...f.admin()])).code, 0);
  const pre = await f.initAgent('gadget-2', PRE, { product: 'gadget', rootFile: join(f.root, 'gadget.root.json') });
  assert.equal((await f.check(pre)).result, 'updated');
  const KEYED = 'aa:00:00:00:03:03';
  const wrong = authBody(KEYED, 'gadget');
  assert.equal((await runCli(['devices', 'preauthorize', KEYED, '--product', 'gadget', '--key', 'ab'.repeat(32), ...f.admin()])).code, 0);
  const r2 = await authRaw(f.server.url, wrong);
  assert.equal(r2.status, 403, 'another key than the preauthorised one waits');
  assert.equal(r2.body.code, 'PW_DEVICE_PENDING');
});

test('identity conflict: a new key for a known MAC waits with an alarm; the old device keeps working; accept re-binds keeping history', async () => {
  const MAC = 'aa:00:00:00:04:01';
  const old = await f.initAgent('conflict-old', MAC);
  assert.equal((await f.check(old)).result, 'updated');
  const history = await f.reports(MAC);
  const impostor = await f.initAgent('conflict-new', MAC);
  const c = await checkCli(impostor);
  assert.equal(c.code, 3, c.stderr);
  assert.match(c.stderr, /bound to another key .* waits for an operator: `patchwire devices accept aa:00:00:00:04:01 --product acme`/);
  const d = await device(MAC);
  assert.equal(d?.version, '1.0.0', 'not re-bound, nothing changed');
  assert.ok(d?.pendingKeyId && d.pendingKeyId !== d.keyId);
  const alarms = (await status()).alarms.filter((a) => a.kind === 'identity-conflict');
  assert.deepEqual(alarms.map((a) => a.kind === 'identity-conflict' && [a.deviceId, a.keyId, a.pendingKeyId]), [[MAC, d!.keyId, d!.pendingKeyId]]);
  await waitFor(async () => webhook.some((w) => w.alarm.kind === 'identity-conflict' && w.alarm.deviceId === MAC), { what: 'the identity-conflict webhook' });
  assert.equal((await f.check(old, '--force')).result, 'up-to-date', 'the bound device keeps working');
  assert.deepEqual(await f.reports(MAC), history);

  // Accept re-binds to the new key: the record and its history stay; the old key's token stops at once.
  const oldToken = (await tokenFile(old)).tokens[f.server.url]!.token;
  await runJson(['devices', 'accept', MAC, '--product', 'acme', ...f.admin(), '--json']);
  assert.equal((await f.check(impostor, '--force')).result, 'updated', 'the re-bound device (a fresh folder) installs and reports');
  const r = await post(f.server.url, '/v1/check', { deviceId: MAC, product: 'acme', channel: 'stable', version: '1.0.0' }, { authorization: `Bearer ${oldToken}` });
  assertError(r.status, r.text, { status: 401, code: 'PW_DEVICE_TOKEN', message: /no longer valid/ });
  const rebound = await device(MAC);
  assert.equal(rebound?.keyId, d!.pendingKeyId);
  assert.equal(rebound?.pendingKeyId, null);
  assert.equal(rebound?.firstSeenAt, d!.firstSeenAt, 'the same record');
  const now = await f.reports(MAC);
  assert.deepEqual(now.slice(0, history.length), history, 'history kept');
  assert.equal(now.length, history.length + 1, "and the re-bound device's own report added");
  assert.equal((await status()).alarms.filter((a) => a.kind === 'identity-conflict').length, 0, 'the alarm is gone');
});

test('reject: drops a pending key; without one, rejects the device, whose token stops at once', async () => {
  const MAC = 'aa:00:00:00:05:01';
  const good = await f.initAgent('reject-good', MAC);
  assert.equal((await f.check(good)).result, 'updated');
  const bad = await f.initAgent('reject-bad', MAC);
  assert.equal((await checkCli(bad)).code, 3);
  const r1 = await runJson<{ status: string; pendingKeyId: string | null }>(['devices', 'reject', MAC, '--product', 'acme', ...f.admin(), '--json']);
  assert.deepEqual([r1.status, r1.pendingKeyId], ['accepted', null]);
  assert.equal((await f.check(good, '--force')).result, 'up-to-date');
  const r2 = await runJson<{ status: string }>(['devices', 'reject', MAC, '--product', 'acme', ...f.admin(), '--json']);
  assert.equal(r2.status, 'rejected');
  const before = { device: await device(MAC), reports: await f.reports(MAC) };
  const refused = await checkCli(good);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /PW_DEVICE_REJECTED.*rejected by an operator/);
  assert.deepEqual({ device: await device(MAC), reports: await f.reports(MAC) }, before);
});

test('an unknown product or channel at auth is a 404 and creates no record', async () => {
  const r = await authRaw(f.server.url, authBody('aa:00:00:00:06:01', 'acme', 'nightly'));
  assert.equal(r.status, 404);
  assert.equal(r.body.code, 'PW_UNKNOWN_CHANNEL');
  assert.match(String(r.body.message), /its channels: stable/);
  assert.equal((await authRaw(f.server.url, authBody('aa:00:00:00:06:01', 'nope'))).body.code, 'PW_UNKNOWN_PRODUCT');
  const signed = authBody('aa:00:00:00:06:01', 'acme');
  // Signed by the key it presents, but for another MAC: the signature does not cover this one.
  const forged = { ...authBody('aa:00:00:00:06:02', 'acme'), deviceId: signed.deviceId };
  const bad = await authRaw(f.server.url, forged);
  assert.equal(bad.status, 401);
  assert.equal(bad.body.code, 'PW_DEVICE_AUTH');
  const skewed = await authRaw(f.server.url, authBody('aa:00:00:00:06:01', 'acme', 'stable', undefined, new Date(Date.now() - 3600_000)));
  assert.equal(skewed.body.code, 'PW_DEVICE_AUTH');
  assert.match(String(skewed.body.message), /set the device's clock/);
  assert.equal(await device('aa:00:00:00:06:01'), undefined);
});

test('enrolment flood from one address: 429 with Retry-After; enrolled devices are unaffected; the device cap refuses beyond it', async () => {
  const s = await f.serve('server-flood', { args: ['--enrol-limit', '3/1h', '--max-devices', '4'] });
  await f.createProduct({ server: s.url });
  const enrolled = await deviceSession(s.url, 'aa:00:00:00:07:00');
  for (let i = 1; i <= 2; i++) assert.equal((await authRaw(s.url, authBody(`aa:00:00:00:07:0${i}`, 'acme'))).status, 200);
  const flood = await authRaw(s.url, authBody('aa:00:00:00:07:09', 'acme'));
  assert.equal(flood.status, 429);
  assert.equal(flood.body.code, 'PW_RATE_LIMITED');
  assert.match(String(flood.body.message), /retry after \d+ s/);
  assert.ok(Number(flood.headers.get('retry-after')) >= 1, 'Retry-After');
  const again = await authRaw(s.url, authBody('aa:00:00:00:07:00', 'acme', 'stable', enrolled.key));
  assert.equal(again.status, 200, 'a re-auth of an enrolled device is not an enrolment');
  const devices = await runJson<DeviceView[]>(['devices', ...f.admin(s.url), '--json']);
  assert.deepEqual(devices.map((d) => d.deviceId), ['aa:00:00:00:07:00', 'aa:00:00:00:07:01', 'aa:00:00:00:07:02'], 'the refused one left no record');

  const capped = await f.serve('server-cap', { args: ['--max-devices', '2'] });
  await f.createProduct({ server: capped.url });
  for (let i = 1; i <= 2; i++) assert.equal((await authRaw(capped.url, authBody(`aa:00:00:00:08:0${i}`, 'acme'))).status, 200);
  const over = await authRaw(capped.url, authBody('aa:00:00:00:08:03', 'acme'));
  assert.equal(over.status, 403);
  assert.equal(over.body.code, 'PW_DEVICE_LIMIT');
  assert.match(String(over.body.message), /--max-devices 2.*devices remove/);
  assert.equal((await runJson<DeviceView[]>(['devices', ...f.admin(capped.url), '--json'])).length, 2);
});

test('a reject, remove or re-bind holds across a restart: the old tokens stay refused and recreate nothing (found by an attacker)', async () => {
  const s1 = await f.serve('server-restart');
  await f.createProduct({ server: s1.url });
  const R = 'aa:00:00:00:0a:01'; // rejected
  const G = 'aa:00:00:00:0a:02'; // removed
  const B = 'aa:00:00:00:0a:03'; // re-bound to another key
  const rejected = await deviceSession(s1.url, R);
  const removed = await deviceSession(s1.url, G);
  const old = await deviceSession(s1.url, B);
  assert.equal((await runCli(['devices', 'reject', R, '--product', 'acme', ...f.admin(s1.url)])).code, 0);
  assert.equal((await runCli(['devices', 'remove', G, '--product', 'acme', ...f.admin(s1.url)])).code, 0);
  // B's new key: a conflict, then accepted by the operator (a replaced machine).
  assert.equal((await authRaw(s1.url, authBody(B, 'acme'))).status, 403);
  assert.equal((await runCli(['devices', 'accept', B, '--product', 'acme', ...f.admin(s1.url)])).code, 0);
  const before = await runJson<DeviceView[]>(['devices', ...f.admin(s1.url), '--json']);
  await s1.stop();

  const s2 = await f.serve('server-restart');
  const report = (mac: string) => ({ deviceId: mac, product: 'acme', channel: 'stable', event: 'failed', version: null, previousVersion: null, detail: 'stale token' });
  for (const [mac, session] of [[R, rejected], [G, removed], [B, old]] as const) {
    for (const path of ['/v1/report', '/v1/check']) {
      const body = path === '/v1/check' ? { deviceId: mac, product: 'acme', channel: 'stable', version: null } : report(mac);
      const r = await post(s2.url, path, body, session.headers);
      assertError(r.status, r.text, { status: 401, code: 'PW_DEVICE_TOKEN', message: /no longer valid/ });
    }
  }
  assert.deepEqual(await runJson<DeviceView[]>(['devices', ...f.admin(s2.url), '--json']), before, 'nothing recorded, the removed device not recreated');
});

test('a report names a channel devices can check on, and a version released on it', async () => {
  const s = await f.serve('server-report-rules');
  await f.createProduct({ server: s.url });
  assert.equal((await f.publish('1.0.0', { 'bin/app': 'a\n' }, { server: s.url })).code, 0);
  assert.equal((await f.publish('3.0.0', { 'bin/app': 'b\n' }, { server: s.url, extra: ['--channel', 'beta'] })).code, 0);
  const MAC = 'aa:00:00:00:0b:01';
  const session = await deviceSession(s.url, MAC);
  const applied = (channel: string, version: string) => ({ deviceId: MAC, product: 'acme', channel, event: 'applied', version, previousVersion: null });
  let r = await post(s.url, '/v1/report', applied('no-such-channel', '1.0.0'), session.headers);
  assertError(r.status, r.text, { status: 404, code: 'PW_UNKNOWN_CHANNEL', message: /no channel 'no-such-channel'.*its channels: beta, stable/ });
  r = await post(s.url, '/v1/report', applied('stable', '3.0.0'), session.headers);
  assertError(r.status, r.text, { status: 404, code: 'PW_UNKNOWN_RELEASE', message: /acme\/stable has no release 3\.0\.0/ });
  assert.deepEqual(await f.reports(MAC, { server: s.url }), [], 'nothing recorded');
  r = await post(s.url, '/v1/report', applied('stable', '1.0.0'), session.headers);
  assert.equal(r.status, 200, r.text);
});

test('accept --key binds only the named key: a stranger who replaced the waiting key is refused (found by an attacker)', async () => {
  const MAC = 'aa:00:00:00:0c:01';
  const real = await deviceSession(f.server.url, MAC);
  // The real device's replacement presents its key; then a stranger who knows the MAC presents another.
  const replacement = authBody(MAC, 'acme');
  assert.equal((await authRaw(f.server.url, replacement)).status, 403);
  const replacementKeyId = (await device(MAC))!.pendingKeyId!;
  assert.equal((await authRaw(f.server.url, authBody(MAC, 'acme'))).status, 403);
  const waiting = (await device(MAC))!;
  const strangerKeyId = waiting.pendingKeyId!;
  assert.notEqual(strangerKeyId, replacementKeyId, 'the stranger replaced the waiting key');
  const r = await runCli(['devices', 'accept', MAC, '--product', 'acme', '--key', replacementKeyId.slice(0, 12), ...f.admin(), '--json']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'PW_KEY_MISMATCH');
  assert.match(r.stderr, new RegExp(`would bind .* is ${strangerKeyId}, not ${replacementKeyId.slice(0, 12)}: nothing changed.*devices reject`));
  assert.deepEqual(await device(MAC), waiting, 'nothing changed');
  assert.equal((await post(f.server.url, '/v1/check', { deviceId: MAC, product: 'acme', channel: 'stable', version: null }, real.headers)).status, 200, 'the bound key still works');
  // The operator drops the stranger's key; the replacement presents its key again and is pinned.
  assert.equal((await runCli(['devices', 'reject', MAC, '--product', 'acme', ...f.admin()])).code, 0);
  assert.equal((await authRaw(f.server.url, replacement)).status, 403);
  const ok = await runJson<{ keyId: string }>(['devices', 'accept', MAC, '--product', 'acme', '--key', replacementKeyId.slice(0, 12), ...f.admin(), '--json']);
  assert.equal(ok.keyId, replacementKeyId);
});
