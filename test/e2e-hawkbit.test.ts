/**
 * The hawkBit DDI (issue 12) with the REAL client: Debian's `swupdate` in suricatta mode polls a
 * real `patchwire serve`, downloads the .swu that `patchwire publish --swu-*` built and signed,
 * installs it into a folder and reports; the registry and `patchwire devices show` follow. The
 * signing certificate is made here with openssl. Skipped (with the reason) where swupdate or
 * openssl is missing; .ci/run installs swupdate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';
import { dashboardDevice } from './helpers/browser.js';
import type { DeviceDetail } from '../src/protocol/wire.js';

const TOKEN = 'hawkbit-admin-token';
const MAC = '02:00:00:00:21:01';
const OTHER = '02:00:00:00:21:02';

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const missing = ['swupdate', 'openssl'].filter((c) => !which(c));
const skip = missing.length ? `needs ${missing.join(' and ')} (apt-get install -y ${missing.join(' ')})` : false;

/** A self-signed RSA certificate and key (what a vendor's .swu signing key would be). */
function makeCert(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.cert.pem`);
  const key = join(dir, `${name}.key.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`], { stdio: 'ignore' });
  return { cert, key };
}

interface Swupdate {
  proc: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/** Runs `swupdate -f cfg -k cert -H board:1.0 -u "<suricatta args>"` with a private TMPDIR (its sockets). */
async function startSwupdate(dir: string, cert: string, suricatta: string, name: string): Promise<Swupdate> {
  const tmp = join(dir, `tmp-${name}`);
  await mkdir(tmp, { recursive: true });
  const proc = spawn('swupdate', ['-f', join(dir, 'swupdate.cfg'), '-k', cert, '-H', 'board:1.0', '-l', '5', '-u', suricatta], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
  proc.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
  const stop = () => new Promise<void>((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    proc.once('exit', () => res());
    proc.kill('SIGTERM');
    setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
  });
  return { proc, output: () => out, stop };
}

async function swupdateConfig(dir: string, url: string, token: string): Promise<void> {
  await writeFile(join(dir, 'swupdate.cfg'), `globals: {
  verbose = true;
  loglevel = 5;
  syslog = false;
};
suricatta: {
  tenant = "acme";
  id = "${MAC}";
  url = "${url}";
  polldelay = 2;
  retry = 2;
  retrywait = 1;
  targettoken = "${token}";
};
identify: (
  { name = "board"; value = "board"; }
);
`);
}

const show = (f: Fleet, mac: string): Promise<DeviceDetail> => runJson<DeviceDetail>(['devices', 'show', mac, ...f.admin(), '--product', 'acme', '--json']);

/** The device's record and history straight from the admin API (cheaper to poll than a CLI process). */
async function detail(f: Fleet, mac: string): Promise<DeviceDetail | undefined> {
  const r = await fetch(`${f.server.url}/v1/admin/products/acme/devices/${mac}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return r.ok ? (await r.json()) as DeviceDetail : undefined;
}

/** One update with the real client, both phases: install ("All Chunks Installed."), then the restart that confirms (-c 2). */
async function updateWithSwupdate(f: Fleet, dir: string, cert: string, version: string): Promise<void> {
  const first = await startSwupdate(dir, cert, '', `${version}-install`);
  try {
    await waitFor(async () => {
      const d = await detail(f, MAC);
      // `installing` is recorded at the first `proceeding` (the download's start): stopping the
      // client then would cut the install short. Wait until it says the install is done too.
      return d?.history.some((h) => h.event === 'installing' && h.version === version) && /SWUPDATE successful/.test(first.output());
    }, { what: `swupdate to install ${version} and report it`, timeout: 120_000, interval: 250, detail: first.output });
  } finally {
    await first.stop();
  }
  const confirm = await startSwupdate(dir, cert, '-c 2', `${version}-confirm`);
  try {
    await waitFor(async () => (await detail(f, MAC))?.device.version === version, { what: `swupdate -c 2 to report ${version} installed`, timeout: 120_000, interval: 250, detail: confirm.output });
  } finally {
    await confirm.stop();
  }
}

