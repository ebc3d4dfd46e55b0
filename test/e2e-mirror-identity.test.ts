/**
 * Issue 9, device identity across mirrors (docs/security.md "Mirrors"), with real processes on
 * 127.0.0.1: a primary, one mirror approved by --mirror-allow, real agents (`patchwire check`)
 * and hand-made device sessions for the attacker. The tests run in this order on one fleet.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from './helpers/ports.js';
import { join } from 'node:path';
import { runCli, runJson, type ServerProcess } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';
import { assertError } from './helpers/requests.js';
import { authBody, deviceSession } from './helpers/device-session.js';
import type { DeviceView, ReconcileView, StatusView } from '../src/protocol/wire.js';

const ADMIN = 'mirror-identity-admin';
const MT = 'mirror-identity-mt';
const suite = Cleanup.forSuite();
let f: Fleet;
let mirror: ServerProcess;


const device = async (mac: string, server: string, product = 'acme'): Promise<DeviceView | undefined> =>
  (await runJson<DeviceView[]>(['devices', ...f.admin(server), '--product', product, '--json'])).find((d) => d.deviceId === mac);
const reconcile = async (): Promise<ReconcileView> => {
  const r = await runCli(['reconcile', ...f.admin(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ReconcileView;
};
const releasesAt = async (server: string, product = 'acme') => (await f.releases({ server, product })).map((r) => r.version);
const replicated = (product: string, version: string) =>
  waitFor(async () => (await releasesAt(mirror.url, product).catch((): string[] => [])).includes(version), { what: `the mirror to replicate ${product} ${version}` });
/** A real agent at the mirror that is the same device as `from` (its device key copied): one device, one key. */
async function sameDeviceAtMirror(name: string, mac: string, from: string, o: { product?: string; rootFile?: string } = {}): Promise<string> {
  const dir = await f.initAgent(name, mac, { server: mirror.url, ...o });
  await f.sameDevice(from, dir);
  return dir;
}

before(async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  f = await startFleet(suite, {
    token: ADMIN, prefix: 'patchwire-mirror-identity-',
    server: { name: 'primary', args: ['--mirror-token', MT, '--reconcile-interval', '1h', '--mirror-allow', url] },
    releases: [['1.0.0', { 'bin/app': 'echo 1.0.0\n' }]],
  });
  mirror = await f.serve('mirror', { token: ADMIN, args: ['--port', String(port), '--public-url', url, '--upstream', f.server.url, '--upstream-token', MT, '--sync-interval', '1s'] });
  await replicated('acme', '1.0.0');
});

