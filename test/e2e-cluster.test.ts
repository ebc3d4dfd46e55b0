/**
 * Several stateless servers, one fleet (issue 10): two real `patchwire serve` processes on one
 * PostgreSQL database (a database of its own) and one s3rver bucket, each with its own empty
 * --data folder. Publish through A, devices check and report through B; schedule, yank and moved
 * through B reach A within 1 s; A killed with SIGKILL while 200 devices report through both, and
 * every acknowledged report is in the registry; A restarted on a fresh --data folder serves the
 * same keys and honours the tokens devices already hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { startFleet } from './helpers/fleet.js';
import { startS3rver } from './helpers/s3rver.js';
import { tempPgDatabase } from './helpers/postgres.js';
import { readCurrent } from './helpers/files.js';
import { waitFor } from './helpers/wait-for.js';
import { deviceSession, type DeviceSession } from './helpers/device-session.js';
import { runCli, type ServerProcess } from './helpers/cli.js';

const TOKEN = 'e2e-cluster-admin-token';
/** "Within 1 s" (docs/architecture.md), with a margin for a shared test machine. */
const WITHIN_MS = 2000;
const DEVICES = 200;

const mac = (i: number) => `aa:bb:cc:20:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

async function post(server: string, path: string, s: DeviceSession, body: object): Promise<number> {
  const res = await fetch(`${server}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...s.headers }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

