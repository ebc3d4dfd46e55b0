import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { startServer } from './helpers/cli.js';
import { tempPgDatabase } from './helpers/postgres.js';

// Two `patchwire serve` processes on one PostgreSQL database (README "Several processes", no
// sticky sessions): a dashboard session made by one is good at the other, and a sign-out at
// either is refused by both.
const TOKEN = 'dashboard-cluster-token';

test('a dashboard session works across two server processes on one database and its sign-out reaches both', async (t) => {
  const db = await tempPgDatabase(t);
  const root = await mkdtemp(join(tmpdir(), 'patchwire-dash-cluster-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const a = await startServer(join(root, 'a'), { token: TOKEN, args: ['--db', db] });
  t.after(() => a.stop());
  const b = await startServer(join(root, 'b'), { token: TOKEN, args: ['--db', db] });
  t.after(() => b.stop());

  const signIn = await fetch(`${a.url}/v1/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
  assert.equal(signIn.status, 201);
  const cookie = /^(pw_session=[^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')![1]!;
  const { csrf } = (await signIn.json()) as { csrf: string };

  const status = (url: string) => fetch(`${url}/v1/admin/status`, { headers: { cookie } }).then((r) => r.status);
  assert.equal(await status(a.url), 200);
  assert.equal(await status(b.url), 200, 'the other process accepts the session');
  // The CSRF token from A is the one B expects.
  const mirrorsDelete = await fetch(`${b.url}/v1/admin/mirrors?url=http://127.0.0.1:9`, { method: 'DELETE', headers: { cookie, 'x-patchwire-csrf': csrf } });
  assert.equal(mirrorsDelete.status, 404, await mirrorsDelete.text()); // PW_UNKNOWN_MIRROR: past auth and CSRF

  const out = await fetch(`${b.url}/v1/dashboard/session`, { method: 'DELETE', headers: { cookie, 'x-patchwire-csrf': csrf } });
  assert.equal(out.status, 200, await out.text());
  assert.match(out.headers.get('set-cookie') ?? '', /^pw_session=; .*Max-Age=0/);
  assert.equal(await status(a.url), 401, 'signed out at B, refused at A');
  assert.equal(await status(b.url), 401);
});
