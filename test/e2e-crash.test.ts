/**
 * Crash safety of a real agent process (docs/design.md section 6, issue 4): `patchwire check --dir D
 * --force --json` is killed with SIGKILL at random moments of an update 1.0.0 -> 2.0.0, at least
 * 50 times. After each kill `current` must resolve to exactly versions/1.0.0 or versions/2.0.0
 * with that release's tree hash (never a mix, never dangling); then a run without faults must
 * complete the update and leave no leftovers.
 *
 * To spread the kills over the states, each state is widened by a delay injected through the CLI's
 * test hook (PATCHWIRE_ENABLE_FAULTS=1, PATCHWIRE_FAULT=*:delay:MS), which also logs every state
 * entered to stderr; most trials aim at one state (kill a random time after it is entered), the
 * rest kill at a random time after spawn. The test prints where the kills landed.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, lstat, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, runCli, type ServerProcess } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { writeTree } from './helpers/files.js';
import { startFleet, type Fleet, type ReportRow } from './helpers/fleet.js';
import { hashTree } from '../src/util/tree-hash.js';
import type { CheckResult } from '../src/agent/check.js';

const TOKEN = 'crash-admin-token';
const TRIALS = 56;
const PARALLEL = 4;
const DELAY_MS = 40;
const AIM = ['check', 'download', 'verify', 'stage', 'switch', 'health', 'report', 'cleanup', 'done'];

const suite = Cleanup.forSuite();
let f: Fleet;
let root: string;
let server: ServerProcess;
let template: string;
const treeHash: Record<string, string> = {};

/** A small tree of a few dozen files, so staging takes a moment. */
function tree(version: string): Record<string, string> {
  const files: Record<string, string> = { VERSION: version, 'bin/app': `#!/bin/sh\necho ${version}\n` };
  for (let i = 0; i < 40; i++) files[`lib/m${i}.js`] = `export const v = '${version}-${i}';\n`.repeat(40 + i);
  return files;
}

before(async () => {
  f = await startFleet(suite, { token: TOKEN, prefix: 'patchwire-crash-' });
  ({ root, server } = f);
  const publish = async (v: string) => {
    const dir = await writeTree(join(root, `tree-${v}`), tree(v));
    treeHash[v] = (await hashTree(dir)).hash;
    const p = await runCli(['publish', ...f.admin(), '--product', 'acme', '--version', v, '--key', f.key, dir]);
    assert.equal(p.code, 0, p.stderr);
  };
  await publish('1.0.0');
  template = await f.initAgent('template', '02:00:00:00:04:00', { extra: ['--health-cmd', 'test -f VERSION'] });
  assert.equal((await f.check(template)).version, '1.0.0');
  await publish('2.0.0');
});

/** `current` is a link to exactly versions/1.0.0 or versions/2.0.0 whose tree is that release's; returns the version. */
async function treeProblem(dir: string): Promise<string | { version: string }> {
  const cur = join(dir, 'current');
  const st = await lstat(cur).catch(() => undefined);
  if (!st) return 'current is missing';
  if (!st.isSymbolicLink()) return 'current is not a symlink';
  const link = await readlink(cur);
  const m = /^versions\/(1\.0\.0|2\.0\.0)$/.exec(link);
  if (!m) return `current -> ${link}`;
  if (!existsSync(cur)) return `current -> ${link} dangles`;
  const h = (await hashTree(cur)).hash;
  if (h !== treeHash[m[1]!]) return `current -> ${link} but its tree hash ${h} is not the release's (a torn install)`;
  return { version: m[1]! };
}

interface Trial {
  landed: string;
  before: string;
  problem?: string;
}

