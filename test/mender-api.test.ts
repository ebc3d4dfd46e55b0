/**
 * The Mender device API against a real `patchwire serve`, spoken by a small client made here
 * (the real one is in e2e-mender.test.ts): approve admission, 204 without --mender-dest, the v1
 * fallbacks, repeated statuses, the failure log, the download's Range and ETag, and bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { runCli, runJson } from './helpers/cli.js';
import { startFleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';
import type { DeviceDetail } from '../src/protocol/wire.js';
import { rolloutPlacement } from '../src/protocol/rollout.js';
import { freePort } from './helpers/ports.js';

const TOKEN = 'mender-api-admin-token';
const A = '02:00:00:00:4e:01';

function menderClient(server: string, mac: string) {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let token = '';
  const call = async (method: string, path: string, body?: unknown, auth = true) => {
    const res = await fetch(`${server}/api/devices${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  return {
    async auth(): Promise<number> {
      const body = Buffer.from(JSON.stringify({ id_data: JSON.stringify({ mac }), tenant_token: '', pubkey: keys.publicKey.export({ type: 'spki', format: 'pem' }) }));
      const sig = sign('sha256', body, { key: keys.privateKey, padding: constants.RSA_PKCS1_PADDING }).toString('base64');
      const res = await fetch(`${server}/api/devices/v1/authentication/auth_requests`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-men-signature': sig, authorization: 'Bearer' }, body });
      if (res.status === 200) token = await res.text();
      return res.status;
    },
    inventory: (deviceType = 'acme') => call('PUT', '/v1/inventory/device/attributes', [{ name: 'device_type', value: deviceType }, { name: 'artifact_name', value: 'factory' }]),
    next: (artifactName: string) => call('POST', '/v2/deployments/device/deployments/next', { device_provides: { artifact_name: artifactName, device_type: 'acme' }, update_control_map: true }),
    nextV1Get: (artifactName: string) => call('GET', `/v1/deployments/device/deployments/next?artifact_name=${artifactName}&device_type=acme`),
    status: (id: string, status: string) => call('PUT', `/v1/deployments/device/deployments/${encodeURIComponent(id)}/status`, { status }),
    log: (id: string, messages: unknown[]) => call('PUT', `/v1/deployments/device/deployments/${encodeURIComponent(id)}/log`, { messages }),
  };
}

test('Mender API: approve admission, 204 without a folder, a deployment, statuses once each, a failure with its log, the download', { timeout: 300_000 }, async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-mender-api-', releases: [['1.0.0', { VERSION: '1.0.0' }]] });
  const show = () => runJson<DeviceDetail>(['devices', 'show', A, ...f.admin(), '--product', 'acme', '--json']);
  assert.equal((await runCli(['product', 'admission', 'acme', 'approve', ...f.admin()])).code, 0);

  const d = menderClient(f.server.url, A);
  assert.equal(await d.auth(), 200, 'the auth names no product: a token for the MAC and key');
  const pending = await d.inventory();
  assert.equal(pending.status, 401, pending.text);
  assert.equal(pending.json().code, 'PW_MENDER_DEVICE');
  assert.match(String(pending.json().message), /waits for approval.*patchwire devices accept 02:00:00:00:4e:01 --product acme/);
  assert.equal((await show()).device.status, 'pending');
  const accepted = await runCli(['devices', 'accept', A, ...f.admin(), '--product', 'acme']);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.equal((await d.inventory()).status, 200);

  // No --mender-dest: no update offered, and the server says why.
  assert.equal((await d.next('factory')).status, 204);
  await waitFor(() => /acme has no --mender-dest/.test(f.server.output()), { what: 'the server to log why there is no update', timeout: 30_000 });
  const badDest = await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/opt/a b']);
  assert.equal(badDest.code, 2, badDest.stdout + badDest.stderr);
  assert.match(badDest.stdout + badDest.stderr, /holds a space/);
  assert.equal((await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/opt/acme'])).code, 0);

  const next = await d.next('factory');
  assert.equal(next.status, 200, next.text);
  const dep = next.json() as { id: string; artifact: { artifact_name: string; source: { uri: string }; device_types_compatible: string[] } };
  assert.equal(dep.id, 'acme@1.0.0');
  assert.equal(dep.artifact.artifact_name, '1.0.0');
  assert.deepEqual(dep.artifact.device_types_compatible, ['acme']);
  // The v1 GET fallback gives the same deployment; a device at the latest gets 204.
  assert.equal((await d.nextV1Get('factory')).json().id, 'acme@1.0.0');
  assert.equal((await d.next('1.0.0')).status, 204);

  // The download: no token, Content-Length, ETag = hash, Range.
  const whole = await fetch(dep.artifact.source.uri);
  assert.equal(whole.status, 200);
  const bytes = Buffer.from(await whole.arrayBuffer());
  assert.ok(bytes.length >= 4096);
  assert.equal(whole.headers.get('content-length'), String(bytes.length));
  const sha = /([0-9a-f]{64})\.mender$/.exec(dep.artifact.source.uri)![1]!;
  assert.equal(whole.headers.get('etag'), `"${sha}"`);
  const part = await fetch(dep.artifact.source.uri, { headers: { range: 'bytes=10-19' } });
  assert.equal(part.status, 206);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(10, 20));
  assert.equal((await fetch(dep.artifact.source.uri.replace(sha, '0'.repeat(64)))).status, 404);
  // The same release again: the same bytes (built once, then served from the artifact store).
  const again = (await d.next('factory')).json() as typeof dep;
  assert.equal(again.artifact.source.uri, dep.artifact.source.uri);
  assert.ok(Buffer.from(await (await fetch(again.artifact.source.uri)).arrayBuffer()).equals(bytes));

  // Statuses: repeated ones are recorded once; success is an applied report.
  for (const s of ['downloading', 'downloading', 'installing', 'installing', 'rebooting', 'success', 'success']) assert.equal((await d.status(dep.id, s)).status, 204, s);
  const after = await show();
  assert.equal(after.device.version, '1.0.0');
  assert.deepEqual(after.history.map((h) => `${h.event} ${h.version}`), ['applied 1.0.0', 'installing 1.0.0', 'downloading 1.0.0']);

  // A failure, then its log: one failed report holding the log's last lines; nothing applied.
  assert.equal((await f.publish('1.1.0', { VERSION: '1.1.0' })).code, 0);
  const dep2 = (await d.next('1.0.0')).json() as { id: string };
  assert.equal(dep2.id, 'acme@1.1.0');
  assert.equal((await d.status(dep2.id, 'downloading')).status, 204);
  assert.equal((await d.status(dep2.id, 'failure')).status, 204);
  const lines = Array.from({ length: 200 }, (_, i) => ({ level: 'error', message: `line ${i} of the client log`, timestamp: '2026-01-01T00:00:00Z' }));
  assert.equal((await d.log(dep2.id, lines)).status, 204);
  const failed = await show();
  assert.equal(failed.device.version, '1.0.0', 'nothing applied');
  const report = failed.history[0]!;
  assert.equal(report.event, 'failed');
  assert.equal(report.version, '1.1.0');
  assert.match(report.error ?? '', /^update to 1\.1\.0 failed \(Mender client\): \.\.\..*error: line 199 of the client log$/s);
  assert.ok((report.error ?? '').length <= 1000);

  // Bad input: a clear error, nothing recorded.
  const count = (await show()).history.length;
  assert.equal((await d.status(dep2.id, 'exploded')).status, 400);
  assert.equal((await d.status('no-such-deployment', 'success')).status, 404);
  assert.equal((await d.inventory('')).status, 400);
  const unknown = await d.inventory('nope');
  assert.equal(unknown.status, 404, unknown.text);
  assert.equal((await show()).history.length, count);

  // Rejected: every call is 401 until accepted again.
  assert.equal((await runCli(['devices', 'reject', A, ...f.admin(), '--product', 'acme'])).code, 0);
  assert.equal((await d.next('1.0.0')).status, 401);
});

test('Mender API: a deployment whose rollout is aborted, or whose release is yanked, answers 409 to its progress; the client\'s failure is recorded; nothing is offered again', { timeout: 300_000 }, async (t) => {
  const B = '02:00:00:00:4e:02';
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-mender-abort-', releases: [['1.0.0', { VERSION: '1.0.0' }]] });
  assert.equal((await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/opt/acme'])).code, 0);
  const show = () => runJson<DeviceDetail>(['devices', 'show', B, ...f.admin(), '--product', 'acme', '--json']);
  const d = menderClient(f.server.url, B);
  assert.equal(await d.auth(), 200);
  const first = (await d.next('factory')).json() as { id: string };
  for (const s of ['downloading', 'installing', 'success']) assert.equal((await d.status(first.id, s)).status, 204, s);

  // 1.1.0 staged: its first phase holds this device (placement is a pure function of MAC, product, version).
  const inside = Math.min(99, Math.floor(rolloutPlacement(B, 'acme', '1.1.0')) + 1);
  const staged = await f.publish('1.1.0', { VERSION: '1.1.0' }, { extra: ['--rollout', `${inside}%,100%`, '--every', '1h'] });
  assert.equal(staged.code, 0, staged.stderr);
  const dep = (await d.next('1.0.0')).json() as { id: string };
  assert.equal(dep.id, 'acme@1.1.0');
  assert.equal((await d.status(dep.id, 'downloading')).status, 204);
  const abort = await runCli(['rollout', 'abort', ...f.admin(), '--product', 'acme']);
  assert.equal(abort.code, 0, abort.stderr);
  const refused = await d.status(dep.id, 'installing');
  assert.equal(refused.status, 409, refused.text);
  assert.equal(refused.json().code, 'PW_MENDER_ABORTED');
  assert.match(String(refused.json().message), /staged rollout of 1\.1\.0 was aborted/);
  // What the client does next (app/state.go: the fatal status error goes to a failure report, then its log).
  assert.equal((await d.status(dep.id, 'failure')).status, 204);
  assert.equal((await d.log(dep.id, [{ level: 'warning', message: 'Status report rejected, deployment aborted at the backend' }])).status, 204);
  const afterAbort = await show();
  assert.equal(afterAbort.device.version, '1.0.0', 'nothing applied');
  assert.deepEqual(afterAbort.history.slice(0, 2).map((h) => `${h.event} ${h.version}`), ['failed 1.1.0', 'downloading 1.1.0'], 'no installing report was recorded for the refused status');
  assert.match(afterAbort.history[0]!.error ?? '', /^update to 1\.1\.0 failed \(Mender client\): warning: Status report rejected, deployment aborted at the backend$/);
  assert.equal((await d.next('1.0.0')).status, 204, 'an aborted rollout is not offered again');

  // A yanked release: the same 409 (and final statuses are still recorded as they come).
  assert.equal((await f.publish('1.2.0', { VERSION: '1.2.0' })).code, 0);
  const dep2 = (await d.next('1.0.0')).json() as { id: string };
  assert.equal(dep2.id, 'acme@1.2.0');
  assert.equal((await d.status(dep2.id, 'downloading')).status, 204);
  const yank = await runCli(['release', 'yank', ...f.admin(), '--product', 'acme', '--version', '1.2.0']);
  assert.equal(yank.code, 0, yank.stderr);
  const yanked = await d.status(dep2.id, 'installing');
  assert.equal(yanked.status, 409, yanked.text);
  assert.match(String(yanked.json().message), /release 1\.2\.0 was yanked/);
  assert.equal((await d.next('1.0.0')).status, 204, 'nothing left to offer: 1.2.0 yanked, 1.1.0 aborted');
});

test('Mender and hawkBit devices reach the mirrors\' registries when the primary consolidates (their keys stay on the primary)', { timeout: 300_000 }, async (t) => {
  const MT = 'mender-mirror-token';
  const M = '02:00:00:00:4e:03';
  const H = '02:00:00:00:4e:04';
  const port = await freePort();
  const mirrorUrl = `http://127.0.0.1:${port}`;
  const f = await startFleet(t, {
    token: TOKEN, prefix: 'patchwire-mender-mirror-', releases: [['1.0.0', { VERSION: '1.0.0' }]],
    server: { name: 'primary', args: ['--mirror-token', MT, '--mirror-allow', mirrorUrl, '--reconcile-interval', '1h'] },
  });
  assert.equal((await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/opt/acme'])).code, 0);
  // A Mender device at 1.0.0 (bound to its RSA key), and a hawkBit device named by a TargetToken (no key).
  const d = menderClient(f.server.url, M);
  assert.equal(await d.auth(), 200);
  const dep = (await d.next('factory')).json() as { id: string };
  for (const s of ['downloading', 'installing', 'success']) assert.equal((await d.status(dep.id, s)).status, 204, s);
  assert.equal((await runCli(['devices', 'token', ...f.admin(), '--product', 'acme', '--device', H])).code, 0);
  await waitFor(async () => (await f.devices()).length === 2, { what: 'both devices in the primary\'s registry' });

  const mirror = await f.serve('mirror', { token: 'mender-mirror-admin', args: ['--port', String(port), '--public-url', mirrorUrl, '--upstream', f.server.url, '--upstream-token', MT, '--sync-interval', '1s'] });
  await waitFor(async () => (await f.releases({ server: mirror.url })).length === 1, { what: 'the mirror to replicate 1.0.0' });
  const r = await runCli(['reconcile', ...f.admin(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const at = (await f.devices(mirror.url)).map((v) => `${v.deviceId} ${v.version ?? 'none'}`).sort();
  assert.deepEqual(at, [`${M} 1.0.0`, `${H} none`], `the mirror lists both (reconcile: ${r.stdout})`);
});
