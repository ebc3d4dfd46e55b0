/**
 * Push (docs/design.md, "Push and pull"; docs/protocol.md, "GET /v1/events"): real `patchwire
 * serve` processes, real `patchwire agent` processes with a one-hour interval, so only the event
 * stream can make them check within seconds.
 */
import { test, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { startAgent, type AgentProcess } from './helpers/agent-process.js';
import { currentLink } from './helpers/files.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';
import { freePort } from './helpers/ports.js';
import { deviceSession } from './helpers/device-session.js';
import { openEvents } from './helpers/event-stream.js';
import { tempPgDatabase } from './helpers/postgres.js';
import { tempDir } from './helpers/temp-dir.js';

const TOKEN = 'e2e-push-token';

const suite = Cleanup.forSuite();
let template: Fleet;
before(async () => {
  template = await startFleet(suite, {
    token: TOKEN,
    prefix: 'patchwire-push-',
    releases: [['1.0.0', { README: 'one' }]],
  });
});

const fleet = (t: TestContext): Promise<Fleet> => template.clone(t);

const installed = (dir: string, v: string, agent: AgentProcess, timeout: number) =>
  waitFor(async () => (await currentLink(dir)) === join('versions', v), { what: `the agent to apply ${v}`, timeout, detail: () => `agent output:\n${agent.output()}` });

const STREAM_OPEN = /push: event stream open/;

test('push: an agent with a 1 h interval applies a release published on its server within seconds', async (t) => {
  const f = await fleet(t);
  const dir = await f.initAgent('a', 'aa:bb:cc:10:00:01');
  const agent = startAgent(t, dir);
  await installed(dir, '1.0.0', agent, 20_000);
  await agent.said(STREAM_OPEN, 'the event stream to open');
  const p = await f.publish('1.1.0', { README: 'one one' });
  assert.equal(p.code, 0, p.stderr);
  const published = Date.now();
  // The next scheduled check is an hour away: only the announcement can bring 1.1.0 now.
  await installed(dir, '1.1.0', agent, 15_000);
  assert.ok(Date.now() - published < 15_000);
  assert.match(agent.output(), /push: 1\.1\.0 announced; checking in \d+ s/);
  assert.equal((await f.state(dir)).version, '1.1.0');
  // The agent reported what it applied, as after any check.
  assert.equal((await f.devices()).find((d) => d.deviceId === 'aa:bb:cc:10:00:01')?.version, '1.1.0');
});

test('push: --no-push keeps the agent on its schedule alone', async (t) => {
  const f = await fleet(t);
  const dir = await f.initAgent('nopush', 'aa:bb:cc:10:00:02');
  const agent = startAgent(t, dir, '--no-push');
  await installed(dir, '1.0.0', agent, 20_000);
  await agent.said(/push off/, 'the agent to say push is off');
  const p = await f.publish('1.1.0', { README: 'one one' });
  assert.equal(p.code, 0, p.stderr);
  // Long enough for a pushed agent (test above: within seconds); this one waits for its hour.
  await new Promise((r) => setTimeout(r, 6000));
  assert.equal(await currentLink(dir), join('versions', '1.0.0'), 'no check before the schedule');
  assert.doesNotMatch(agent.output(), /push:/);
});

test('push: the stream needs the device\'s own token and product; tells hello, release and heartbeats', async (t) => {
  const f = await fleet(t);
  const url = f.server.url;
  const q = { deviceId: 'aa:bb:cc:10:00:03', product: 'acme' };
  const none = await openEvents(url, q);
  assert.equal(none.status, 401);
  assert.equal(none.refusal?.code, 'PW_DEVICE_TOKEN');
  const forged = await openEvents(url, q, 'pwd1.bm90.aGVsbG8');
  assert.equal(forged.status, 401);
  assert.equal(forged.refusal?.code, 'PW_DEVICE_TOKEN');

  const s = await deviceSession(url, q.deviceId, 'acme');
  // Another device's stream with this device's token.
  const other = await openEvents(url, { ...q, deviceId: 'aa:bb:cc:10:00:04' }, s.token);
  assert.equal(other.status, 401);
  assert.match(other.refusal?.message ?? '', /a device speaks only for itself/);
  // Another product: the device is not enrolled there; its acme token does not open it.
  await f.createProduct({ product: 'other' });
  const elsewhere = await openEvents(url, { ...q, product: 'other' }, s.token);
  assert.equal(elsewhere.status, 401);
  assert.equal(elsewhere.refusal?.code, 'PW_DEVICE_TOKEN');
  // A channel that does not exist is a typo, as at /v1/check.
  const typo = await openEvents(url, { ...q, channel: 'stabel' }, s.token);
  assert.equal(typo.status, 404);
  assert.equal(typo.refusal?.code, 'PW_UNKNOWN_CHANNEL');

  const ok = await openEvents(url, q, s.token);
  t.after(() => ok.close());
  assert.equal(ok.status, 200);
  assert.match(String(ok.headers['content-type']), /^text\/event-stream/);
  const hello = await ok.next('hello');
  assert.equal(hello.latest, '1.0.0');
  assert.equal(hello.product, 'acme');
  assert.equal(typeof hello.expiresAt, 'string');
  // Only this product's channel is announced: a release of `other` says nothing here.
  const p = await f.publish('2.0.0', { README: 'two' });
  assert.equal(p.code, 0, p.stderr);
  const release = await ok.next('release');
  assert.deepEqual(release, { product: 'acme', channel: 'stable', version: '2.0.0', spreadSeconds: 1 });
  assert.equal(ok.events.filter((e) => e.event === 'release').length, 1);
});

test('push: heartbeats, one stream per device, --max-streams with 503 and Retry-After, and shutdown ends streams at once', async (t) => {
  const f = await fleet(t);
  await f.server.stop();
  const refused = await runCli(['serve', '--data', join(f.root, 'server'), '--port', '0', '--max-streams', '10', '--max-connections', '10']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--max-streams 10 must be below --max-connections 10/);
  const server = await f.serve('server', { args: ['--max-streams', '2', '--push-heartbeat', '1s'] });
  const a = await deviceSession(server.url, 'aa:bb:cc:10:00:05');
  const b = await deviceSession(server.url, 'aa:bb:cc:10:00:06');
  const c = await deviceSession(server.url, 'aa:bb:cc:10:00:07');
  const first = await openEvents(server.url, { deviceId: 'aa:bb:cc:10:00:05', product: 'acme' }, a.token);
  const second = await openEvents(server.url, { deviceId: 'aa:bb:cc:10:00:06', product: 'acme' }, b.token);
  t.after(() => { first.close(); second.close(); });
  assert.equal(first.status, 200);
  assert.equal(second.status, 200);
  await waitFor(() => first.comments() >= 2, { what: 'two heartbeats', timeout: 10_000 });
  // A third device is over the cap: told so, when to retry, and nothing else changes.
  const third = await openEvents(server.url, { deviceId: 'aa:bb:cc:10:00:07', product: 'acme' }, c.token);
  assert.equal(third.status, 503);
  assert.equal(third.refusal?.code, 'PW_TOO_MANY_STREAMS');
  assert.match(third.refusal?.message ?? '', /--max-streams 2/);
  assert.equal(third.headers['retry-after'], '60');
  // A device's second stream replaces its first (which is told why), and is not over the cap.
  const again = await openEvents(server.url, { deviceId: 'aa:bb:cc:10:00:05', product: 'acme' }, a.token);
  t.after(() => again.close());
  assert.equal(again.status, 200);
  assert.deepEqual(await first.next('bye'), { reason: 'replaced' });
  await first.ended;
  // The replaced stream freed nothing for others: still two, the cap.
  assert.equal((await openEvents(server.url, { deviceId: 'aa:bb:cc:10:00:07', product: 'acme' }, c.token)).status, 503);
  // Shutdown: open streams are ended (told so) and the server exits at once instead of waiting on them.
  const stopping = Date.now();
  await server.stop();
  assert.ok(Date.now() - stopping < 5000, `the server took ${Date.now() - stopping} ms to stop`);
  assert.deepEqual(await again.next('bye'), { reason: 'shutdown' });
  assert.deepEqual(await second.next('bye'), { reason: 'shutdown' });
});

test('push: the server stops, the agent keeps its schedule without a hot loop, and reconnects when it is back', async (t) => {
  const f = await fleet(t);
  const port = await freePort();
  await f.server.stop();
  f.server = await f.serve('server', { args: ['--port', String(port)] });
  const dir = await f.initAgent('c', 'aa:bb:cc:10:00:08');
  const agent = startAgent(t, dir);
  await installed(dir, '1.0.0', agent, 20_000);
  await agent.said(STREAM_OPEN, 'the event stream to open');
  await f.server.stop();
  await agent.said(/push: .*checking on schedule, reconnecting in \d+ s/, 'the agent to fall back to its schedule');
  // While the server is away, something that accepts and drops connections stands on its port:
  // the agent keeps coming back, but with a growing wait, never in a loop.
  let connections = 0;
  const sockets = new Set<Socket>();
  const squatter = createServer((sock) => {
    connections += 1;
    sockets.add(sock);
    sock.destroy();
  });
  await new Promise<void>((res) => squatter.listen(port, '127.0.0.1', () => res()));
  await new Promise((r) => setTimeout(r, 8000));
  await new Promise<void>((res) => squatter.close(() => res()));
  assert.ok(connections >= 1 && connections <= 6, `${connections} connection attempts in 8 s`);
  assert.equal(agent.proc.exitCode, null, 'the agent keeps running');
  assert.equal((await f.state(dir)).version, '1.0.0');

  f.server = await f.serve('server', { args: ['--port', String(port)] });
  // Backoff is capped at 5 min, but here it is at most a few doublings in.
  await agent.said(STREAM_OPEN, 'the agent to reconnect', 2, 60_000);
  const p = await f.publish('1.1.0', { README: 'one one' });
  assert.equal(p.code, 0, p.stderr);
  await installed(dir, '1.1.0', agent, 15_000);
});

test('push across processes: two serve processes on one PostgreSQL database; published through A, the agent streaming from B applies it within seconds', async (t) => {
  const db = await tempPgDatabase(t);
  // Both processes on one database and one artifact folder.
  const shared = ['--db', db, '--store', await tempDir(t, 'patchwire-push-artifacts-')];
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-push-pg-', server: { name: 'a', args: shared }, releases: [['1.0.0', { README: 'one' }]] });
  // B starts on an empty data folder: on a shared database the online keys live in the database.
  const b = await f.serve('b', { args: shared });

  const dir = await f.initAgent('d', 'aa:bb:cc:10:00:0d', { server: b.url });
  const agent = startAgent(t, dir);
  await installed(dir, '1.0.0', agent, 20_000);
  await agent.said(STREAM_OPEN, 'the event stream to B to open');
  const p = await f.publish('1.1.0', { README: 'one one' }, { server: f.server.url });
  assert.equal(p.code, 0, p.stderr);
  await installed(dir, '1.1.0', agent, 15_000);
  assert.equal((await f.state(dir)).server, b.url, 'the agent never left B');
  assert.match(agent.output(), /push: 1\.1\.0 announced/);
  assert.doesNotMatch(b.output(), /"level":50/, 'B logged no error');
});
