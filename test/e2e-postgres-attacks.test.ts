/**
 * Attacks on `serve --db postgres://` (docs/security.md, "PostgreSQL"): the password in what the
 * server prints, and notifications sent by another role that can merely connect to the database
 * (PostgreSQL has no privilege for NOTIFY). Real processes, a database of their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { runCli } from './helpers/cli.js';
import { startFleet } from './helpers/fleet.js';
import { tempPgDatabase, withAdmin } from './helpers/postgres.js';
import { tempDir } from './helpers/temp-dir.js';
import { freePort } from './helpers/ports.js';
import { deviceSession, authRaw, authBody } from './helpers/device-session.js';
import { ServerClock } from './helpers/server-clock.js';
import { redactPgUrl } from '../src/store/postgres/pg-connection.js';

const TOKEN = 'e2e-pg-attacks-token';

test('--db: a password is never printed, also when the URL does not parse, holds an unescaped @ or / or comes as ?password=', async (t) => {
  const data = await tempDir(t, 'patchwire-pg-attacks-');
  const closed = await freePort();
  const cases = [
    `postgres://postgres:hun/ter2@127.0.0.1:${closed}/fleet`,
    `postgres://postgres:hun@ter2@127.0.0.1:${closed}/fleet`,
    `postgres://postgres:hun?ter2@127.0.0.1:${closed}/fleet`,
    `postgres://postgres@127.0.0.1:${closed}/fleet?sslmode=disable&password=hunter2`,
    `postgres://postgres:hunter2@127.0.0.1:${closed}/`,
  ];
  for (const db of cases) {
    const r = await runCli(['serve', '--data', data, '--port', String(await freePort()), '--db', db], { env: { PATCHWIRE_TOKEN: TOKEN } });
    assert.ok(r.code === 1 || r.code === 2, `${db}: exit ${r.code}`);
    assert.match(r.stderr, /--db /, db);
    assert.doesNotMatch(r.stderr + r.stdout, /hun|ter2/, `${db} printed (part of) its password:\n${r.stderr}`);
  }
  assert.equal(redactPgUrl('postgres://pw:s3cret@db.example:5432/fleet'), 'postgres://pw:***@db.example:5432/fleet');
  assert.equal(redactPgUrl('postgres://pw@db.example/fleet?password=x&sslmode=require'), 'postgres://pw@db.example/fleet?password=***&sslmode=require');
  assert.equal(redactPgUrl('postgres://pw@db.example/fleet'), 'postgres://pw@db.example/fleet');
});

test('notifications from another role on the database: garbage is ignored, a forged revocation locks a device out for at most a minute', async (t) => {
  const db = await tempPgDatabase(t);
  const clockDir = await tempDir(t, 'patchwire-pg-attacks-clock-');
  const clock = new ServerClock(join(clockDir, 'offset'));
  const f = await startFleet(t, {
    token: TOKEN, prefix: 'patchwire-pg-attacks-', releases: [['1.0.0', { README: 'one' }]],
    server: { args: ['--db', db, '--store', join(clockDir, 'artifacts')], env: clock.env },
  });
  // A role with no rights but the CONNECT every role gets on a new database by default.
  const role = `patchwire_intruder_${randomBytes(4).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE ROLE ${role} LOGIN`));
  t.after(() => withAdmin((c) => c.query(`DROP ROLE IF EXISTS ${role}`)));
  const u = new URL(db);
  u.username = role;
  const intruder = new pg.Client({ connectionString: u.toString() });
  intruder.on('error', () => {}); // the database is dropped WITH (FORCE) at the end
  await intruder.connect();
  t.after(() => intruder.end());
  const notify = (channel: string, payload: string) => intruder.query('SELECT pg_notify($1, $2)', [channel, payload]);

  const mac = 'aa:bb:cc:32:00:01';
  const s = await deviceSession(f.server.url, mac);
  const check = (token: string) => fetch(`${f.server.url}/v1/check`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ deviceId: mac, product: 'acme', channel: 'stable' }),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { latest?: string; code?: string } }));
  assert.equal((await check(s.token)).status, 200);

  // Garbage on every channel: not JSON, wrong types, the largest payload PostgreSQL takes, deep nesting.
  const junk = ['', 'not json', 'null', '[]', '{"product":1}', '{"product":"../../etc"}', 'x'.repeat(7999), '['.repeat(4000) + ']'.repeat(3999),
    JSON.stringify({ deviceId: mac, product: 'acme', keyId: 7, at: 'soon' }), JSON.stringify({ product: 'acme', channel: 'stable', version: 'not-a-version' })];
  for (const channel of ['patchwire_catalog', 'patchwire_revocation', 'patchwire_release']) for (const p of junk) await notify(channel, p);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(f.server.proc.exitCode, null, 'the server is running');
  const after = await check(s.token);
  assert.equal(after.status, 200, JSON.stringify(after.body));
  assert.equal(after.body.latest, '1.0.0');

  // A forged revocation reaching far into the future: the device's current token is refused...
  await notify('patchwire_revocation', JSON.stringify({ deviceId: mac, product: 'acme', keyId: null, at: 8_000_000_000_000_000 }));
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await check(s.token)).status, 401);
  // ...but a minute later by the server's clock the device authenticates and checks again
  // (unclamped, it would be locked out until every server process restarted).
  await clock.passTime(new Date(), 61_000);
  const again = await authRaw(f.server.url, authBody(mac, 'acme', 'stable', s.key, new Date(clock.now())));
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal((await check(String(again.body.token))).status, 200);
});
