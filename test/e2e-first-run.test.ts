/**
 * What a new user does first, as the README says it: `npx patchwire serve &`, then `kill $!`.
 * npm runs the server as npm -> sh -c -> node; stopping npm used to leave the node process
 * holding the port. Real npx, real processes, 127.0.0.1 only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait-for.js';

const repo = fileURLToPath(new URL('..', import.meta.url));

/** Pids of processes whose command line mentions `marker` (to clean up whatever the test left). */
function pidsWith(marker: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker) ? [Number(d)] : [];
    } catch {
      return [];
    }
  });
}

test('npx patchwire serve & ... kill $! stops the server, not only npm', async (t) => {
  const data = await tempDir(t, 'patchwire-npx-');
  t.after(() => { for (const pid of pidsWith(data)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  // As a user's shell runs it: npx from the repository root, in the background.
  const npx = spawn('npx', ['patchwire', 'serve', '--data', data, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn'], {
    cwd: repo,
    env: { ...process.env, PATCHWIRE_TOKEN: 'first-run-token' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npx.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = await waitFor(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], { what: 'npx patchwire serve to listen', timeout: 120_000, detail: () => out });
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const server = pidsWith(data).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('patchwire'));
  assert.ok(server.length > 0, 'the server process is running');

  npx.kill('SIGTERM'); // kill $!
  await waitFor(async () => {
    try {
      await fetch(`${url}/healthz`);
      return false;
    } catch {
      return true; // connection refused: nothing holds the port any more
    }
  }, { what: 'the server to stop after npx was killed', timeout: 15_000, detail: () => out });
  await waitFor(() => pidsWith(data).length === 0, { what: 'no process of this server left', timeout: 15_000, detail: () => out });
});
