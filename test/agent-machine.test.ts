/**
 * The update state machine (src/agent/update/machine.ts), table-driven: for each case an injected fault
 * (an error in a state, a crash in a state, a broken or cut download, a corrupt archive, a full
 * disk), the expected chain of states of the faulty run and of the next run, the expected reports
 * the server received, and the version `current` ends at. The agent runs in-process (runCheck with
 * its `faults` hook) against a real `patchwire serve` process behind a proxy (test/helpers/proxy.ts).
 *
 * A crash is simulated by aborting the run in the state (the run stops at once: no further state,
 * no cleanup), then a fresh runCheck, as after a kill; test/e2e-crash.test.ts kills real processes.
 * A full disk is simulated by an ENOSPC error thrown in the state: a tiny tmpfs cannot be mounted here.
 *
 * The second part is the health check end to end with real CLI processes (`init --health-cmd`).
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, runJson, type ServerProcess } from './helpers/cli.js';
import { writeTree, currentLink } from './helpers/files.js';
import { startProxy, type Proxy } from './helpers/proxy.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet, type ReportRow } from './helpers/fleet.js';
import type { DeviceView } from '../src/protocol/wire.js';
import { runCheck, type CheckResult } from '../src/agent/check.js';
import { initAgent } from '../src/agent/init.js';
import { nextState, TRANSITIONS, UPDATE_STATES, SAVED_STATES, RESUME_AT } from '../src/agent/update/machine.js';
import { hashTree } from '../src/util/tree-hash.js';

const TOKEN = 'machine-admin-token';
const suite = Cleanup.forSuite();
let f: Fleet;
let root: string;
let server: ServerProcess;
let proxy: Proxy;
let key: string;
let rootFile: string;
let template: string;
const treeHash: Record<string, string> = {};

const TREE_1 = { 'bin/app': '#!/bin/sh\necho 1.0.0\n', README: 'version one', 'lib/a.js': 'a1' };
const TREE_2 = { 'bin/app': '#!/bin/sh\necho 2.0.0\n', README: 'version two', 'lib/a.js': 'a2', 'lib/b.js': 'b2'.repeat(5000) };

const FULL = ['check', 'delta', 'download', 'verify', 'stage', 'switch', 'health', 'report', 'cleanup', 'done'];
const UNTIL = (s: string) => FULL.slice(0, FULL.indexOf(s) + 1);
const FROM = (s: string) => FULL.slice(FULL.indexOf(s));

async function publish(product: string, version: string, files: Record<string, string>): Promise<string> {
  const dir = await writeTree(join(root, `tree-${product}-${version}`), files);
  const r = await runCli(['publish', '--server', server.url, '--token', TOKEN, '--product', product, '--version', version, '--key', key, dir]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

async function reports(product: string, mac: string): Promise<string[]> {
  const res = await fetch(`${server.url}/v1/admin/products/${product}/devices/${encodeURIComponent(mac)}/reports`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  const rows = (await res.json()) as ReportRow[];
  return rows.map((r) => `${r.event} ${r.version}`);
}

let macCounter = 0;
/** A copy of the template install (at 1.0.0, 2.0.0 published since) with its own device id. */
async function agentAt1(): Promise<{ dir: string; mac: string }> {
  macCounter++;
  const mac = `02:00:00:00:02:${macCounter.toString(16).padStart(2, '0')}`;
  const dir = join(root, `agent-${macCounter}`);
  await cp(template, dir, { recursive: true, verbatimSymlinks: true });
  const statePath = join(dir, '.patchwire', 'state.json');
  const s = JSON.parse(await readFile(statePath, 'utf8')) as Record<string, unknown>;
  await writeFile(statePath, JSON.stringify({ ...s, deviceId: mac }));
  return { dir, mac };
}

interface Run {
  chain: string[];
  result?: CheckResult;
  error?: unknown;
  aborted: boolean;
}

type Fault = (state: string, ctx: { dir: string; abort: () => never }) => void | Promise<void>;

async function run(dir: string, fault?: Fault): Promise<Run> {
  const chain: string[] = [];
  const ac = new AbortController();
  const abort = (): never => {
    ac.abort(new Error('simulated crash'));
    throw ac.signal.reason;
  };
  const out: Run = { chain, aborted: false };
  try {
    out.result = await runCheck({ dir, force: true, signal: ac.signal, faults: async (s) => { chain.push(s); await fault?.(s, { dir, abort }); } });
  } catch (err) {
    out.error = err;
    out.aborted = ac.signal.aborted;
  }
  return out;
}

