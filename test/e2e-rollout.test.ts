/**
 * Staged rollouts (issue 11; docs/design.md "Staged rollouts"): real `patchwire serve` processes
 * (a primary, a mirror), the real CLI (`publish --rollout`, `rollout ...`), real agents
 * (`patchwire check`) and hand-made device checks and reports over real HTTP on 127.0.0.1.
 * The server's clock is moved by a file (test/helpers/server-clock.ts), never waited for.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { ServerClock } from './helpers/server-clock.js';
import { waitFor } from './helpers/wait-for.js';
import { freePort } from './helpers/ports.js';
import { tempPgDatabase } from './helpers/postgres.js';
import { openEvents } from './helpers/event-stream.js';
import { deviceSession } from './helpers/device-session.js';
import { rolloutPlacement } from '../src/protocol/rollout.js';
import { spreadOffsetSeconds } from '../src/agent/schedule.js';
import type { CheckResponse, RolloutView, StatusView } from '../src/protocol/wire.js';

const TOKEN = 'e2e-rollout-token';
const MIRROR_TOKEN = 'e2e-rollout-mirror-token';
const HOUR = 3600_000;

const mac = (i: number): string => `aa:bb:cc:77:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const MACS = Array.from({ length: 80 }, (_, i) => mac(i + 1));

async function fleet(t: TestContext, extraArgs: string[] = []): Promise<{ f: Fleet; clock: ServerClock }> {
  const root = join(process.env.TMPDIR ?? '/tmp', `patchwire-rollout-clock-${randomBytes(4).toString('hex')}`);
  const clock = new ServerClock(root);
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-rollout-', server: { args: ['--device-token-ttl', '1d', ...extraArgs], env: clock.env }, releases: [['1.0.0', { README: 'one' }]] });
  return { f, clock };
}

/** A device check as a current agent sends it (deferred understood, a nonce), over real HTTP. */
async function check(f: Fleet, deviceId: string, version: string | null, o: { server?: string; deferred?: boolean } = {}): Promise<CheckResponse> {
  const server = o.server ?? f.server.url;
  const res = await fetch(`${server}/v1/check`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await f.sessions.headers(server, deviceId, 'acme')) },
    body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', version, nonce: randomBytes(16).toString('hex'), ...(o.deferred === false ? {} : { deferred: true }) }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as CheckResponse;
}

async function report(f: Fleet, deviceId: string, body: Record<string, unknown>): Promise<void> {
  const server = f.server.url;
  const res = await fetch(`${server}/v1/report`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await f.sessions.headers(server, deviceId, 'acme')) },
    body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', ...body }),
  });
  assert.equal(res.status, 200, await res.text());
}

const rollout = async (f: Fleet, action: string, ...flags: string[]): Promise<RolloutView> => {
  const r = await runJson<{ rollout?: RolloutView; rollouts?: RolloutView[] }>(['rollout', action, ...f.admin(), '--product', 'acme', '--json', ...flags]);
  return r.rollout ?? r.rollouts![0]!;
};

const placed = (v: string) => MACS.map((m) => ({ mac: m, p: rolloutPlacement(m, 'acme', v) }));