test('SWUpdate (suricatta, real binary) installs two releases patchwire built and signed; a .swu signed by another key fails and applies nothing; bad tokens are refused', { skip, timeout: 600_000 }, async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-hawkbit-', server: { args: ['--hawkbit-interval', '3s'] } });
  const dir = join(f.root, 'swupdate');
  const dest = join(dir, 'installed');
  await mkdir(dir, { recursive: true });
  const vendor = makeCert(dir, 'vendor');
  const stranger = makeCert(dir, 'stranger');
  const swu = (c: { cert: string; key: string }) => ['--swu-cert', c.cert, '--swu-key', c.key, '--swu-dest', dest, '--swu-hw', 'board:1.0'];

  const p1 = await f.publish('1.0.0', { VERSION: '1.0.0\n', 'bin/tool.sh': 'echo one\n' }, { extra: [...swu(vendor), '--json'] });
  assert.equal(p1.code, 0, p1.stderr);
  assert.equal((JSON.parse(p1.stdout) as { swu: { actionId: number } }).swu.actionId > 0, true);

  const tok = await runCli(['devices', 'token', ...f.admin(), '--product', 'acme', '--device', MAC]);
  assert.equal(tok.code, 0, tok.stderr);
  const token = tok.stdout.trim();
  assert.match(token, /^pwtt_[A-Za-z0-9_-]{43}$/);

  // Refused: no token, a wrong one, another device's, a gateway token the product never had. Nothing recorded.
  const base = `${f.server.url}/acme/controller/v1/${MAC}`;
  for (const authorization of [undefined, 'TargetToken wrong', `TargetToken ${token}x`, `Bearer ${token}`, 'GatewayToken pwgt_none']) {
    const r = await fetch(base, { headers: authorization ? { authorization } : {} });
    assert.equal(r.status, 401, `${authorization}: ${await r.text()}`);
  }
  const foreign = await fetch(`${f.server.url}/acme/controller/v1/${OTHER}`, { headers: { authorization: `TargetToken ${token}` } });
  assert.equal(foreign.status, 401, 'a TargetToken speaks for its own device only');
  const feedbackForged = await fetch(`${base}/deploymentBase/1/feedback`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'TargetToken forged' },
    body: JSON.stringify({ id: 1, status: { execution: 'closed', result: { finished: 'success' } }, details: [] }),
  });
  assert.equal(feedbackForged.status, 401);
  const before = await show(f, MAC);
  assert.deepEqual([before.device.version, before.history.length], [null, 0], 'refused requests changed nothing');
  assert.equal((await runCli(['devices', 'show', OTHER, ...f.admin(), '--product', 'acme'])).code !== 0, true, 'no record for the foreign id');

  await swupdateConfig(dir, f.server.url, token);
  await updateWithSwupdate(f, dir, vendor.cert, '1.0.0');
  assert.equal(await readFile(join(dest, 'VERSION'), 'utf8'), '1.0.0\n');
  assert.equal(await readFile(join(dest, 'bin', 'tool.sh'), 'utf8'), 'echo one\n');

  const d1 = await show(f, MAC);
  assert.deepEqual([d1.device.version, d1.device.lastEvent, d1.device.channel], ['1.0.0', 'applied', 'stable']);
  assert.deepEqual(d1.history.map((h) => [h.event, h.version]), [['applied', '1.0.0'], ['installing', '1.0.0']], 'repeated feedback recorded once');
  const listed = (await f.devices()).find((d) => d.deviceId === MAC);
  assert.equal(listed?.version, '1.0.0', 'the registry lists it at the new version');
  const people = await runCli(['devices', 'show', MAC, ...f.admin(), '--product', 'acme']);
  assert.match(people.stdout, /version\s+1\.0\.0/);

  // A second release applies too.
  assert.equal((await f.publish('1.1.0', { VERSION: '1.1.0\n', 'bin/tool.sh': 'echo two\n' }, { extra: swu(vendor) })).code, 0);
  await updateWithSwupdate(f, dir, vendor.cert, '1.1.0');
  assert.equal(await readFile(join(dest, 'VERSION'), 'utf8'), '1.1.0\n');
  assert.equal((await show(f, MAC)).device.version, '1.1.0');
  // The dashboard shows it too, in a real browser: its page at 1.1.0, the DDI feedback as its history.
  const seen = await dashboardDevice(t, f.server.url, TOKEN, 'acme', MAC, '1.1.0');
  assert.equal(seen.version, '1.1.0');
  assert.match(seen.history[0] ?? '', /applied\s*1\.1\.0/, seen.history.join(' | '));

  // Signed by a key the device does not trust: SWUpdate refuses it, reports failure; nothing applied.
  assert.equal((await f.publish('1.2.0', { VERSION: '1.2.0\n', 'bin/tool.sh': 'echo three\n' }, { extra: swu(stranger) })).code, 0);
  const bad = await startSwupdate(dir, vendor.cert, '', 'bad');
  try {
    await waitFor(async () => (await detail(f, MAC))?.history.some((h) => h.event === 'failed' && h.version === '1.2.0'), {
      what: 'swupdate to report the badly signed 1.2.0 failed', timeout: 120_000, interval: 250, detail: bad.output,
    });
  } finally {
    await bad.stop();
  }
  const d3 = await show(f, MAC);
  assert.deepEqual([d3.device.version, d3.device.lastEvent], ['1.1.0', 'failed']);
  assert.match(d3.history[0]!.error ?? '', /update to 1\.2\.0 failed/);
  assert.equal(await readFile(join(dest, 'VERSION'), 'utf8'), '1.1.0\n', 'nothing of 1.2.0 was applied');
  // A failed action is not offered again (as a native agent holds back a failed version).
  const after = await (await fetch(base, { headers: { authorization: `TargetToken ${token}` } })).json() as { _links: Record<string, unknown> };
  assert.equal(after._links.deploymentBase, undefined);
});

