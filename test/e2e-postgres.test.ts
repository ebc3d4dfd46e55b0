/**
 * `patchwire serve --db postgres://...` end to end: a real server process on a PostgreSQL database
 * of its own, a release published, an agent that checks, applies and reports, the operator's
 * `status` and `devices`; then the process is restarted on the same database and everything is
 * still there. And the refusals of a database that cannot be used. Needs PostgreSQL on
 * 127.0.0.1:5432 (test/helpers/postgres.ts); fails, saying how to start it, without.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { readCurrent } from './helpers/files.js';
import { startFleet } from './helpers/fleet.js';
import { pgUrl, tempPgDatabase } from './helpers/postgres.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/temp-dir.js';
import type { StatusView } from '../src/protocol/wire.js';

const TOKEN = 'e2e-pg-token';

test('serve --db postgres://: publish, an agent applies and reports, status and devices show it; a restart on the same database keeps it all', async (t) => {
  const db = await tempPgDatabase(t);
  const server = { name: 'server', args: ['--db', db] };
  const f = await startFleet(t, {
    token: TOKEN, prefix: 'patchwire-e2e-pg-', server,
    releases: [['1.0.0', { 'bin/app': '#!/bin/sh\necho 1.0.0\n', README: 'version one' }]],
  });
  const dir = await f.initAgent('pg-agent', 'aa:bb:cc:10:00:01');
  const first = await f.check(dir);
  assert.deepEqual([first.result, first.version], ['updated', '1.0.0']);
  assert.equal(await readCurrent(dir, 'README'), 'version one');
  assert.equal((await f.publish('1.1.0', { README: 'version 1.1' })).code, 0);
  const second = await f.check(dir, '--force');
  assert.deepEqual([second.result, second.version, second.previousVersion], ['updated', '1.1.0', '1.0.0']);

  const shows = async (what: string) => {
    const device = (await f.devices()).find((d) => d.deviceId === 'aa:bb:cc:10:00:01');
    assert.equal(device?.version, '1.1.0', `${what}: the device at its applied version`);
    const status = await runJson<StatusView>(['status', ...f.admin(), '--json']);
    assert.deepEqual(status.products, [{ product: 'acme', devices: 1, channels: [{ channel: 'stable', latest: '1.1.0', devices: 1, versions: { '1.1.0': 1 } }] }], what);
    assert.deepEqual((await f.reports('aa:bb:cc:10:00:01')).map((r) => `${r.event} ${r.version}`), ['applied 1.0.0', 'applied 1.1.0'], what);
  };
  await shows('first run');
  // Nothing went to an SQLite file in the data folder: the database holds it.
  assert.ok(!(await readdir(join(f.root, 'server'))).some((n) => n.startsWith('patchwire.db')));

  await f.server.stop();
  f.server = await f.serve('server', server);
  await shows('after the restart');
  // The restarted process serves the agent (it still has its release, keys and device); its
  // port changed with the restart, so the agent is pointed there.
  const state = await f.state(dir);
  await writeFile(join(dir, '.patchwire', 'state.json'), JSON.stringify({ ...state, server: f.server.url }));
  const agentAgain = await f.check(dir, '--force');
  assert.deepEqual([agentAgain.result, agentAgain.version], ['up-to-date', '1.1.0']);
});

test('serve --db postgres:// that cannot be used exits 1 saying what failed and what to do, without the password or a stack', async (t) => {
  const data = await tempDir(t, 'patchwire-e2e-pg-bad-');
  const port = await freePort();
  const serve = async (db: string) => runCli(['serve', '--data', data, '--port', String(await freePort()), '--db', db], { env: { PATCHWIRE_TOKEN: TOKEN } });
  let r = await serve(`postgres://postgres:hunter2@127.0.0.1:${port}/fleet`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`--db postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/fleet: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(connection refused\\): start PostgreSQL`));
  assert.doesNotMatch(r.stderr, /hunter2/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  r = await serve(pgUrl('patchwire_e2e_missing'));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /has no database 'patchwire_e2e_missing': create it \(createdb /);
  r = await serve('postgres://postgres@127.0.0.1:5432');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /names no database; use postgres:\/\/USER@HOST:PORT\/DATABASE/);
});
