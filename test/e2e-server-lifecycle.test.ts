/**
 * A `patchwire serve` process's life around its data folder, with real processes: SIGTERM stops
 * it promptly even while a delta is being computed (test hook: PATCHWIRE_DELTA_DELAY_MS holds the
 * delta worker), one server per data folder (`<data>/.lock`), the bounds of delta computation
 * (time, size), a busy port refused before anything is created, and PATCHWIRE_TOKEN replacing the
 * stored admin token with a warning.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startServer, type ServerProcess } from './helpers/cli.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait-for.js';

const TOKEN = 'lifecycle-admin';
const SLOW_DELTA = { PATCHWIRE_ENABLE_FAULTS: '1', PATCHWIRE_DELTA_DELAY_MS: '120000' };

const files = (version: string): Record<string, string> => ({ 'bin/app': `echo ${version}\n`, 'lib/data.txt': 'x'.repeat(20_000) + version });

/** A fleet whose server runs with these flags and environment, acme 1.0.0 published. */
const fleet = (t: TestContext, args: string[], env: Record<string, string> = {}): Promise<Fleet> =>
  startFleet(t, { token: TOKEN, prefix: 'patchwire-life-', server: { args: ['--log-level', 'info', ...args], env }, releases: [['1.0.0', files('1.0.0')]] });

const exists = (p: string) => access(p).then(() => true, () => false);

/** SIGTERM, and the time until the process is gone; SIGKILL (and a failure) past `deadlineMs`. */
async function stopWithin(s: ServerProcess, deadlineMs: number): Promise<number> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((res) => { timer = setTimeout(() => res('late'), deadlineMs); });
  const r = await Promise.race([s.stop().then(() => 'stopped' as const), late]);
  clearTimeout(timer);
  if (r === 'late') {
    await s.kill();
    assert.fail(`the server was still running ${deadlineMs} ms after SIGTERM:\n${s.output()}`);
  }
  return Date.now() - t0;
}

async function publishAndWaitForDelta(f: Fleet, what: RegExp): Promise<void> {
  const p = await f.publish('1.1.0', files('1.1.0'));
  assert.equal(p.code, 0, p.stderr);
  await waitFor(() => what.test(f.server.output()), { what: `the server to log ${what}`, timeout: 30_000, detail: f.server.output });
}

test('SIGTERM during a slow delta computation: the server exits promptly, releases the data folder, and the next start serves', async (t) => {
  const f = await fleet(t, [], SLOW_DELTA);
  await publishAndWaitForDelta(f, /computing a delta/);
  const ms = await stopWithin(f.server, 10_000);
  assert.ok(ms < 10_000, `stopped in ${ms} ms`);
  assert.match(f.server.output(), /abandoned/, 'the abandoned computation is logged');
  assert.equal(await exists(join(f.root, 'server', '.lock')), false, 'the lock is released');
  f.server = await f.serve('server');
  assert.equal((await f.rawCheck('ee:00:00:00:00:01', '1.0.0')).body.release?.version, '1.1.0', 'the restarted server offers 1.1.0 (the full archive)');
});

test('one server per data folder: a second serve is refused with the pid while the first runs, and starts once the first was killed', async (t) => {
  const f = await fleet(t, []);
  const data = join(f.root, 'server');
  const lock = await readFile(join(data, '.lock'), 'utf8');
  assert.equal(lock.trim(), String(f.server.proc.pid), 'the lock names the running server');
  const second = await runCli(['serve', '--data', data, '--host', '127.0.0.1', '--port', '0'], { env: { PATCHWIRE_TOKEN: TOKEN }, timeoutMs: 20_000 });
  assert.equal(second.code, 1, second.stdout + second.stderr);
  assert.match(second.stderr, new RegExp(`the data folder .*server is in use by patchwire pid ${f.server.proc.pid}; stop it first`));
  assert.doesNotMatch(second.stdout, /listening/);

  await f.server.kill(); // SIGKILL: the lock file stays behind, naming a dead pid
  assert.equal(await exists(join(data, '.lock')), true);
  f.server = await f.serve('server');
  assert.equal((await readFile(join(data, '.lock'), 'utf8')).trim(), String(f.server.proc.pid), 'the stale lock was taken over');
  assert.equal((await f.releases()).length, 1);
});

test('a delta computation past --delta-timeout is stopped; the server goes on serving the full archive', async (t) => {
  const f = await fleet(t, ['--delta-timeout', '2s'], SLOW_DELTA);
  await publishAndWaitForDelta(f, /took longer than --delta-timeout/);
  assert.equal((await f.rawCheck('ee:00:00:00:00:02', '1.0.0')).body.release?.kind, 'full');
  await stopWithin(f.server, 10_000);
});

test('a tree stream above --delta-max-bytes gets no delta (nothing is computed)', async (t) => {
  const f = await fleet(t, ['--delta-max-bytes', '10000']);
  await publishAndWaitForDelta(f, /larger than --delta-max-bytes/);
  assert.doesNotMatch(f.server.output(), /computing a delta/);
  assert.equal((await f.rawCheck('ee:00:00:00:00:03', '1.0.0')).body.release?.kind, 'full');
});

test('serve on a busy port: refused with what to do, exit 1, nothing created', async (t) => {
  const busy: Server = createServer();
  await new Promise<void>((res) => busy.listen({ host: '127.0.0.1', port: 0 }, res));
  t.after(() => new Promise<void>((res) => busy.close(() => res())));
  const port = (busy.address() as { port: number }).port;
  const data = join(await tempDir(t, 'patchwire-busy-'), 'data');
  const r = await runCli(['serve', '--data', data, '--host', '127.0.0.1', '--port', String(port)], { timeoutMs: 20_000 });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use \\(by another patchwire\\?\\); pass another --port`));
  assert.equal(await exists(data), false, 'the data folder was not created');
});

test('PATCHWIRE_TOKEN replacing a different stored token is logged once at warn; the same token is not; the new one stays', async (t) => {
  const data = join(await tempDir(t, 'patchwire-token-'), 'data');
  const REPLACED = /the admin token was replaced by PATCHWIRE_TOKEN/g;
  const status = (s: ServerProcess, token: string) => runCli(['status', '--server', s.url, '--token', token, '--json']);

  const run = async (token: string | undefined, fn: (s: ServerProcess) => Promise<void>) => {
    const s = await startServer(data, { token });
    try {
      await fn(s);
    } finally {
      await s.stop();
    }
    return s.output();
  };
  assert.doesNotMatch(await run('first-token', async () => {}), REPLACED, 'first start: nothing replaced');
  assert.doesNotMatch(await run('first-token', async () => {}), REPLACED, 'the same token again: nothing replaced');
  const out = await run('second-token', async (s) => {
    assert.equal((await status(s, 'second-token')).code, 0);
    assert.equal((await status(s, 'first-token')).code, 2, 'the old token no longer works');
  });
  assert.equal(out.match(REPLACED)?.length, 1, `logged once:\n${out}`);
  const line = out.split('\n').find((l) => l.includes('the admin token was replaced'))!;
  assert.equal((JSON.parse(line) as { level: number }).level, 40, `at warn level: ${line}`);
  // Without PATCHWIRE_TOKEN the rotated token is the stored one.
  await run(undefined, async (s) => { assert.equal((await status(s, 'second-token')).code, 0); });
});