test('the DDI poll sleep follows the published schedule; a gateway token enrols under the admission policy; uploads are checked', { skip, timeout: 300_000 }, async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-hawkbit-sched-', server: { args: ['--hawkbit-interval', '1h'] } });
  const dir = join(f.root, 'certs');
  await mkdir(dir, { recursive: true });
  const vendor = makeCert(dir, 'vendor');
  const tok = (await runCli(['devices', 'token', ...f.admin(), '--product', 'acme', '--device', MAC])).stdout.trim();
  const poll = async (mac: string, authorization: string) => {
    const r = await fetch(`${f.server.url}/acme/controller/v1/${mac}`, { headers: { authorization } });
    return { status: r.status, body: await r.json() as { config?: { polling: { sleep: string } }; _links?: Record<string, { href: string }> } };
  };
  const first = await poll(MAC, `TargetToken ${tok}`);
  assert.equal(first.status, 200);
  assert.equal(first.body.config!.polling.sleep, '01:00:00', 'no schedule: the interval');
  assert.ok(first.body._links!.configData, 'configData asked for until received');

  // configData received: the link is dropped.
  const cfg = await fetch(`${f.server.url}/acme/controller/v1/${MAC}/configData`, {
    method: 'PUT', headers: { 'content-type': 'application/json', authorization: `TargetToken ${tok}` },
    body: JSON.stringify({ id: '', time: '20260101T000000', status: { result: { finished: 'success' }, execution: 'closed', details: [''] }, data: { board: 'board' } }),
  });
  assert.equal(cfg.status, 200);
  assert.equal((await poll(MAC, `TargetToken ${tok}`)).body._links!.configData, undefined);

  // A schedule 10 minutes ahead (no spread): the device sleeps until it, not its hour.
  const at = new Date(Date.now() + 600_000);
  at.setUTCMilliseconds(0);
  assert.equal((await runCli(['schedule', ...f.admin(), '--product', 'acme', '--at', at.toISOString()])).code, 0);
  const sleep = (await poll(MAC, `TargetToken ${tok}`)).body.config!.polling.sleep;
  const [h, m, s] = sleep.split(':').map(Number) as [number, number, number];
  const secs = h * 3600 + m * 60 + s;
  assert.ok(secs <= 600 && secs >= 540, `sleep ${sleep} runs to the schedule at ${at.toISOString()}`);

  // Gateway token: a device never seen is enrolled under the product's policy (approve: it waits).
  assert.equal((await runCli(['product', 'admission', 'acme', 'approve', ...f.admin()])).code, 0);
  const gw = (await runCli(['product', 'gateway-token', ...f.admin(), '--product', 'acme'])).stdout.trim();
  assert.equal((await poll(OTHER, `GatewayToken ${gw}`)).status, 403, 'pending under approve');
  assert.equal((await runCli(['devices', 'accept', OTHER, ...f.admin(), '--product', 'acme'])).code, 0);
  assert.equal((await poll(OTHER, `GatewayToken ${gw}`)).status, 200, 'accepted');
  // Rotating replaces the old gateway token.
  const gw2 = (await runCli(['product', 'gateway-token', ...f.admin(), '--product', 'acme'])).stdout.trim();
  assert.notEqual(gw2, gw);
  assert.equal((await poll(OTHER, `GatewayToken ${gw}`)).status, 401);
  assert.equal((await poll(OTHER, `GatewayToken ${gw2}`)).status, 200);

  // The .swu is deterministic (same inputs, same bytes) and the server checks what it is given.
  const { buildSwu } = await import('../src/cli/swu-build.js');
  const { packTree } = await import('../src/util/archive-pack.js');
  const tree = join(f.root, 'tree');
  await mkdir(tree, { recursive: true });
  await writeFile(join(tree, 'VERSION'), '2.0.0\n');
  const builds = [];
  for (const n of [1, 2]) {
    const tmp = join(f.root, `swu-${n}`);
    await mkdir(tmp);
    const packed = await packTree(tree, join(tmp, 'release.tar.gz'));
    builds.push(await buildSwu({ product: 'acme', channel: 'stable', version: '2.0.0', archive: join(tmp, 'release.tar.gz'), archiveSha256: packed.sha256, tmp, swu: { cert: vendor.cert, key: vendor.key, dest: '/opt/acme' } }));
  }
  assert.equal(builds[0]!.sha256, builds[1]!.sha256, 'deterministic .swu');
  assert.ok(existsSync(builds[0]!.file));
});
