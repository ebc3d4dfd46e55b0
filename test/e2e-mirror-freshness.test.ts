/**
 * A mirror is untrusted transport: cut off from its primary it keeps serving, but once the
 * timestamp it copied expires, agents refuse its updates (freeze protection, docs/design.md section 3).
 * Real processes on 127.0.0.1: a primary with 3-second timestamps and one mirror.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startServer, type ServerProcess } from './helpers/cli.js';
import { tempDir, writeTree } from './helpers/files.js';

const TOKEN = 'freshness-admin';
const servers: ServerProcess[] = [];
let root: string;

after(async () => {
  for (const s of servers) await s.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function waitFor(what: () => Promise<boolean>, label: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${label}`);
}

const releasesAt = async (url: string) => {
  const res = await fetch(`${url}/v1/admin/products/acme`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return res.ok ? ((await res.json()) as { releases: Array<{ version: string }> }).releases.map((r) => r.version) : [];
};

test('a mirror cut off from its primary serves stale metadata, which agents refuse once expired; fresh again after the primary returns', async () => {
  root = await tempDir('patchwire-freshness-');
  const primaryArgs = ['--mirror-token', 'mt', '--timestamp-expiry', '8s'];
  let primary = await startServer(join(root, 'primary'), { token: TOKEN, args: primaryArgs });
  servers.push(primary);
  const admin = (url: string) => ['--server', url, '--token', TOKEN];
  const key = join(root, 'k.key');
  assert.equal((await runCli(['keygen', '--out', key])).code, 0);
  const rootFile = join(root, 'acme.root.json');
  let r = await runCli(['product', 'create', ...admin(primary.url), '--product', 'acme', '--key', key, '--root-out', rootFile]);
  assert.equal(r.code, 0, r.stderr);
  r = await runCli(['publish', ...admin(primary.url), '--product', 'acme', '--version', '1.0.0', '--key', key, await writeTree(join(root, 't1'), { a: '1' })]);
  assert.equal(r.code, 0, r.stderr);

  const mirror = await startServer(join(root, 'mirror'), { token: TOKEN, args: ['--upstream', primary.url, '--upstream-token', 'mt', '--sync-interval', '1s'] });
  servers.push(mirror);
  await waitFor(async () => (await releasesAt(mirror.url)).includes('1.0.0'), 'the mirror to replicate 1.0.0');

  const dir = join(root, 'agent');
  r = await runCli(['init', '--dir', dir, '--server', mirror.url, '--product', 'acme', '--root', rootFile, '--device-id', 'ee:00:00:00:00:01']);
  assert.equal(r.code, 0, r.stderr);

  // The primary goes away; the mirror keeps its copy, whose timestamp lives 8 seconds.
  await primary.stop();
  await new Promise((res) => setTimeout(res, 9000));
  const stale = await runCli(['check', '--dir', dir, '--json']);
  assert.equal(stale.code, 1, `expected a refusal, got: ${stale.stdout} ${stale.stderr}`);
  assert.match(stale.stderr, /expired/i);
  // The mirror itself still answers checks (it serves what it has).
  const answer = await fetch(`${mirror.url}/v1/check`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId: 'ee:00:00:00:00:01', product: 'acme', channel: 'stable', version: null }),
  });
  assert.equal(answer.status, 200);

  // The primary returns on its old address (the mirror follows --upstream); the mirror copies a
  // fresh timestamp on its next pass, and the agent's update goes through.
  const port = new URL(primary.url).port;
  primary = await startServer(join(root, 'primary'), { token: TOKEN, args: [...primaryArgs, '--port', port] });
  servers.push(primary);
  await waitFor(async () => {
    const c = await runCli(['check', '--dir', dir, '--json', '--force']);
    return c.code === 0 && (JSON.parse(c.stdout) as { version: string }).version === '1.0.0';
  }, 'the agent to update once the mirror copied a fresh timestamp', 20_000);
});