/** `current` is exactly versions/1.0.0 or versions/2.0.0 (or `want`), with that release's tree hash. */
async function assertTree(dir: string, want?: string): Promise<string> {
  const link = await currentLink(dir);
  const m = /^versions\/(\d+\.\d+\.\d+)$/.exec(link);
  assert.ok(m, `current -> ${link}`);
  const v = m[1]!;
  if (want) assert.equal(v, want);
  assert.equal((await hashTree(join(dir, 'current'))).hash, treeHash[v], `the tree of ${v} is intact`);
  return v;
}

async function assertNoLeftovers(dir: string): Promise<void> {
  assert.equal(existsSync(join(dir, '.patchwire', 'update.json')), false, 'no update in progress');
  const versions = await readdir(join(dir, 'versions'));
  assert.deepEqual(versions.filter((n) => n.endsWith('.partial') || n.startsWith('.')), [], `versions/: ${versions.join(', ')}`);
  assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), []);
  assert.deepEqual((await readdir(join(dir, '.patchwire'))).filter((n) => n.endsWith('.tmp')), []);
}

before(async () => {
  f = await startFleet(suite, { token: TOKEN, prefix: 'patchwire-machine-' });
  ({ root, server, key, rootFile } = f);
  treeHash['1.0.0'] = (await hashTree(await publish('acme', '1.0.0', TREE_1))).hash;
  proxy = await startProxy(server.url);
  suite.after(() => proxy.close());
  template = join(root, 'template');
  await initAgent({ dir: template, server: proxy.url, product: 'acme', rootFile, deviceId: '02:00:00:00:01:00' });
  assert.equal((await runCheck({ dir: template })).version, '1.0.0');
  treeHash['2.0.0'] = (await hashTree(await publish('acme', '2.0.0', TREE_2))).hash;
});

test('the transition table: one row per (state, event), every state reachable, every saved state resumable', () => {
  const seen = new Set<string>();
  for (const [from, event, to] of TRANSITIONS) {
    assert.ok(!seen.has(`${from}/${event}`), `one row for ${from}/${event}`);
    seen.add(`${from}/${event}`);
    assert.ok(UPDATE_STATES.includes(from) && UPDATE_STATES.includes(to));
  }
  const reachable = new Set(['check']);
  for (let i = 0; i < UPDATE_STATES.length; i++) for (const [f, , t] of TRANSITIONS) if (reachable.has(f)) reachable.add(t);
  assert.deepEqual([...reachable].sort(), [...UPDATE_STATES].sort());
  for (const s of SAVED_STATES) assert.ok(UPDATE_STATES.includes(RESUME_AT[s]));
  assert.equal(nextState('health', 'failure'), 'rollback');
  assert.equal(nextState('report', 'failure'), undefined, 'a failure after the switch stops the run; the saved state resumes it');
});

interface Case {
  name: string;
  fault?: Fault;
  /** Set before the first run, reset after it. */
  attack?: Proxy['attack'];
  first: string[];
  /** 'updated' | 'rolled-back' | a RegExp the thrown error matches | 'crash'. */
  firstOutcome: 'updated' | 'rolled-back' | 'crash' | RegExp;
  reportsAfterFirst: string[];
  second: string[];
  secondOutcome: 'updated' | 'rolled-back' | 'up-to-date' | 'held-back';
  reports: string[];
  final: string;
}

const once = (state: string, act: Fault): Fault => {
  let fired = false;
  return (s, ctx) => {
    if (s !== state || fired) return;
    fired = true;
    return act(s, ctx);
  };
};
const both = (...faults: Fault[]): Fault => async (s, ctx) => { for (const f of faults) await f(s, ctx); };
const error = (state: string) => once(state, () => { throw new Error(`injected error in ${state}`); });
const crash = (state: string) => once(state, (_s, { abort }) => abort());
const isTargetDownload = (path: string) => path.includes('/targets/');

const APPLIED = ['applied 2.0.0'];
const FAILED_THEN_APPLIED = ['failed 1.0.0', 'applied 2.0.0'];
const ROLLBACK_CHAIN = [...UNTIL('health'), 'rollback', 'report', 'cleanup', 'done'];

