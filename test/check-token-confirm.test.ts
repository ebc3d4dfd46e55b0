/**
 * A token minted by POST /v1/auth is remembered as confirmed by the process that minted it (issue
 * 10: the check after an auth then reads no identity). That shortcut must not outlive a reject, a
 * remove or a re-bind made through the same process before the token was ever used: the
 * revocations are checked before it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer } from '../src/server/start.js';
import { runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { authBody, authRaw, deviceSession } from './helpers/device-session.js';

const TOKEN = 'token-confirm-admin-token-0123456789';

test('a fresh token from /v1/auth, never used, is refused after a reject, a remove or a re-bind', async (t) => {
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const root = await tempDir(cleanup, 'patchwire-token-confirm-');
  const s = await startServer({ dataDir: join(root, 'data'), host: '127.0.0.1', port: 0, token: TOKEN, logLevel: 'silent', print: () => {} });
  cleanup.after(() => s.close());
  const key = join(root, 'publisher.key');
  assert.equal((await runCli(['keygen', '--out', key])).code, 0);
  const created = await runCli(['product', 'create', '--server', s.url, '--token', TOKEN, '--product', 'acme', '--key', key, '--root-out', join(root, 'acme.root.json')]);
  assert.equal(created.code, 0, created.stderr);
  const admin = ['--server', s.url, '--token', TOKEN, '--product', 'acme'];
  const check = (mac: string, headers: { authorization: string }) => fetch(`${s.url}/v1/check`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ deviceId: mac, product: 'acme', channel: 'stable', version: null }),
  });

  const kept = await deviceSession(s.url, 'aa:bb:cc:30:00:01');
  const R = 'aa:bb:cc:30:00:02';
  const G = 'aa:bb:cc:30:00:03';
  const B = 'aa:bb:cc:30:00:04';
  const [rejected, removed, rebound] = await Promise.all([deviceSession(s.url, R), deviceSession(s.url, G), deviceSession(s.url, B)]);
  assert.equal((await runCli(['devices', 'reject', R, ...admin])).code, 0);
  assert.equal((await runCli(['devices', 'remove', G, ...admin])).code, 0);
  assert.equal((await authRaw(s.url, authBody(B, 'acme'))).status, 403, "B's new key waits");
  assert.equal((await runCli(['devices', 'accept', B, ...admin])).code, 0);

  for (const [mac, session] of [[R, rejected], [G, removed], [B, rebound]] as const) {
    const res = await check(mac, session.headers);
    const body = (await res.json()) as { code?: string; message?: string };
    assert.equal(res.status, 401, `${mac}: ${JSON.stringify(body)}`);
    assert.equal(body.code, 'PW_DEVICE_TOKEN');
    assert.match(body.message ?? '', /no longer valid/);
  }
  assert.equal((await check('aa:bb:cc:30:00:01', kept.headers)).status, 200, 'an untouched device checks with its fresh token');
});