test('two serve processes on one PostgreSQL and one bucket serve one fleet; SIGKILL of one loses no acknowledged report', async (t) => {
  const [s3, db] = await Promise.all([startS3rver(t), tempPgDatabase(t)]);
  const args = ['--db', db, '--store', `s3://patchwire/cluster?endpoint=${s3.endpoint}&region=us-east-1`];
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-e2e-cluster-', server: { name: 'a', args, env: s3.env } });
  const a = f.server;
  const b = await f.serve('b', { args, env: s3.env });
  // Each process started on an empty --data folder; the online keys live in the database.
  await assert.rejects(access(join(f.root, 'a', 'keys', 'online.json')), 'no online key file with a shared database');
  const ts = await f.tuf<{ signatures: Array<{ keyid: string }> }>('timestamp.json', { server: b.url });
  const root = await f.tuf<{ signed: { roles: Record<string, { keyids: string[] }> } }>('1.root.json', { server: a.url });
  assert.deepEqual(root.signed.roles.timestamp!.keyids, [ts.signatures[0]!.keyid], 'B signs with the timestamp key the root A created names');

  // Publish through A; an agent that knows only B gets it.
  assert.equal((await f.publish('1.0.0', { 'bin/app': 'echo 1.0.0\n' }, { server: a.url })).code, 0);
  await waitFor(async () => (await f.rawCheck(mac(999), null, { server: b.url })).body.latest === '1.0.0', { timeout: WITHIN_MS, what: 'B offers 1.0.0' });
  const agent = await f.initAgent('via-b', 'AA-BB-CC-20-FF-01', { server: b.url });
  const r = await f.check(agent);
  assert.equal(r.result, 'updated');
  assert.equal(await readCurrent(agent, 'bin/app'), 'echo 1.0.0\n');
  const shown = await f.devices(a.url);
  assert.equal(shown.find((d) => d.deviceId === 'aa:bb:cc:20:ff:01')?.version, '1.0.0', 'the report through B is read through A');

  // Schedule, publish, yank through B: A's checks follow within 1 s.
  const at = new Date(Date.now() + 86400_000).toISOString();
  assert.equal((await f.publish('1.1.0', { 'bin/app': 'echo 1.1.0\n' }, { server: b.url })).code, 0);
  const scheduled = await runCli(['schedule', ...f.admin(b.url), '--product', 'acme', '--at', at]);
  assert.equal(scheduled.code, 0, scheduled.stderr);
  await waitFor(async () => {
    const c = (await f.rawCheck(mac(998), null, { server: a.url })).body;
    return c.latest === '1.1.0' && c.schedule?.at === at;
  }, { timeout: WITHIN_MS, what: 'A offers 1.1.0 and announces the schedule' });
  const yank = await runCli(['release', 'yank', ...f.admin(b.url), '--product', 'acme', '--version', '1.1.0']);
  assert.equal(yank.code, 0, yank.stderr);
  await waitFor(async () => (await f.rawCheck(mac(998), null, { server: a.url })).body.latest === '1.0.0', { timeout: WITHIN_MS, what: 'A withdraws the yanked 1.1.0' });

  // An agent of A (behind a load balancer, its URL outlives the process).
  const agentA = await f.initAgent('via-a', 'AA-BB-CC-20-FF-02', { server: a.url });
  assert.equal((await f.check(agentA)).version, '1.0.0');

  // 200 devices, half through A and half through B; A is killed while they report.
  const servers = (i: number) => (i % 2 === 0 ? a.url : b.url);
  const sessions = await Promise.all(Array.from({ length: DEVICES }, (_, i) => deviceSession(servers(i), mac(i))));
  const acked = new Set<number>();
  let killed: Promise<void> | undefined;
  const run = async (i: number) => {
    const server = servers(i);
    try {
      if ((await post(server, '/v1/check', sessions[i]!, { deviceId: mac(i), product: 'acme', channel: 'stable', version: null })) !== 200) return;
      const status = await post(server, '/v1/report', sessions[i]!, { deviceId: mac(i), product: 'acme', channel: 'stable', event: 'applied', version: '1.0.0', previousVersion: null });
      if (status >= 200 && status < 300) acked.add(i);
    } catch {
      // A's connections die with it: an unanswered report is not acknowledged.
    }
  };
  const all: Array<Promise<void>> = [];
  for (let i = 0; i < DEVICES; i++) {
    all.push(run(i));
    // A dies mid-stream, with reports of its devices in flight.
    if (i === DEVICES / 2) killed = a.kill();
    if (i % 10 === 0) await new Promise((res) => setTimeout(res, 5));
  }
  await Promise.all(all);
  await killed;
  const throughA = [...acked].filter((i) => i % 2 === 0).length;
  assert.ok(throughA > 0 && acked.size > throughA, `reports were acknowledged by both before the kill (A ${throughA}, all ${acked.size})`);
  for (const i of acked) {
    const rows = await f.reports(mac(i), { server: b.url });
    assert.ok(rows.some((row) => row.event === 'applied' && row.version === '1.0.0'), `the acknowledged report of ${mac(i)} is in the registry`);
  }

  // A again, on a fresh --data folder and A's port: the same keys, and tokens minted by the killed A still work.
  const a2: ServerProcess = await f.serve('a-again', { args: [...args, '--port', new URL(a.url).port], env: s3.env });
  assert.equal(a2.url, a.url);
  const ts2 = await f.tuf<{ signatures: Array<{ keyid: string }> }>('timestamp.json', { server: a2.url });
  assert.equal(ts2.signatures[0]!.keyid, ts.signatures[0]!.keyid);
  assert.equal(await post(a2.url, '/v1/check', sessions[0]!, { deviceId: mac(0), product: 'acme', channel: 'stable', version: '1.0.0' }), 200, 'no re-enrolment: the old token is valid at the new process');
  const again = await f.check(agentA, '--force');
  assert.equal(again.result, 'up-to-date');
  assert.equal(again.version, '1.0.0');

  // A moved notice through B reaches the new A within 1 s.
  const move = await runCli(['move', ...f.admin(b.url), '--product', 'acme', '--to', 'http://127.0.0.1:9', '--key', f.key]);
  assert.equal(move.code, 0, move.stderr);
  await waitFor(async () => (await f.rawCheck(mac(998), null, { server: a2.url })).body.moved?.url === 'http://127.0.0.1:9', { timeout: WITHIN_MS, what: 'the new A announces the moved notice' });
});

test('two serve processes re-sign a due timestamp once between them: every fetch at both is answered', async (t) => {
  const db = await tempPgDatabase(t);
  // Re-signed at half of 4 s: due 2 s after the product is made.
  const args = ['--db', db, '--timestamp-expiry', '4s'];
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-e2e-cluster-resign-', server: { name: 'a', args } });
  const b = await f.serve('b', { args });
  const version = async (url: string) => {
    const res = await fetch(`${url}/v1/products/acme/tuf/timestamp.json`);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return (JSON.parse(text) as { signed: { version: number } }).signed.version;
  };
  const first = await version(b.url);
  await new Promise((res) => setTimeout(res, 2200));
  const seen = await Promise.all(Array.from({ length: 40 }, (_, i) => version(i % 2 ? f.server.url : b.url)));
  assert.ok(seen.every((v) => v === first || v === first + 1), `versions served: ${seen.join(',')}`);
  assert.equal(await version(f.server.url), first + 1, 'one re-signing, by one of the two');
});