async function trial(i: number): Promise<Trial> {
  const mac = `02:00:00:00:05:${i.toString(16).padStart(2, '0')}`;
  const dir = join(root, `t${i}`);
  await cp(template, dir, { recursive: true, verbatimSymlinks: true });
  const statePath = join(dir, '.patchwire', 'state.json');
  const s = JSON.parse(await readFile(statePath, 'utf8')) as Record<string, unknown>;
  await writeFile(statePath, JSON.stringify({ ...s, deviceId: mac }));

  // Aim at a state (most trials), or at a random time after spawn.
  const aim = i % 7 === 6 ? undefined : AIM[i % AIM.length]!;
  const child = spawn(process.execPath, [BIN, 'check', '--dir', dir, '--force', '--json'], {
    env: { ...process.env, PATCHWIRE_ENABLE_FAULTS: '1', PATCHWIRE_FAULT: `*:delay:${DELAY_MS}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let last = 'startup';
  let killed = false;
  const kill = () => {
    if (killed || child.exitCode !== null) return;
    killed = true;
    child.kill('SIGKILL');
  };
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    for (const m of d.toString().matchAll(/patchwire-fault: state (\S+)/g)) {
      if (killed) break;
      last = m[1]!;
      if (last === aim) setTimeout(kill, Math.random() * (DELAY_MS + 25));
    }
  });
  if (!aim) setTimeout(kill, 200 + Math.random() * 1300);
  const exit = await new Promise<{ code: number | null; signal: string | null }>((res) => child.on('close', (code, signal) => res({ code, signal })));
  const landed = killed && exit.signal === 'SIGKILL' ? last : 'completed';
  if (!killed && exit.code !== 0) return { landed, before: '?', problem: `the faulty run failed (exit ${exit.code}): ${err}` };

  const after = await treeProblem(dir);
  if (typeof after === 'string') return { landed, before: '?', problem: `after a kill in ${landed}: ${after}` };

  const done = await runCli(['check', '--dir', dir, '--force', '--json']);
  if (done.code !== 0) return { landed, before: after.version, problem: `the completing run failed: ${done.stderr}` };
  const result = JSON.parse(done.stdout) as CheckResult;
  if (result.version !== '2.0.0') return { landed, before: after.version, problem: `the completing run ended at ${result.version} (${result.result})` };
  const final = await treeProblem(dir);
  if (typeof final === 'string' || final.version !== '2.0.0') return { landed, before: after.version, problem: `after the completing run: ${JSON.stringify(final)}` };
  const st = JSON.parse(await readFile(statePath, 'utf8')) as Record<string, unknown>;
  if (st.version !== '2.0.0' || st.pendingReport !== null) return { landed, before: after.version, problem: `state after completing: ${JSON.stringify(st)}` };
  const leftovers = [
    ...(await readdir(join(dir, 'versions'))).filter((n) => n.endsWith('.partial') || n.startsWith('.')),
    ...(await readdir(dir)).filter((n) => n.endsWith('.tmp')),
    ...(await readdir(join(dir, '.patchwire'))).filter((n) => n.endsWith('.tmp') || n === 'update.json'),
  ];
  if (leftovers.length) return { landed, before: after.version, problem: `leftovers: ${leftovers.join(', ')}` };
  const res = await fetch(`${server.url}/v1/admin/products/acme/devices/${encodeURIComponent(mac)}/reports`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const reports = ((await res.json()) as ReportRow[]).map((r) => `${r.event} ${r.version}`);
  if (!reports.includes('applied 2.0.0') || reports.some((r) => r !== 'applied 2.0.0')) {
    return { landed, before: after.version, problem: `reports: ${reports.join(', ')}` };
  }
  await rm(dir, { recursive: true, force: true });
  return { landed, before: after.version };
}

test(`SIGKILL at random moments of an update, ${TRIALS} trials: zero torn installs, every update completes`, async (t) => {
  const results: Trial[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < TRIALS) results.push(await trial(next++));
  }));
  const counts = new Map<string, { kills: number; atOld: number; atNew: number }>();
  for (const r of results) {
    const c = counts.get(r.landed) ?? { kills: 0, atOld: 0, atNew: 0 };
    c.kills++;
    if (r.before === '1.0.0') c.atOld++;
    if (r.before === '2.0.0') c.atNew++;
    counts.set(r.landed, c);
  }
  const order = ['startup', ...AIM, 'completed'];
  t.diagnostic('kills by the state they landed in (current after the kill: old / new):');
  for (const s of order) {
    const c = counts.get(s);
    if (c) t.diagnostic(`  ${s.padEnd(9)} ${String(c.kills).padStart(3)}   (old ${c.atOld}, new ${c.atNew})`);
  }
  const problems = results.filter((r) => r.problem).map((r) => r.problem);
  assert.deepEqual(problems, [], 'torn or unfinished installs');
  assert.equal(results.length, TRIALS);
  const killedIn = new Set(results.filter((r) => r.landed !== 'completed' && r.landed !== 'startup').map((r) => r.landed));
  assert.ok(killedIn.size >= 7, `kills spread over the states: ${[...killedIn].join(', ')}`);
});
