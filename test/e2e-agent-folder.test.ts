/**
 * One install folder, several processes (issue 8, "Agent"): the folder lock between real
 * `patchwire check` processes (a second one waits or names the holder; a SIGKILLed holder's lock
 * is taken over), SIGTERM/SIGINT during a long download (throttled by a proxy) for `check` and
 * `agent` (stop at once, say so, exit 143/130, resume by Range next time), and the same device id
 * in two folders of one product (a warning in the check answer).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { readCurrent } from './helpers/files.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { startProxy, type Proxy, type Seen } from './helpers/proxy.js';
import { waitFor } from './helpers/wait-for.js';
import type { CheckResult } from '../src/agent/check.js';

const TOKEN = 'folder-admin-token';
const suite = Cleanup.forSuite();
let f: Fleet;
/** About 4 MB of incompressible text: at 1 MB/s through the proxy, a download of about 4 s. */
const BIG = randomBytes(3_000_000).toString('base64');
const RATE = 1_000_000;

before(async () => {
  f = await startFleet(suite, { token: TOKEN, prefix: 'patchwire-folder-', releases: [['1.0.0', { README: 'one', 'data.bin': BIG }]] });
});

let macCounter = 0x10;
const nextMac = () => `02:00:00:00:08:${(macCounter++).toString(16).padStart(2, '0')}`;
const isTarget = (s: Seen) => s.method === 'GET' && s.path.includes('/targets/');

/** A proxy in front of the fleet's server that sends target downloads slowly. */
async function slowProxy(): Promise<Proxy> {
  const p = await startProxy(f.server.url, (req) => (isTarget(req) ? { throttle: RATE } : undefined));
  suite.after(() => p.close());
  return p;
}

interface Running {
  proc: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; at: number }>;
}

/** A real `patchwire ARGS` process that the test can signal. */
function spawnCli(args: string[]): Running {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATCHWIRE_TOKEN: undefined } });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  suite.after(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  const done = new Promise<Awaited<Running['done']>>((res) => proc.on('close', (code, signal) => res({ code, signal, stdout, stderr, at: Date.now() })));
  return { proc, done };
}

/** Bytes of the partial download in the folder (0 when none yet). */
async function partBytes(dir: string): Promise<number> {
  const downloads = join(dir, '.patchwire', 'downloads');
  const names = await readdir(downloads).catch(() => [] as string[]);
  const part = names.find((n) => n.endsWith('.part'));
  return part ? (await stat(join(downloads, part))).size : 0;
}

const downloading = (dir: string, what: string) => waitFor(async () => (await partBytes(dir)) > 0, { what, timeout: 20_000 });

test('lock: a second check on a busy folder names the holder, a third waits for it; both never corrupt the download', async () => {
  const proxy = await slowProxy();
  const dir = await f.initAgent('locked', nextMac(), { server: proxy.url });
  const first = spawnCli(['check', '--dir', dir, '--json']);
  await downloading(dir, 'the first check to be downloading');

  const busy = await runCli(['check', '--dir', dir, '--json', '--force', '--lock-wait', '0s']);
  assert.equal(busy.code, 1, busy.stderr);
  assert.match(busy.stderr, new RegExp(`in use by another patchwire process \\(pid ${first.proc.pid}, \`check\``));
  assert.doesNotMatch(busy.stderr, /ENOENT/);

  // Within the default wait (10 s) the first finishes; the waiter then runs on a whole folder.
  const waiter = runCli(['check', '--dir', dir, '--json', '--force']);
  const a = await first.done;
  assert.equal(a.code, 0, a.stderr);
  assert.equal((JSON.parse(a.stdout) as CheckResult).result, 'updated');
  const w = await waiter;
  assert.equal(w.code, 0, w.stderr);
  assert.equal((JSON.parse(w.stdout) as CheckResult).result, 'up-to-date');
  assert.equal(await readCurrent(dir, 'data.bin'), BIG);
  assert.equal(existsSync(join(dir, '.patchwire', 'lock')), false, 'the lock is released');
});

