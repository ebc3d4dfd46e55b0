/**
 * Health checks that fail, as a new user meets them, with real `patchwire serve`, `check`,
 * `retry`, `rollback` and `agent` processes: a first install whose health command fails leaves
 * nothing installed and is reported as `failed`; a rolled-back version is held back (said so,
 * not "up to date") until `patchwire retry`; a health rollback exits 1; `check` and `rollback`
 * print one result shape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, runCli, runJson } from './helpers/cli.js';
import { currentLink } from './helpers/files.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';
import type { CheckResult } from '../src/agent/check.js';
import type { RollbackResult } from '../src/agent/rollback.js';
import type { RetryResult } from '../src/agent/retry.js';

const TOKEN = 'health-admin-token';
/** Each release carries its own health script; the agent runs it from `current`. */
const HEALTH = ['--health-cmd', 'sh bin/health', '--health-timeout', '10s'];
const tree = (v: string, script: string) => ({ 'bin/health': `#!/bin/sh\n${script}\n`, VERSION: v });

const fleet = (t: Parameters<typeof startFleet>[0]): Promise<Fleet> => startFleet(t, { token: TOKEN, prefix: 'patchwire-health-' });

async function published(f: Fleet, v: string, script: string): Promise<void> {
  const p = await f.publish(v, tree(v, script));
  assert.equal(p.code, 0, p.stderr);
}

/** `check --json` that may exit non-zero: the exit code, the parsed result, stderr. */
async function checkJson(dir: string, ...flags: string[]): Promise<{ code: number; r: CheckResult; stderr: string }> {
  const out = await runCli(['check', '--dir', dir, '--json', ...flags]);
  assert.ok(out.stdout.trim(), `check printed a result (exit ${out.code}): ${out.stderr}`);
  return { code: out.code, r: JSON.parse(out.stdout) as CheckResult, stderr: out.stderr };
}

const reportsOf = async (f: Fleet, mac: string) => (await f.reports(mac)).map((x) => `${x.event} ${x.version}`);

