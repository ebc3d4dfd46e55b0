/**
 * Attacks on the event stream (GET /v1/events; docs/security.md, "Push"): real `patchwire serve`
 * and `patchwire agent` processes. A token that runs out while its stream is open, a device
 * rejected while its stream is open, and thousands of streams opened and dropped.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { startAgent } from './helpers/agent-process.js';
import { currentLink } from './helpers/files.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';
import { deviceSession, authRaw, authBody } from './helpers/device-session.js';
import { openEvents } from './helpers/event-stream.js';
import { ServerClock } from './helpers/server-clock.js';
import { eventsUrl } from '../src/protocol/urls.js';

const TOKEN = 'e2e-push-attacks-token';

async function fleetWithClock(t: TestContext, args: string[] = []): Promise<{ f: Fleet; clock: ServerClock }> {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-push-attacks-', releases: [['1.0.0', { README: 'one' }]] });
  const clock = new ServerClock(join(f.root, 'clock-offset'));
  await f.server.stop();
  f.server = await f.serve('server', { args: ['--device-token-ttl', '1m', ...args], env: clock.env });
  return { f, clock };
}

test('push: a token that runs out while its stream is open ends the stream (bye token-expired), and cannot open another', async (t) => {
  const { f, clock } = await fleetWithClock(t);
  const q = { deviceId: 'aa:bb:cc:30:00:01', product: 'acme' };
  const authAt = new Date(clock.now());
  const s = await deviceSession(f.server.url, q.deviceId);
  // The server's clock moves 55 s on: the 1 min token has 5 s left when the stream opens.
  await clock.passTime(authAt, 55_000);
  const stream = await openEvents(f.server.url, q, s.token);
  t.after(() => stream.close());
  assert.equal(stream.status, 200);
  const hello = await stream.next('hello');
  const expiresAt = Date.parse(String(hello.expiresAt));
  assert.ok(expiresAt - authAt.getTime() >= 59_000 && expiresAt - authAt.getTime() <= 61_000, `the stream names the token's end: ${String(hello.expiresAt)}`);
  assert.deepEqual(await stream.next('bye', 1, 20_000), { reason: 'token-expired' });
  await stream.ended;
  const again = await openEvents(f.server.url, q, s.token);
  assert.equal(again.status, 401);
  assert.equal(again.refusal?.code, 'PW_DEVICE_TOKEN');
  assert.match(again.refusal?.message ?? '', /expired/);
});

test('push: a stream outlives no token when the server\'s clock steps forward; the agent re-authenticates, reconnects and still applies a release within seconds', async (t) => {
  const { f, clock } = await fleetWithClock(t, ['--push-heartbeat', '1s']);
  const dir = await f.initAgent('a', 'aa:bb:cc:30:00:02');
  const agent = startAgent(t, dir);
  const out = agent.output;
  const opened = () => out().match(/push: event stream open/g)?.length ?? 0;
  await waitFor(async () => (await currentLink(dir)) === join('versions', '1.0.0') && opened() >= 1, { what: 'the agent to apply 1.0.0 and open its stream', timeout: 20_000, detail: out });
  // Past the 1 min token's end by the server's clock, at once: the next heartbeat ends the stream.
  await clock.passTime(new Date(), 61_000);
  await waitFor(() => /push: the stream ended \(token-expired\)/.test(out()), { what: 'the stream to end at the token\'s end', timeout: 10_000, detail: out });
  // The agent's cached token is refused once (401, dropped), then it authenticates anew.
  await waitFor(() => opened() >= 2, { what: 'the agent to reconnect with a new token', timeout: 30_000, detail: out });
  const p = await f.publish('1.1.0', { README: 'one one' });
  assert.equal(p.code, 0, p.stderr);
  await waitFor(async () => (await currentLink(dir)) === join('versions', '1.1.0'), { what: 'the agent (1 h interval) to apply 1.1.0 through the new stream', timeout: 20_000, detail: out });
});

test('push: a device rejected while its stream is open loses the stream at once and cannot open another', async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-push-attacks-', releases: [['1.0.0', { README: 'one' }]] });
  const q = { deviceId: 'aa:bb:cc:30:00:03', product: 'acme' };
  const s = await deviceSession(f.server.url, q.deviceId);
  const stream = await openEvents(f.server.url, q, s.token);
  t.after(() => stream.close());
  await stream.next('hello');
  const r = await runCli(['devices', 'reject', q.deviceId, '--product', 'acme', ...f.admin()]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await stream.next('bye', 1, 5_000), { reason: 'token-expired' });
  await stream.ended;
  const again = await openEvents(f.server.url, q, s.token);
  assert.equal(again.status, 401);
  assert.equal(again.refusal?.code, 'PW_DEVICE_TOKEN');
  // Nor does a fresh authentication with the device's key give it a token to open one with.
  const auth = await authRaw(f.server.url, authBody(q.deviceId, 'acme', 'stable', s.key));
  assert.notEqual(auth.status, 200);
});

test('push: 2,000 streams opened and dropped (before and after their headers) leave every --max-streams slot free', async (t) => {
  const MAX = 20;
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-push-attacks-', releases: [['1.0.0', { README: 'one' }]], server: { args: ['--max-streams', String(MAX)] } });
  const macs = Array.from({ length: MAX + 1 }, (_, i) => `aa:bb:cc:31:00:${i.toString(16).padStart(2, '0')}`);
  const sessions = await Promise.all(macs.map((m) => deviceSession(f.server.url, m)));
  // One stream per device at a time; half the rounds hang up as soon as the request is written,
  // while the server is still checking the token, half once the stream's headers came.
  const openAndDrop = (i: number, early: boolean) => new Promise<void>((resolve) => {
    const url = eventsUrl(f.server.url, { deviceId: macs[i]!, product: 'acme', channel: 'stable' });
    const req = request(url, { headers: { authorization: `Bearer ${sessions[i]!.token}` } }, (res) => {
      res.destroy();
      req.destroy();
    });
    req.on('error', () => {});
    req.on('close', () => resolve());
    req.end(() => { if (early) req.destroy(); });
  });
  for (let round = 0; round < 100; round++) {
    await Promise.all(Array.from({ length: MAX }, (_, i) => openAndDrop(i, round % 2 === 0)));
  }
  // Every slot is free again at once (the default heartbeat, 25 s, has not run).
  const streams = await Promise.all(Array.from({ length: MAX }, (_, i) => openEvents(f.server.url, { deviceId: macs[i]!, product: 'acme' }, sessions[i]!.token)));
  t.after(() => { for (const s of streams) s.close(); });
  assert.deepEqual(streams.map((s) => s.status), Array(MAX).fill(200));
  const over = await openEvents(f.server.url, { deviceId: macs[MAX]!, product: 'acme' }, sessions[MAX]!.token);
  assert.equal(over.status, 503);
  assert.equal(over.refusal?.code, 'PW_TOO_MANY_STREAMS');
  // And the server still answers checks.
  const check = await f.rawCheck('aa:bb:cc:31:01:00', null);
  assert.equal(check.body.latest, '1.0.0');
});