test('lock: the lock of a SIGKILLed holder is stale; the next check takes it over and resumes the download', async () => {
  const proxy = await slowProxy();
  const dir = await f.initAgent('killed', nextMac(), { server: proxy.url });
  const first = spawnCli(['check', '--dir', dir, '--json']);
  await downloading(dir, 'the first check to be downloading');
  first.proc.kill('SIGKILL');
  await first.done;
  const lock = JSON.parse(await readFile(join(dir, '.patchwire', 'lock'), 'utf8')) as { pid: number };
  assert.equal(lock.pid, first.proc.pid, 'the killed holder left its lock');

  proxy.attack = undefined; // Full speed now.
  const next = await runCli(['check', '--dir', dir, '--json', '--lock-wait', '0s']);
  assert.equal(next.code, 0, next.stderr);
  const r = JSON.parse(next.stdout) as CheckResult;
  assert.equal(r.result, 'updated');
  assert.ok(proxy.seen.some((s) => isTarget(s) && /^bytes=[1-9]\d*-$/.test(String(s.headers.range))), 'the download resumed by Range');
  assert.equal(await readCurrent(dir, 'data.bin'), BIG);
});

test('SIGTERM during a long download: check stops within a second, says where it resumes, exits 143; the next check resumes by Range', async (t) => {
  const proxy = await slowProxy();
  const dir = await f.initAgent('sigterm', nextMac(), { server: proxy.url });
  const run = spawnCli(['check', '--dir', dir, '--json']);
  await downloading(dir, 'the check to be downloading');
  const sent = Date.now();
  run.proc.kill('SIGTERM');
  const r = await run.done;
  assert.equal(r.code, 143, r.stderr);
  assert.ok(r.at - sent < 1500, `stopped ${r.at - sent} ms after SIGTERM`);
  t.diagnostic(`check stopped ${r.at - sent} ms after SIGTERM`);
  const m = /stopped by SIGTERM; the download resumes at byte (\d+) on the next check/.exec(r.stderr);
  assert.ok(m, r.stderr);
  const at = Number(m[1]);
  assert.equal(await partBytes(dir), at, 'the partial file holds what the message says');

  proxy.attack = undefined;
  const next = await runCli(['check', '--dir', dir, '--json']);
  assert.equal(next.code, 0, next.stderr);
  const c = JSON.parse(next.stdout) as CheckResult;
  assert.equal(c.result, 'updated');
  assert.equal(c.patch?.resumedFrom, at, 'resumed from where it stopped');
  assert.ok(proxy.seen.some((s) => isTarget(s) && s.headers.range === `bytes=${at}-`), 'the proxy saw the Range request');
  const archive = (await f.releases()).find((x) => x.version === '1.0.0')!;
  assert.equal(c.patch?.bytes, archive.length - at, 'bytes counts only what this run transferred');
  assert.equal(await readCurrent(dir, 'data.bin'), BIG);
});

test('SIGINT to the agent during a long download: forwarded to its check child; stops within a second, exits 130; the next check resumes', async (t) => {
  const proxy = await slowProxy();
  const dir = await f.initAgent('agent-sigint', nextMac(), { server: proxy.url });
  const agent = spawnCli(['agent', '--dir', dir]);
  await downloading(dir, "the agent's check to be downloading");
  const sent = Date.now();
  agent.proc.kill('SIGINT');
  const r = await agent.done;
  assert.equal(r.code, 130, `${r.stdout}\n${r.stderr}`);
  assert.ok(r.at - sent < 1500, `stopped ${r.at - sent} ms after SIGINT`);
  t.diagnostic(`agent stopped ${r.at - sent} ms after SIGINT`);
  assert.match(r.stderr, /stopped by SIGINT; the download resumes at byte \d+ on the next check/);
  assert.equal(existsSync(join(dir, '.patchwire', 'lock')), false, 'the child released the lock');

  proxy.attack = undefined;
  const next = await runCli(['check', '--dir', dir, '--json']);
  assert.equal(next.code, 0, next.stderr);
  const c = JSON.parse(next.stdout) as CheckResult;
  assert.equal(c.result, 'updated');
  assert.ok((c.patch?.resumedFrom ?? 0) > 0, 'resumed');
  assert.equal(await readCurrent(dir, 'data.bin'), BIG);
});