test('rollout: phases by stable placement, the phase time in the signed answer, pause, resume, advance, --every, abort', async (t) => {
  const { f, clock } = await fleet(t);
  const p = await f.publish('1.1.0', { README: 'one one' }, { extra: ['--rollout', '10%,50%,100%', '--every', '1h'] });
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /staged 10%,50%,100%/);
  const devices = placed('1.1.0');
  const inside10 = devices.filter((d) => d.p < 10);
  const mid = devices.filter((d) => d.p >= 10 && d.p < 50);
  const outside = devices.filter((d) => d.p >= 50);
  assert.ok(inside10.length >= 2 && mid.length >= 10 && outside.length >= 10, `fixture: devices in every phase (${inside10.length}/${mid.length}/${outside.length})`);

  let view = await rollout(f, 'status');
  assert.deepEqual([view.version, view.phases, view.phase, view.percent, view.state, view.every], ['1.1.0', [10, 50, 100], 0, 10, 'active', 3600]);
  const started = Date.parse(view.phaseStartedAt);
  assert.equal(view.nextPhaseAt, new Date(started + HOUR).toISOString());

  // Phase 1: exactly the devices placed under 10% are offered 1.1.0; the others are told when their phase opens.
  for (const d of devices) {
    const a = await check(f, d.mac, '1.0.0');
    if (d.p < 10) {
      assert.equal(a.status, 'update', `${d.mac} at ${d.p}% is inside 10%`);
      assert.equal(a.release!.version, '1.1.0');
    } else {
      assert.equal(a.status, 'deferred', `${d.mac} at ${d.p}% is outside 10%`);
      assert.equal(a.release, null);
      assert.equal(a.latest, '1.1.0');
      const opens = new Date(started + (d.p < 50 ? 1 : 2) * HOUR).toISOString();
      assert.deepEqual({ version: a.rollout!.version, opensAt: a.rollout!.opensAt }, { version: '1.1.0', opensAt: opens });
      // Signed with the rest of the answer: a man in the middle cannot move the wake time.
      assert.deepEqual(a.signed!.signed.rollout, { version: '1.1.0', opensAt: opens });
      assert.equal(a.signed!.signed.status, 'deferred');
    }
  }
  // An agent from before staged rollouts (no `deferred` in its request) is told up-to-date, not a status it would refuse.
  const old = await check(f, outside[0]!.mac, '1.0.0', { deferred: false });
  assert.equal(old.status, 'up-to-date');
  view = await rollout(f, 'status');
  assert.equal(view.counts.offered, inside10.length, 'offered: the registered devices inside the current percent');

  // Pause: an hour passes and nothing moves; a device inside is still offered, one outside is not (and has no phase time).
  view = await rollout(f, 'pause');
  assert.equal(view.state, 'paused');
  await clock.passTime(new Date(started), HOUR + 60_000);
  assert.equal((await check(f, inside10[0]!.mac, '1.0.0')).status, 'update');
  const paused = await check(f, mid[0]!.mac, '1.0.0');
  assert.equal(paused.status, 'deferred');
  assert.equal(paused.rollout!.opensAt, null);
  view = await rollout(f, 'status');
  assert.deepEqual([view.state, view.phase, view.nextPhaseAt], ['paused', 0, null]);

  // Resume: active again, the next phase an hour from the resume. Advance opens it now.
  view = await rollout(f, 'resume');
  assert.equal(view.state, 'active');
  const resumed = Date.parse(view.phaseStartedAt);
  assert.ok(resumed >= started + HOUR, 'the wait counts from the resume');
  view = await rollout(f, 'advance');
  assert.deepEqual([view.phase, view.percent, view.state], [1, 50, 'active']);
  // Stable placement: every device offered at 10% is offered at 50%, with those from 10 to 50%.
  for (const d of [...inside10, ...mid]) assert.equal((await check(f, d.mac, '1.0.0')).status, 'update', `${d.mac} at ${d.p}% inside 50%`);
  for (const d of outside.slice(0, 5)) assert.equal((await check(f, d.mac, '1.0.0')).status, 'deferred');

  // --every: an hour after the advance the last phase opens by itself: complete, every device offered.
  await clock.passTime(new Date(Date.parse(view.phaseStartedAt)), HOUR + 1000);
  for (const d of outside.slice(0, 5)) assert.equal((await check(f, d.mac, '1.0.0')).status, 'update');
  await waitFor(async () => (await rollout(f, 'status')).state === 'complete', { what: 'the background job to write the rollout complete', timeout: 15_000 });
  const done = await runCli(['rollout', 'pause', ...f.admin(), '--product', 'acme']);
  assert.equal(done.code, 2);
  assert.match(done.stderr, /PW_ROLLOUT_STATE/);

  // Abort of the next staged release: nobody else is offered it; a device that applied it keeps it.
  assert.equal((await f.publish('1.2.0', { README: 'one two' }, { extra: ['--rollout', '50%,100%'] })).code, 0);
  const v12 = placed('1.2.0');
  const in12 = v12.find((d) => d.p < 50)!;
  const other12 = v12.filter((d) => d.p < 50)[1]!;
  assert.equal((await check(f, in12.mac, '1.1.0')).status, 'update');
  await report(f, in12.mac, { event: 'applied', version: '1.2.0', previousVersion: '1.1.0' });
  view = await rollout(f, 'abort');
  assert.deepEqual([view.version, view.state, view.percent], ['1.2.0', 'aborted', 0]);
  const kept = await check(f, in12.mac, '1.2.0');
  assert.equal(kept.status, 'up-to-date', 'no downgrade for a device that applied the aborted release');
  assert.equal(kept.release, null);
  const stopped = await check(f, other12.mac, '1.1.0');
  assert.equal(stopped.status, 'deferred');
  assert.deepEqual({ version: stopped.rollout!.version, opensAt: stopped.rollout!.opensAt }, { version: '1.2.0', opensAt: null });
  // A device on 1.0.0 still gets 1.1.0, the highest release not held back.
  const lower = await check(f, other12.mac, '1.0.0');
  assert.equal(lower.status, 'update');
  assert.equal(lower.release!.version, '1.1.0');
  assert.equal(lower.rollout!.version, '1.2.0');
  const again = await runCli(['rollout', 'advance', ...f.admin(), '--product', 'acme']);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /an abort is final.*PW_ROLLOUT_STATE/);
});

