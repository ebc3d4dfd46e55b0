/**
 * A mirror is untrusted transport: cut off from its primary it keeps serving, but once the
 * timestamp it copied expires, agents refuse its updates (freeze protection, docs/design.md section 3).
 * Real processes on 127.0.0.1: a primary with 4-second timestamps and one mirror. The test waits
 * for the mirror's copy to expire (its signed `expires`), not for a fixed time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { startFleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';

const TOKEN = 'freshness-admin';

test('a mirror cut off from its primary serves stale metadata, which agents refuse once expired; fresh again after the primary returns', async (t) => {
  const primaryArgs = ['--mirror-token', 'mt', '--timestamp-expiry', '4s'];
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-freshness-', server: { name: 'primary', args: primaryArgs }, releases: [['1.0.0', { a: '1' }]] });
  let primary = f.server;
  const releasesAt = async (url: string) => (await f.releases({ server: url }).catch(() => [])).map((r) => r.version);

  const mirror = await f.serve('mirror', { args: ['--upstream', primary.url, '--upstream-token', 'mt', '--sync-interval', '1s'] });
  await waitFor(async () => (await releasesAt(mirror.url)).includes('1.0.0'), { what: 'the mirror to replicate 1.0.0', timeout: 15_000 });

  const dir = join(f.root, 'agent');
  let r = await runCli(['init', '--dir', dir, '--server', mirror.url, '--product', 'acme', '--root', f.rootFile, '--device-id', 'ee:00:00:00:00:01']);
  assert.equal(r.code, 0, r.stderr);

  // The primary goes away; the mirror keeps its copy, whose timestamp lives 4 seconds at most.
  await primary.stop();
  await waitFor(async () => Date.now() > Date.parse((await f.tuf('timestamp.json', { server: mirror.url })).signed.expires),
    { what: 'the timestamp the mirror serves to expire', timeout: 15_000 });
  const stale = await runCli(['check', '--dir', dir, '--json']);
  assert.equal(stale.code, 1, `expected a refusal, got: ${stale.stdout} ${stale.stderr}`);
  assert.match(stale.stderr, /expired/i);
  // The mirror itself still answers checks (it serves what it has).
  // (another device: ee:..:01 is bound to the agent's key, which a hand-made check does not hold)
  const answer = await f.rawCheck('ee:00:00:00:00:02', null, { server: mirror.url });
  assert.equal(answer.status, 200);

  // The primary returns on its old address (the mirror follows --upstream); the mirror copies a
  // fresh timestamp on its next pass, and the agent's update goes through.
  const port = new URL(primary.url).port;
  primary = await f.serve('primary', { args: [...primaryArgs, '--port', port] });
  await waitFor(async () => {
    const c = await runCli(['check', '--dir', dir, '--json', '--force']);
    return c.code === 0 && (JSON.parse(c.stdout) as { version: string }).version === '1.0.0';
  }, { what: 'the agent to update once the mirror copied a fresh timestamp', timeout: 20_000, interval: 200 });
});
