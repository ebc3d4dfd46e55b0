/**
 * Staged rollouts under attack (issue 11; docs/security.md "Staged rollouts under attack"): a real
 * `patchwire serve`, the real CLI, hand-made device checks and reports over real HTTP on 127.0.0.1.
 * The attacker holds device tokens (devices it enrolled under `auto`, or devices it owns) and
 * speaks the device protocol; it does not hold the admin token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { runJson } from './helpers/cli.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { rolloutPlacement } from '../src/protocol/rollout.js';
import type { DeviceDetail, RolloutView } from '../src/protocol/wire.js';

const TOKEN = 'e2e-rollout-attacks-token';
const mac = (i: number): string => `aa:bb:cc:78:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const MACS = Array.from({ length: 80 }, (_, i) => mac(i + 1));

async function post(f: Fleet, path: string, deviceId: string, body: Record<string, unknown>, as = deviceId): Promise<{ status: number; body: { code?: string; message?: string; status?: string } }> {
  const server = f.server.url;
  const res = await fetch(`${server}/v1/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await f.sessions.headers(server, as, 'acme')) },
    body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', ...body }),
  });
  return { status: res.status, body: (await res.json()) as { code?: string; message?: string } };
}

const rollout = async (f: Fleet, action: string): Promise<RolloutView> => {
  const r = await runJson<{ rollout?: RolloutView; rollouts?: RolloutView[] }>(['rollout', action, ...f.admin(), '--product', 'acme', '--json']);
  return r.rollout ?? r.rollouts![0]!;
};

test('devices outside the phase cannot halt a rollout, nor hide failures with invented applied reports: their reports of a release never offered to them are refused (PW_NOT_OFFERED) and change nothing', async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-rollout-attacks-', server: { args: ['--device-token-ttl', '1d'] }, releases: [['1.0.0', { README: 'one' }]] });
  assert.equal((await f.publish('1.1.0', { README: 'bad' }, { extra: ['--rollout', '10%,100%', '--halt-at', '30%', '--min-devices', '5'] })).code, 0);
  const placed = MACS.map((m) => ({ mac: m, p: rolloutPlacement(m, 'acme', '1.1.0') }));
  const outside = placed.filter((d) => d.p >= 10).map((d) => d.mac);
  const inside = placed.filter((d) => d.p < 10).map((d) => d.mac);
  assert.ok(outside.length >= 8 && inside.length >= 2, `fixture: ${inside.length} inside, ${outside.length} outside`);

  // Each attacker device checks in (it is told the release is held back), then lies about it.
  for (const m of outside.slice(0, 8)) assert.equal((await post(f, 'check', m, { version: '1.0.0', nonce: randomBytes(16).toString('hex'), deferred: true })).body.status, 'deferred');
  const lies: Array<Record<string, unknown>> = [
    // Failures, as the current agent words them (toVersion) and as older agents did (the detail only).
    { event: 'failed', version: '1.0.0', previousVersion: '1.0.0', toVersion: '1.1.0', state: 'health', detail: 'update to 1.1.0 failed in health: bricked' },
    { event: 'failed', version: '1.0.0', previousVersion: '1.0.0', detail: 'update to 1.1.0 failed in install: disk full' },
    { event: 'failed', version: '1.0.0', previousVersion: '1.0.0', detail: 'first install: update to 1.1.0 failed in download: reset' },
    { event: 'rolled-back', version: '1.0.0', previousVersion: '1.1.0', detail: 'health check failed' },
    { event: 'rolled-back', version: '1.0.0', previousVersion: '1.0.0', toVersion: '1.1.0' },
    // Invented successes would lower the failure rate real devices reach.
    { event: 'applied', version: '1.1.0', previousVersion: '1.0.0' },
    { event: 'installing', version: '1.0.0', previousVersion: '1.0.0', toVersion: '1.1.0' },
  ];
  for (const [i, m] of outside.slice(0, 8).entries()) {
    for (const lie of i === 7 ? lies : [lies[i % lies.length]!]) {
      const res = await post(f, 'report', m, lie);
      assert.equal(res.status, 409, `${m} ${JSON.stringify(lie)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'PW_NOT_OFFERED');
      assert.match(res.body.message!, /1\.1\.0 was never offered to device .*staged rollout is active at 10%.*a device reports only an update its check offered/);
    }
  }
  let view = await rollout(f, 'status');
  assert.equal(view.state, 'active', 'not halted by devices the rollout never let in');
  assert.deepEqual(view.counts, { offered: view.counts.offered, attempted: 0, applied: 0, failed: 0, rolledBack: 0 });
  // Nothing of the refused reports was stored: no history, no applied version.
  const shown = await f.adminGet<DeviceDetail>(`/products/acme/devices/${outside[7]}`);
  assert.deepEqual(shown.history, []);
  assert.equal(shown.device.version, null);
  // A device's token does not speak for another device (the attacker cannot borrow an id that is inside).
  const borrowed = await post(f, 'report', inside[0]!, lies[0]!, outside[0]);
  assert.equal(borrowed.status, 401);
  assert.equal(borrowed.body.code, 'PW_DEVICE_TOKEN');
  // Reports about the release the device does run are untouched by the rule.
  assert.equal((await post(f, 'report', outside[0]!, { event: 'applied', version: '1.0.0', previousVersion: null })).status, 200);

  // A device inside the phase reports as before, and is counted.
  const real = await post(f, 'report', inside[0]!, lies[0]!);
  assert.equal(real.status, 200, JSON.stringify(real.body));
  view = await rollout(f, 'status');
  assert.deepEqual([view.state, view.counts.attempted, view.counts.failed], ['active', 1, 1]);

  // Once the phase holds every device (advance to 100%: complete), their reports are accepted.
  assert.equal((await rollout(f, 'advance')).state, 'complete');
  assert.equal((await post(f, 'report', outside[1]!, { event: 'applied', version: '1.1.0', previousVersion: '1.0.0' })).status, 200);

  // An aborted rollout keeps its phase: a device that was inside may still report how its update ended.
  assert.equal((await f.publish('1.2.0', { README: 'two' }, { extra: ['--rollout', '10%,100%'] })).code, 0);
  const in12 = MACS.find((m) => rolloutPlacement(m, 'acme', '1.2.0') < 10)!;
  const out12 = MACS.find((m) => rolloutPlacement(m, 'acme', '1.2.0') >= 10)!;
  assert.equal((await rollout(f, 'abort')).state, 'aborted');
  const fail12 = { event: 'failed', version: '1.1.0', previousVersion: '1.1.0', toVersion: '1.2.0', detail: 'update to 1.2.0 failed in install: aborted' };
  assert.equal((await post(f, 'report', in12, fail12)).status, 200);
  assert.equal((await post(f, 'report', out12, fail12)).body.code, 'PW_NOT_OFFERED');
});