test('rollout: without --rollout a release goes to every device; rollout commands say PW_NO_ROLLOUT; bad plans are refused', async (t) => {
  const { f } = await fleet(t);
  const p = await f.publish('1.1.0', { README: 'x' });
  assert.equal(p.code, 0, p.stderr);
  for (const m of MACS.slice(0, 10)) assert.equal((await check(f, m, '1.0.0')).status, 'update');
  const none = await runCli(['rollout', 'advance', ...f.admin(), '--product', 'acme']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no staged rollout.*PW_NO_ROLLOUT/);
  assert.deepEqual(await f.adminGet('/rollouts?product=acme'), { rollouts: [] });
  for (const [flags, re] of [
    [['--rollout', '5%,25%'], /last phase must be 100%/],
    [['--rollout', '25%,5%,100%'], /must go up/],
    [['--rollout', '5%,100%', '--every', 'soon'], /--every 'soon'/],
    [['--every', '1h'], /only apply to a staged rollout/],
  ] as const) {
    const r = await f.publish('1.2.0', { README: 'y' }, { extra: [...flags] });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
  // An action not in the list, over HTTP.
  const res = await fetch(`${f.server.url}/v1/admin/products/acme/rollout/explode`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { code: string }).code, 'PW_BAD_REQUEST');
});

test('rollout: failed and rolled-back reports reaching --halt-at halt it, with a rollout-halted alarm in status, the log and the webhook', async (t) => {
  const hooks: string[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => { hooks.push(body); res.end('ok'); });
  });
  const port = await freePort();
  await new Promise<void>((r) => hook.listen(port, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => hook.close(() => r())));
  const { f } = await fleet(t, ['--alarm-webhook', `http://127.0.0.1:${port}/alarm`]);
  assert.equal((await f.publish('1.1.0', { README: 'bad' }, { extra: ['--rollout', '50%,100%', '--halt-at', '30%', '--min-devices', '5'] })).code, 0);
  const inside = placed('1.1.0').filter((d) => d.p < 50).map((d) => d.mac);
  assert.ok(inside.length >= 6);
  // 3 applied, 1 failed (as the agent words it): 1 of 4 attempts, below --min-devices.
  for (const m of inside.slice(0, 3)) await report(f, m, { event: 'applied', version: '1.1.0', previousVersion: '1.0.0' });
  await report(f, inside[3]!, { event: 'failed', version: '1.0.0', previousVersion: '1.0.0', detail: 'update to 1.1.0 failed in install: disk full' });
  assert.equal((await rollout(f, 'status')).state, 'active');
  // A rolled-back device: 2 failing of 5 attempts = 40% >= 30%: halted.
  await report(f, inside[4]!, { event: 'rolled-back', version: '1.0.0', previousVersion: '1.1.0', detail: 'health check failed' });
  const view = await rollout(f, 'status');
  assert.equal(view.state, 'halted');
  assert.deepEqual(view.counts, { offered: view.counts.offered, attempted: 5, applied: 3, failed: 1, rolledBack: 1 });
  // Halted stands still like paused: a device outside is not offered, one inside still is.
  const outsideMac = placed('1.1.0').find((d) => d.p >= 50)!.mac;
  assert.equal((await check(f, outsideMac, '1.0.0')).status, 'deferred');
  assert.equal((await check(f, inside[5]!, '1.0.0')).status, 'update');
  const status = await f.adminGet<StatusView>('/status');
  const alarm = status.alarms.find((a) => a.kind === 'rollout-halted');
  assert.deepEqual(alarm && { ...alarm, since: '' }, { kind: 'rollout-halted', product: 'acme', channel: 'stable', version: '1.1.0', attempted: 5, failed: 1, rolledBack: 1, haltAt: 30, since: '' });
  await waitFor(() => hooks.some((h) => h.includes('rollout-halted')), { what: 'the webhook to hear of the halt', timeout: 10_000 });
  const posted = JSON.parse(hooks.find((h) => h.includes('rollout-halted'))!) as { alarm: { kind: string }; message: string };
  assert.equal(posted.alarm.kind, 'rollout-halted');
  assert.match(posted.message, /1 failed and 1 rolled back \(2 devices\) of 5/);
  assert.match(f.server.output(), /rollout-halted: acme\/stable 1\.1\.0 halted itself/);
  const st = await runCli(['status', ...f.admin()]);
  assert.match(st.stdout, /rollout-halted acme\/stable 1\.1\.0 .*1 failed and 1 rolled back of 5 attempts reached 30%/);
  // Resume is the operator's call; the alarm goes with the halt.
  assert.equal((await rollout(f, 'resume')).state, 'active');
  assert.equal((await f.adminGet<StatusView>('/status')).alarms.filter((a) => a.kind === 'rollout-halted').length, 0);
});