test('two folders of one product with the same device id: a second key waits; a copied folder is warned; other ids are not', async () => {
  const mac = nextMac();
  const a = await f.initAgent('same-a', mac);
  const fresh = await f.initAgent('same-fresh', mac);
  const c = await f.initAgent('other-c', nextMac());
  const ra = await runCli(['check', '--dir', a, '--json']);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal((JSON.parse(ra.stdout) as CheckResult).warnings, undefined);
  // A second folder made by init has a key of its own: an identity conflict (issue 9), not a silent share.
  const rf = await runCli(['check', '--dir', fresh, '--json']);
  assert.equal(rf.code, 3, rf.stderr);
  assert.match(rf.stderr, /bound to another key.*own device id: `patchwire init --device-id MAC`/);
  // A copy of the folder holds the same key; with an install id of its own the server warns.
  const b = f.agentDir('same-b');
  await cp(a, b, { recursive: true, verbatimSymlinks: true });
  await rm(join(b, '.patchwire', 'install-id'));
  const rb = await runCli(['check', '--dir', b, '--json', '--force']);
  assert.equal(rb.code, 0, rb.stderr);
  const w = (JSON.parse(rb.stdout) as CheckResult).warnings ?? [];
  assert.equal(w.length, 1, rb.stdout);
  assert.match(w[0]!, new RegExp(`device id ${mac} of acme is used by two install folders`));
  assert.match(rb.stderr, /warning: device id .* --device-id/);
  assert.match(f.server.output(), /used by two install folders/, 'the server logs it');
  const rc = await runCli(['check', '--dir', c, '--json']);
  assert.equal((JSON.parse(rc.stdout) as CheckResult).warnings, undefined);
});

test('init checks product and channel with the server: a typo is exit 2 and writes nothing; --json says what was checked', async () => {
  const init = (name: string, ...extra: string[]) =>
    runCli(['init', '--dir', f.agentDir(name), '--server', f.server.url, '--product', 'acme', '--root', f.rootFile, '--device-id', nextMac(), ...extra]);
  const product = await runCli(['init', '--dir', f.agentDir('typo-product'), '--server', f.server.url, '--product', 'acmee', '--root', f.rootFile]);
  assert.equal(product.code, 2, product.stderr);
  assert.match(product.stderr, /has no product 'acmee'.*nothing was written/);
  assert.equal(existsSync(f.agentDir('typo-product')), false);

  const channel = await init('typo-channel', '--channel', 'betta');
  assert.equal(channel.code, 2, channel.stderr);
  assert.match(channel.stderr, /acme at .* has no channel 'betta'.*its channels: stable\b/);
  assert.equal(existsSync(f.agentDir('typo-channel')), false);

  const ok = await init('checked', '--json');
  assert.equal(ok.code, 0, ok.stderr);
  const doc = JSON.parse(ok.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(doc).sort(), ['channel', 'deviceId', 'dir', 'product', 'server', 'serverCheck']);
  assert.deepEqual(doc.serverCheck, { verdict: 'ok', channels: ['stable'] });

  const human = await init('human');
  assert.match(human.stdout, /the server knows this product and channel.*device id [0-9a-f:]+: one record per product on the server/);
});

test('init with the server down still initialises, with a warning; a check on an unknown channel is an error naming the channels', async () => {
  const down = await startProxy(f.server.url);
  const url = down.url;
  await down.close(); // Nothing listens there any more.
  const dir = f.agentDir('offline');
  const r = await runCli(['init', '--dir', dir, '--server', url, '--product', 'acme', '--channel', 'betta', '--root', f.rootFile, '--device-id', nextMac(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: could not check product and channel with the server .*initialised anyway/);
  assert.equal((JSON.parse(r.stdout) as { serverCheck: { verdict: string } }).serverCheck.verdict, 'unreachable');

  // The folder names a channel the product lacks: the check says so (it used to be "up-to-date" forever).
  const betta = await f.initAgent('betta', nextMac(), { extra: ['--channel', 'betta', '--skip-server-check'] });
  const c = await runCli(['check', '--dir', betta, '--json']);
  assert.equal(c.code, 2, c.stderr);
  assert.match(c.stderr, /404 PW_UNKNOWN_CHANNEL: acme has no channel 'betta'.*its channels: stable/);
  const raw = await fetch(`${f.server.url}/v1/products/acme/channels`).then((x) => x.json());
  assert.deepEqual(raw, { product: 'acme', channels: ['stable'] });
});

test('a product with no release yet: init and checks on its default channel stable are accepted', async () => {
  const rootFile = await f.createProduct({ product: 'fresh' });
  const dir = f.agentDir('fresh');
  const r = await runCli(['init', '--dir', dir, '--server', f.server.url, '--product', 'fresh', '--root', rootFile, '--device-id', nextMac(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { serverCheck: unknown }).serverCheck, { verdict: 'ok', channels: ['stable'] });
  const c = await runCli(['check', '--dir', dir, '--json']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((JSON.parse(c.stdout) as CheckResult).result, 'up-to-date');
  const beta = await runCli(['init', '--dir', f.agentDir('fresh-beta'), '--server', f.server.url, '--product', 'fresh', '--channel', 'beta', '--root', rootFile]);
  assert.equal(beta.code, 2, beta.stderr);
});