test('first install whose health check fails: nothing installed, `failed` reported with the reason, exit 1; a later release installs', async (t) => {
  const f = await fleet(t);
  const mac = '02:00:00:00:08:01';
  const dir = await f.initAgent('first', mac, { extra: HEALTH });
  await published(f, '1.0.0', 'echo "cannot open config" >&2; exit 3');

  const first = await checkJson(dir);
  assert.equal(first.code, 1, 'a failed health check is a failed check');
  assert.match(first.stderr, /first install's health check failed: 1\.0\.0 \(.*exited 3.*cannot open config\); nothing is installed/);
  assert.match(first.stderr, new RegExp(`patchwire retry --dir ${dir}`));
  assert.equal(first.r.result, 'install-failed');
  assert.equal(first.r.version, null);
  assert.equal(first.r.previousVersion, null);
  assert.equal(first.r.heldBack, '1.0.0');
  assert.match(first.r.reason ?? '', /exited 3.*cannot open config/);
  // Nothing installed: no `current`, the tried version's folder is gone.
  assert.equal(existsSync(join(dir, 'current')), false);
  assert.deepEqual(await readdir(join(dir, 'versions')), []);
  const s = await f.state(dir);
  assert.equal(s.version, null);
  assert.equal(s.pendingReport, null, 'the server took the report');
  // The server accepted it as `failed`, with the health command's reason.
  const rows = await f.reports(mac);
  assert.deepEqual(rows.map((x) => `${x.event} ${x.version}`), ['failed null']);
  assert.match(rows[0]!.detail ?? '', /first install: version 1\.0\.0 failed its health check: .*exited 3.*cannot open config/);

  // The same version is held back (not downloaded and failed again every interval), and said so.
  const again = await runCli(['check', '--dir', dir, '--force']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^holding back 1\.0\.0: .*staying at \(no version\).*patchwire retry --dir/);
  assert.doesNotMatch(again.stdout, /up to date/);

  // A later release is tried normally.
  await published(f, '1.1.0', 'exit 0');
  const later = await f.check(dir, '--force');
  assert.equal(later.result, 'updated');
  assert.equal(later.version, '1.1.0');
  assert.equal(later.previousVersion, null);
  assert.equal(await currentLink(dir), join('versions', '1.1.0'));
  assert.deepEqual(await reportsOf(f, mac), ['failed null', 'applied 1.1.0']);
});

test('a rolled-back version is held back (not "up to date") until `retry`; the rollback exits 1; retry then installs it', async (t) => {
  const f = await fleet(t);
  const mac = '02:00:00:00:08:02';
  const fixed = join(f.root, 'migrated');
  const dir = await f.initAgent('hold', mac, { extra: HEALTH });
  await published(f, '1.0.0', 'exit 0');
  assert.equal((await f.check(dir)).version, '1.0.0');

  // Nothing held back yet: retry refuses (exit 2) and changes nothing.
  const before = await f.state(dir);
  const none = await runCli(['retry', '--dir', dir]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /nothing is held back in .*nothing was changed/);
  assert.deepEqual(await f.state(dir), before);

  // 2.0.0 is healthy only once the operator fixed its cause (the file `fixed`).
  await published(f, '2.0.0', `test -f '${fixed}' || { echo "database not migrated" >&2; exit 4; }`);
  const rb = await checkJson(dir, '--force');
  assert.equal(rb.code, 1, 'a health rollback exits 1');
  assert.match(rb.stderr, /rolled back: 2\.0\.0 failed its health check \(.*exited 4.*database not migrated\), back at 1\.0\.0.*patchwire retry --dir/);
  assert.equal(rb.r.result, 'rolled-back');
  assert.equal(rb.r.version, '1.0.0');
  assert.equal(rb.r.previousVersion, '1.0.0');
  assert.equal(rb.r.rolledBackFrom, '2.0.0');
  assert.equal(rb.r.heldBack, '2.0.0');
  assert.match(rb.r.reason ?? '', /database not migrated/);
  assert.equal(await currentLink(dir), join('versions', '1.0.0'));

  // Held back, said so, in JSON and in words; exit 0 (a steady state, not a new failure).
  const held = await f.check(dir, '--force');
  assert.equal(held.result, 'held-back');
  assert.equal(held.heldBack, '2.0.0');
  assert.equal(held.version, '1.0.0');
  const words = await runCli(['check', '--dir', dir, '--force']);
  assert.equal(words.code, 0, words.stderr);
  assert.match(words.stdout, /^holding back 2\.0\.0: .*rolled back from it.*staying at 1\.0\.0.*`patchwire retry --dir /);

  await writeFile(fixed, 'yes');
  const cleared = await runJson<RetryResult>(['retry', '--dir', dir, '--json']);
  assert.deepEqual(cleared, { result: 'hold-cleared', version: '1.0.0', previousVersion: '1.0.0', server: f.server.url, cleared: '2.0.0', nextCheckAt: null });
  assert.equal((await f.state(dir)).rolledBack, null);
  // Due at once: a plain check (no --force) tries 2.0.0 again, and now it is healthy.
  const up = await f.check(dir);
  assert.equal(up.result, 'updated');
  assert.equal(up.version, '2.0.0');
  assert.equal(up.previousVersion, '1.0.0');
  assert.deepEqual(await reportsOf(f, mac), ['applied 1.0.0', 'rolled-back 1.0.0', 'applied 2.0.0']);

  // `rollback --json` has the shape of `check --json`'s rolled-back result (plus `reported`).
  const manual = await runJson<RollbackResult>(['rollback', '--dir', dir, '--json']);
  assert.deepEqual(manual, {
    result: 'rolled-back', version: '1.0.0', previousVersion: '2.0.0', rolledBackFrom: '2.0.0', heldBack: '2.0.0', server: f.server.url, reported: true,
  });
  for (const k of ['result', 'version', 'previousVersion', 'rolledBackFrom', 'heldBack', 'server'] as const) assert.ok(k in rb.r, `check has ${k}`);
  const afterManual = await f.check(dir, '--force');
  assert.equal(afterManual.result, 'held-back');
  assert.equal(afterManual.heldBack, '2.0.0');
});

test('a pending report an older agent queued for a failed first install (`rolled-back`, no version) is sent as `failed`', async (t) => {
  const f = await fleet(t);
  const mac = '02:00:00:00:08:03';
  const dir = await f.initAgent('stuck', mac);
  const s = await f.state(dir);
  s.pendingReport = { deviceId: mac, product: 'acme', channel: 'stable', event: 'rolled-back', version: null, previousVersion: '1.0.0', detail: 'version 1.0.0 failed its health check: exited 1' };
  await writeFile(join(dir, '.patchwire', 'state.json'), JSON.stringify(s));
  const r = await f.check(dir);
  assert.equal(r.result, 'up-to-date');
  assert.equal((await f.state(dir)).pendingReport, null);
  const rows = await f.reports(mac);
  assert.deepEqual(rows.map((x) => `${x.event} ${x.version}`), ['failed null']);
  assert.match(rows[0]!.detail ?? '', /failed its health check/);
});

test('not due: `check` and `agent` suggest `patchwire check --dir D --force` (agent itself takes no --force)', async (t) => {
  const f = await fleet(t);
  const dir = await f.initAgent('hint', '02:00:00:00:08:04');
  await published(f, '1.0.0', 'exit 0');
  await f.check(dir);
  const hint = `(to check now: \`patchwire check --dir ${dir} --force\`)`;
  const c = await runCli(['check', '--dir', dir]);
  assert.equal(c.code, 0, c.stderr);
  assert.ok(c.stdout.includes(hint), c.stdout);
  assert.doesNotMatch(c.stdout, /use --force/);

  const proc = spawn(process.execPath, [BIN, 'agent', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  try {
    await waitFor(() => out.includes('not due'), { what: "the agent's not-due line", timeout: 15_000, detail: () => out });
  } finally {
    proc.kill('SIGTERM');
  }
  assert.equal(await exited, 0, out);
  assert.ok(out.includes(hint), out);
  // The hint works: `check --force` checks now.
  assert.equal((await f.check(dir, '--force')).result, 'up-to-date');
});