test('rollout: a real agent outside the phase is told when it opens, sleeps until then, and applies the release once it is inside', async (t) => {
  const { f, clock } = await fleet(t);
  assert.equal((await f.publish('1.1.0', { README: 'one one' }, { extra: ['--rollout', '10%,100%', '--every', '30m'] })).code, 0);
  const devices = placed('1.1.0');
  const inMac = devices.find((d) => d.p < 10)!.mac;
  const outMac = devices.find((d) => d.p >= 10)!.mac;
  const inDir = await f.initAgent('in', inMac, { extra: ['--interval', '1d'] });
  const outDir = await f.initAgent('out', outMac, { extra: ['--interval', '1d'] });
  // The first check: the device inside goes straight to 1.1.0; the one outside gets 1.0.0, the highest release not held back.
  const a = await f.check(inDir);
  assert.deepEqual([a.result, a.version], ['updated', '1.1.0']);
  const b = await f.check(outDir);
  assert.deepEqual([b.result, b.version], ['updated', '1.0.0']);
  const c = await f.check(outDir, '--force');
  assert.equal(c.result, 'deferred');
  const view = await rollout(f, 'status');
  const opens = Date.parse(view.phaseStartedAt) + 30 * 60_000;
  assert.deepEqual(c.deferred, { version: '1.1.0', opensAt: new Date(opens).toISOString() });
  // Its next check: the phase time plus its own offset in the wave's spread (a tenth of --every), not a day.
  const spread = 180;
  assert.equal(c.nextCheckAt, new Date(opens + spreadOffsetSeconds(outMac, spread) * 1000).toISOString());
  // The phase opens (server clock): the agent's next check applies 1.1.0.
  await clock.passTime(new Date(opens), 1000);
  const d = await f.check(outDir, '--force');
  assert.deepEqual([d.result, d.version], ['updated', '1.1.0']);
});

test('rollout: a mirror replicates the rollout and gives a device the same answer as the primary', async (t) => {
  const mPort = await freePort();
  const mUrl = `http://127.0.0.1:${mPort}`;
  const { f } = await fleet(t, ['--mirror-token', MIRROR_TOKEN, '--mirror-allow', mUrl]);
  assert.equal((await f.publish('1.1.0', { README: 'one one' }, { extra: ['--rollout', '20%,100%', '--every', '1h'] })).code, 0);
  const mirror = await f.serve('mirror', { args: ['--port', String(mPort), '--public-url', mUrl, '--upstream', f.server.url, '--upstream-token', MIRROR_TOKEN, '--sync-interval', '1s'] });
  await waitFor(async () => (await f.adminGet<{ rollouts: RolloutView[] }>('/rollouts?product=acme', mirror.url).catch(() => ({ rollouts: [] }))).rollouts.length === 1,
    { what: 'the mirror to replicate the rollout', timeout: 20_000 });
  const same = async () => {
    for (const d of placed('1.1.0').slice(0, 20)) {
      const p = await check(f, d.mac, '1.0.0');
      const m = await check(f, d.mac, '1.0.0', { server: mirror.url });
      assert.equal(m.status, p.status, `${d.mac} at ${d.p}%`);
      assert.deepEqual(m.rollout ?? null, p.rollout ?? null);
      assert.equal(m.signed, undefined, 'a mirror never signs');
    }
  };
  await same();
  // A pause on the primary reaches the mirror with its next pass.
  await rollout(f, 'pause');
  await waitFor(async () => (await f.adminGet<{ rollouts: RolloutView[] }>('/rollouts?product=acme', mirror.url)).rollouts[0]?.state === 'paused', { what: 'the pause to replicate', timeout: 20_000 });
  await same();
  // A real agent behind the mirror outside the phase: the unsigned `deferred` is confirmed through TUF (the publisher staged 1.1.0).
  // A device the hand-made checks above did not use (one MAC, one key).
  const outMac = placed('1.1.0').slice(20).find((d) => d.p >= 20)!.mac;
  const dir = await f.initAgent('behind', outMac, { server: mirror.url });
  const first = await f.check(dir);
  assert.deepEqual([first.result, first.version], ['updated', '1.0.0']);
  const deferred = await f.check(dir, '--force');
  assert.equal(deferred.result, 'deferred');
  assert.deepEqual(deferred.deferred, { version: '1.1.0', opensAt: null });
});