const cases: Case[] = [
  { name: 'no fault', first: FULL, firstOutcome: 'updated', reportsAfterFirst: APPLIED, second: ['check', 'done'], secondOutcome: 'up-to-date', reports: APPLIED, final: '2.0.0' },

  // An error in a state before the switch: report `failed`, clean up, the run fails; the next check updates.
  { name: 'error in check', fault: error('check'), first: ['check', 'done'], firstOutcome: /injected error in check/, reportsAfterFirst: [], second: FULL, secondOutcome: 'updated', reports: APPLIED, final: '2.0.0' },
  ...(['download', 'verify', 'stage'] as const).map((s): Case => ({
    name: `error in ${s}`, fault: error(s), first: [...UNTIL(s), 'report', 'cleanup', 'done'], firstOutcome: new RegExp(`injected error in ${s}`),
    reportsAfterFirst: ['failed 1.0.0'], second: FULL, secondOutcome: 'updated', reports: FAILED_THEN_APPLIED, final: '2.0.0',
  })),
  // A failing delta state is not a failed update: the machine falls back to the full archive.
  { name: 'error in delta', fault: error('delta'), first: FULL, firstOutcome: 'updated', reportsAfterFirst: APPLIED, second: ['check', 'done'], secondOutcome: 'up-to-date', reports: APPLIED, final: '2.0.0' },
  // The switch failed: `current` is put back, `failed` reported; the version is not blocked.
  { name: 'error in switch', fault: error('switch'), first: [...UNTIL('switch'), 'rollback', 'report', 'cleanup', 'done'], firstOutcome: /injected error in switch/, reportsAfterFirst: ['failed 1.0.0'], second: FULL, secondOutcome: 'updated', reports: FAILED_THEN_APPLIED, final: '2.0.0' },
  // The health state failed: rolled back, reported, and the version is never installed again.
  { name: 'error in health', fault: error('health'), first: ROLLBACK_CHAIN, firstOutcome: 'rolled-back', reportsAfterFirst: ['rolled-back 1.0.0'], second: ['check', 'done'], secondOutcome: 'held-back', reports: ['rolled-back 1.0.0'], final: '1.0.0' },
  // Failures after the switch have no row: the run stops and the saved state resumes it.
  { name: 'error in rollback', fault: both(error('health'), error('rollback')), first: UNTIL('health').concat('rollback'), firstOutcome: /injected error in rollback/, reportsAfterFirst: [], second: ['rollback', 'report', 'cleanup', 'done'], secondOutcome: 'rolled-back', reports: ['rolled-back 1.0.0'], final: '1.0.0' },
  ...(['report', 'cleanup', 'done'] as const).map((s): Case => ({
    name: `error in ${s}`, fault: error(s), first: UNTIL(s), firstOutcome: new RegExp(`injected error in ${s}`),
    reportsAfterFirst: s === 'report' ? [] : APPLIED, second: FROM(s), secondOutcome: 'updated', reports: APPLIED, final: '2.0.0',
  })),

  // A crash in each state: the next run resumes from the saved state (states before the switch redo from download).
  { name: 'crash in delta', fault: crash('delta'), first: UNTIL('delta'), firstOutcome: 'crash', reportsAfterFirst: [], second: FROM('delta'), secondOutcome: 'updated', reports: APPLIED, final: '2.0.0' },
  { name: 'crash in check', fault: crash('check'), first: ['check'], firstOutcome: 'crash', reportsAfterFirst: [], second: FULL, secondOutcome: 'updated', reports: APPLIED, final: '2.0.0' },
  ...(['download', 'verify', 'stage'] as const).map((s): Case => ({
    name: `crash in ${s}`, fault: crash(s), first: UNTIL(s), firstOutcome: 'crash', reportsAfterFirst: [], second: FROM('download'), secondOutcome: 'updated', reports: APPLIED, final: '2.0.0',
  })),
  ...(['switch', 'health', 'report', 'cleanup', 'done'] as const).map((s): Case => ({
    name: `crash in ${s}`, fault: crash(s), first: UNTIL(s), firstOutcome: 'crash',
    reportsAfterFirst: FULL.indexOf(s) > FULL.indexOf('report') ? APPLIED : [], second: FROM(s), secondOutcome: 'updated', reports: APPLIED, final: '2.0.0',
  })),
  { name: 'crash in rollback', fault: both(error('health'), crash('rollback')), first: UNTIL('health').concat('rollback'), firstOutcome: 'crash', reportsAfterFirst: [], second: ['rollback', 'report', 'cleanup', 'done'], secondOutcome: 'rolled-back', reports: ['rolled-back 1.0.0'], final: '1.0.0' },

  // Broken downloads through the proxy.
  {
    name: 'broken download: the server answers wrong bytes (sha256 mismatch)',
    attack: (req, up) => {
      if (!isTargetDownload(req.path) || up.status !== 200) return undefined;
      const body = Buffer.from(up.body);
      body[body.length >> 1]! ^= 0xff;
      return { body };
    },
    first: [...UNTIL('verify'), 'report', 'cleanup', 'done'], firstOutcome: /sha256/, reportsAfterFirst: ['failed 1.0.0'], second: FULL, secondOutcome: 'updated', reports: FAILED_THEN_APPLIED, final: '2.0.0',
  },
  {
    name: 'broken download: the connection breaks half-way (retry: kept for a Range resume, no report)',
    attack: (req, up) => (isTargetDownload(req.path) && up.status === 200 && !req.headers.range ? { cutAfter: up.body.length >> 1 } : undefined),
    first: ['check', 'delta', 'download', 'cleanup', 'done'], firstOutcome: /broke after \d+ of \d+ bytes/, reportsAfterFirst: [], second: FULL, secondOutcome: 'updated', reports: APPLIED, final: '2.0.0',
  },
  {
    name: 'corrupt archive: the verified download rots on disk before stage',
    fault: once('stage', async (_s, { dir }) => {
      const downloads = join(dir, '.patchwire', 'downloads');
      for (const f of await readdir(downloads)) {
        const p = join(downloads, f);
        const bytes = await readFile(p);
        bytes.fill(0x5a, 10, bytes.length - 10);
        await writeFile(p, bytes);
      }
    }),
    first: [...UNTIL('stage'), 'report', 'cleanup', 'done'], firstOutcome: /./, reportsAfterFirst: ['failed 1.0.0'], second: FULL, secondOutcome: 'updated', reports: FAILED_THEN_APPLIED, final: '2.0.0',
  },
  {
    name: 'full disk (simulated ENOSPC) while staging',
    fault: once('stage', () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); }),
    first: [...UNTIL('stage'), 'report', 'cleanup', 'done'], firstOutcome: /ENOSPC/, reportsAfterFirst: ['failed 1.0.0'], second: FULL, secondOutcome: 'updated', reports: FAILED_THEN_APPLIED, final: '2.0.0',
  },
];