test('(a) an attacker claiming an enrolled MAC at a mirror with its own key: the primary merges nothing, raises identity-conflict, and the mirror drops the attacker', async () => {
  const MAC = 'aa:00:00:00:0e:01';
  const victim = await f.initAgent('victim', MAC);
  assert.equal((await f.check(victim)).result, 'updated');
  assert.equal((await f.publish('2.0.0', { 'bin/app': 'echo 2.0.0\n' })).code, 0);
  await replicated('acme', '2.0.0');
  const before = { device: await device(MAC, f.server.url), reports: await f.reports(MAC) };
  assert.equal(before.device?.version, '1.0.0');
  assert.equal(before.reports.length, 1);

  // The mirror has never seen this MAC: under `auto` it enrols the attacker's key, which reports 2.0.0 there.
  const attacker = await deviceSession(mirror.url, MAC);
  const report = await fetch(`${mirror.url}/v1/report`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...attacker.headers },
    body: JSON.stringify({ deviceId: MAC, product: 'acme', channel: 'stable', event: 'applied', version: '2.0.0', previousVersion: '1.0.0', detail: 'forged' }),
  });
  assert.equal(report.status, 200, 'the precondition of the attack: the mirror took the report');
  assert.equal((await device(MAC, mirror.url))?.version, '2.0.0');

  const r = await reconcile();
  const m = r.mirrors.find((x) => x.url === mirror.url);
  assert.equal(m?.error, undefined);
  assert.equal(m?.skipped, 1);
  assert.match(m?.skippedWhy ?? '', /identity conflict.*bound to key .* not merged.*devices accept/);
  const after = await device(MAC, f.server.url);
  assert.deepEqual({ device: { ...after, pendingKeyId: null }, reports: await f.reports(MAC) }, before, 'the primary\'s record, binding and history are unchanged');
  const alarms = (await runJson<StatusView>(['status', ...f.admin(), '--json'])).alarms.filter((a) => a.kind === 'identity-conflict');
  const bound = await device(MAC, f.server.url);
  assert.deepEqual(alarms.map((a) => a.kind === 'identity-conflict' && [a.deviceId, a.keyId, a.pendingKeyId]), [[MAC, bound?.keyId, attacker.key.keyId]]);
  assert.equal(bound?.pendingKeyId, attacker.key.keyId);

  // The primary's push re-bound the MAC at the mirror to the victim's key: the attacker's token is dead there.
  assert.equal((await device(MAC, mirror.url))?.keyId, bound?.keyId);
  const again = await fetch(`${mirror.url}/v1/check`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...attacker.headers },
    body: JSON.stringify({ deviceId: MAC, product: 'acme', channel: 'stable', version: '2.0.0' }),
  });
  assertError(again.status, await again.text(), { status: 401, code: 'PW_DEVICE_TOKEN', message: /no longer valid.*re-bound/ });
  const reauth = await fetch(`${mirror.url}/v1/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(authBody(MAC, 'acme', 'stable', attacker.key)) });
  assert.equal(reauth.status, 403, 'a new auth of the attacker\'s key waits at the mirror');
});

test('(b) a device enrolled at the primary is known at the mirror after a reconcile: same key id, no new enrolment', async () => {
  const MAC = 'aa:00:00:00:0e:02';
  const home = await f.initAgent('traveller', MAC);
  assert.equal((await f.check(home)).result, 'updated');
  assert.equal(await device(MAC, mirror.url), undefined, 'the mirror does not know it yet');
  await reconcile();
  const atPrimary = await device(MAC, f.server.url);
  const atMirror = await device(MAC, mirror.url);
  assert.equal(atMirror?.status, 'accepted');
  assert.equal(atMirror?.keyId, atPrimary?.keyId, 'the primary\'s binding, before the device ever spoke to the mirror');
  const away = await sameDeviceAtMirror('traveller-at-mirror', MAC, home);
  assert.equal((await f.check(away)).result, 'updated');
  assert.equal((await device(MAC, mirror.url))?.keyId, atPrimary?.keyId);
  assert.equal((await device(MAC, mirror.url))?.pendingKeyId, null);
});

test('(c) `approve` on the primary holds at the mirror: a new device waits there as pending until `devices accept` on the primary and a reconcile', async () => {
  const rootFile = join(f.root, 'gadget.root.json');
  const made = await runCli(['product', 'create', ...f.admin(), '--product', 'gadget', '--key', f.key, '--root-out', rootFile, '--admission', 'approve']);
  assert.equal(made.code, 0, made.stderr);
  assert.equal((await f.publish('1.0.0', { 'bin/g': 'g1\n' }, { product: 'gadget' })).code, 0);
  await replicated('gadget', '1.0.0');
  const MAC = 'aa:00:00:00:0e:03';
  const dir = await f.initAgent('gadget-at-mirror', MAC, { server: mirror.url, product: 'gadget', rootFile });
  const waiting = await runCli(['check', '--dir', dir, '--json', '--force']);
  assert.equal(waiting.code, 3, waiting.stderr);
  assert.match(waiting.stderr, /waits for approval/);
  assert.equal((await device(MAC, mirror.url, 'gadget'))?.status, 'pending');

  const first = (await reconcile()).mirrors.find((x) => x.url === mirror.url);
  assert.match(first?.skippedWhy ?? '', /device pending/);
  const atPrimary = await device(MAC, f.server.url, 'gadget');
  assert.equal(atPrimary?.status, 'pending', 'the primary enrolled it under its own policy');
  assert.equal(atPrimary?.version, null);
  assert.equal((await runCli(['check', '--dir', dir, '--json', '--force'])).code, 3, 'still pending at the mirror');

  assert.equal((await runJson<{ status: string }>(['devices', 'accept', MAC, '--product', 'gadget', ...f.admin(), '--json'])).status, 'accepted');
  await reconcile();
  assert.equal((await device(MAC, mirror.url, 'gadget'))?.status, 'accepted', 'the primary\'s accept reached the mirror');
  assert.equal((await f.check(dir, '--force')).result, 'updated');
  await reconcile();
  const merged = await device(MAC, f.server.url, 'gadget');
  assert.equal(merged?.version, '1.0.0', 'its record is merged now');
  assert.equal(merged?.keyId, atPrimary?.keyId);
});