test('rollout: several processes on one PostgreSQL database: a change through one reaches the other\'s checks within a second or so', async (t) => {
  const db = await tempPgDatabase(t);
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-rollout-pg-', server: { name: 'a', args: ['--db', db] }, releases: [['1.0.0', { README: 'one' }]] });
  const a = f.server;
  const b = await f.serve('b', { args: ['--db', db] });
  assert.equal((await f.publish('1.1.0', { README: 'one one' }, { server: a.url, extra: ['--rollout', '10%,100%', '--every', '1h'] })).code, 0);
  const devices = placed('1.1.0');
  const out = devices.find((d) => d.p >= 10)!.mac;
  const inside = devices.find((d) => d.p < 10)!.mac;
  const hint = async (server: string) => (await check(f, out, '1.0.0', { server })).rollout?.opensAt;
  await waitFor(async () => typeof (await hint(b.url)) === 'string', { what: 'B to hold 1.1.0 back with a phase time', timeout: 5000 });
  assert.equal((await check(f, inside, '1.0.0', { server: b.url })).status, 'update');
  // Pause through B: A's checks know at once (the catalog notification), not after --cache-reload.
  assert.equal((await runCli(['rollout', 'pause', ...f.admin(b.url), '--product', 'acme'])).code, 0);
  await waitFor(async () => (await hint(a.url)) === null, { what: 'A to see the pause made through B', timeout: 3000 });
  // Advance through A (the last phase: complete): B offers 1.1.0 to the device outside.
  assert.equal((await runCli(['rollout', 'advance', ...f.admin(a.url), '--product', 'acme'])).code, 0);
  await waitFor(async () => (await check(f, out, '1.0.0', { server: b.url })).status === 'update', { what: 'B to see the advance made through A', timeout: 3000 });
  const views = await f.adminGet<{ rollouts: RolloutView[] }>('/rollouts?product=acme', b.url);
  assert.equal(views.rollouts[0]!.state, 'complete');
});

test('rollout: push announces a staged release only to the devices its phase holds', async (t) => {
  const { f } = await fleet(t);
  const devices = placed('1.1.0');
  const inside = devices.find((d) => d.p < 10)!.mac;
  const out = devices.find((d) => d.p >= 10)!.mac;
  const open = async (m: string) => {
    const s = await deviceSession(f.server.url, m, 'acme');
    const stream = await openEvents(f.server.url, { deviceId: m, product: 'acme' }, s.token);
    t.after(() => stream.close());
    await stream.next('hello');
    return stream;
  };
  const [a, b] = [await open(inside), await open(out)];
  assert.equal((await f.publish('1.1.0', { README: 'one one' }, { extra: ['--rollout', '10%,100%'] })).code, 0);
  const told = await a.next('release');
  assert.equal(told.version, '1.1.0');
  // The device outside is not told (it would check for a release it may not have yet); a release for everyone reaches both.
  assert.equal((await f.publish('1.2.0', { README: 'one two' })).code, 0);
  assert.equal((await b.next('release')).version, '1.2.0');
  assert.deepEqual(b.events.filter((e) => e.event === 'release').map((e) => e.data.version), ['1.2.0']);
});