describe('injected faults: chain of states, reports, final tree', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const { dir, mac } = await agentAt1();
      proxy.attack = c.attack;
      let first: Run;
      try {
        first = await run(dir, c.fault);
      } finally {
        proxy.attack = undefined;
      }
      assert.deepEqual(first.chain, c.first, 'chain of the faulty run');
      if (c.firstOutcome === 'crash') {
        assert.ok(first.aborted, `the run was cut short: ${String(first.error)}`);
      } else if (c.firstOutcome instanceof RegExp) {
        assert.ok(first.error, `the run fails (got ${JSON.stringify(first.result)})`);
        assert.match(String((first.error as Error).message), c.firstOutcome);
      } else {
        assert.equal(first.error, undefined, String(first.error));
        assert.equal(first.result?.result, c.firstOutcome);
      }
      await assertTree(dir);
      assert.deepEqual(await reports('acme', mac), c.reportsAfterFirst, 'reports after the faulty run');

      const second = await run(dir);
      assert.equal(second.error, undefined, String((second.error as Error | undefined)?.stack));
      assert.deepEqual(second.chain, c.second, 'chain of the next run');
      assert.equal(second.result?.result, c.secondOutcome);
      assert.equal(second.result?.version, c.final);
      await assertTree(dir, c.final);
      await assertNoLeftovers(dir);
      assert.deepEqual(await reports('acme', mac), c.reports, 'reports to the server');
      const state = JSON.parse(await readFile(join(dir, '.patchwire', 'state.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(state.version, c.final);
      assert.equal(state.pendingReport, null);
      assert.equal(state.rolledBack, c.final === '1.0.0' ? '2.0.0' : null);
      if (c.final === '2.0.0') assert.deepEqual((await readdir(join(dir, 'versions'))).sort(), ['1.0.0', '2.0.0']);
      else assert.deepEqual(await readdir(join(dir, 'versions')), ['1.0.0'], 'the version rolled back from is deleted');
      assert.deepEqual(await readdir(join(dir, '.patchwire', 'downloads')), [], 'downloads are removed after the update');
    });
  }
});

describe('health check, end to end with the CLI (init --health-cmd, --keep)', () => {
  const MAC = '02:00:00:00:03:01';
  let hcRoot: string;
  let dir: string;
  const health = (script: string, v: string) => ({ 'bin/health': `#!/bin/sh\n${script}\n`, VERSION: v });
  const check = () => runJson<CheckResult>(['check', '--dir', dir, '--json', '--force']);
  /** A check that rolls back exits 1 (issue 8) and still prints its result under --json. */
  const checkRolledBack = async () => {
    const out = await runCli(['check', '--dir', dir, '--json', '--force']);
    assert.equal(out.code, 1, out.stderr);
    return JSON.parse(out.stdout) as CheckResult;
  };
  const versions = async () => (await readdir(join(dir, 'versions'))).sort();

  before(async () => {
    hcRoot = join(root, 'hc.root.json');
    const r = await runCli(['product', 'create', '--server', server.url, '--token', TOKEN, '--product', 'hc', '--key', key, '--root-out', hcRoot]);
    assert.equal(r.code, 0, r.stderr);
    await publish('hc', '1.0.0', health('exit 0', '1.0.0'));
    dir = join(root, 'hc-agent');
    const init = await runCli(['init', '--dir', dir, '--server', server.url, '--product', 'hc', '--root', hcRoot, '--device-id', MAC,
      '--health-cmd', 'test "$PATCHWIRE_VERSION" = "$(cat VERSION)" && sh bin/health', '--health-timeout', '2s', '--keep', '1']);
    assert.equal(init.code, 0, init.stderr);
    const s = JSON.parse(await readFile(join(dir, '.patchwire', 'state.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(s.healthTimeoutSeconds, 2);
    assert.equal(s.keep, 1);
  });

  test('a healthy first install', async () => {
    const r = await check();
    assert.equal(r.result, 'updated');
    assert.equal(r.version, '1.0.0');
  });

  test('a release whose health command fails is rolled back, reported, and not installed again', async () => {
    await publish('hc', '2.0.0', health('echo broken >&2; exit 3', '2.0.0'));
    const r = await checkRolledBack();
    assert.equal(r.result, 'rolled-back');
    assert.equal(r.version, '1.0.0');
    assert.equal(r.rolledBackFrom, '2.0.0');
    assert.equal(await currentLink(dir), 'versions/1.0.0');
    assert.deepEqual(await versions(), ['1.0.0']);
    assert.deepEqual(await reports('hc', MAC), ['applied 1.0.0', 'rolled-back 1.0.0']);
    const res = await fetch(`${server.url}/v1/admin/products/hc/devices/${encodeURIComponent(MAC)}/reports`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const rows = (await res.json()) as ReportRow[];
    assert.match(rows.at(-1)!.detail ?? '', /exited 3.*broken/);
    const devices = await runJson<DeviceView[]>(['devices', '--server', server.url, '--token', TOKEN, '--product', 'hc', '--json']);
    assert.equal(devices.find((d) => d.deviceId === MAC)?.version, '1.0.0');

    const again = await check();
    assert.equal(again.result, 'held-back', 'issue 8: held back, not "up to date"');
    assert.equal(again.heldBack, '2.0.0');
    assert.equal(again.version, '1.0.0');
    assert.deepEqual(await reports('hc', MAC), ['applied 1.0.0', 'rolled-back 1.0.0']);
  });

  test('a health command that hangs is timed out and rolled back', async () => {
    await publish('hc', '2.5.0', health('sleep 30', '2.5.0'));
    const t0 = Date.now();
    const r = await checkRolledBack();
    assert.ok(Date.now() - t0 < 15_000, 'the timeout applied');
    assert.equal(r.result, 'rolled-back');
    assert.equal(r.rolledBackFrom, '2.5.0');
    assert.equal(await currentLink(dir), 'versions/1.0.0');
    const res = await fetch(`${server.url}/v1/admin/products/hc/devices/${encodeURIComponent(MAC)}/reports`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const rows = (await res.json()) as ReportRow[];
    assert.match(rows.at(-1)!.detail ?? '', /timed out after 2 s/);
  });

  test('a later, higher release installs; --keep 1 keeps one previous version', async () => {
    await publish('hc', '3.0.0', health('exit 0', '3.0.0'));
    const r = await check();
    assert.equal(r.result, 'updated');
    assert.equal(r.previousVersion, '1.0.0');
    assert.equal(r.version, '3.0.0');
    assert.deepEqual(await versions(), ['1.0.0', '3.0.0']);
    await publish('hc', '4.0.0', health('exit 0', '4.0.0'));
    assert.equal((await check()).version, '4.0.0');
    assert.deepEqual(await versions(), ['3.0.0', '4.0.0'], '1.0.0 is pruned, 3.0.0 (the rollback target) stays');
    assert.deepEqual((await reports('hc', MAC)).slice(-2), ['applied 3.0.0', 'applied 4.0.0']);
    // Manual rollback still works to the kept previous version.
    const rb = await runCli(['rollback', '--dir', dir]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(await currentLink(dir), 'versions/3.0.0');
  });
});
