/**
 * The Mender device API with the REAL client (Debian `mender-client` 3.4): the unmodified `mender`
 * binary, pointed at a `patchwire serve` on 127.0.0.1, enrols (auto admission), polls, downloads
 * the Mender artifact patchwire built from the release's tree, installs it with the `directory`
 * update module and reports success; `patchwire devices show` has it at the new version; a
 * second release applies too; a release whose folder the module cannot write ends in a failure
 * report with the client's log, and nothing applied; the dashboard (a real chromium) shows the
 * device at its new version. A second test puts a proxy between client and server: a staged
 * rollout aborted while the client downloads gets 409 at its next status, so it stops before it
 * installs; an artifact changed on the way is refused by the client's own reader. Both end in a
 * failure report and nothing applied.
 *
 * The client needs its fixed paths (/etc/mender, /usr/share/mender, /var/lib/mender), so it runs
 * in a private mount namespace (unshare -m) in a chroot made of bind mounts and a tmpfs: /usr of
 * this machine read-only, a tmpfs over its usr/share holding only the module and the identity
 * script, a copy of /etc, and /dev, /proc, /sys. Needs root and the binary; skipped otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { startFleet } from './helpers/fleet.js';
import { waitFor } from './helpers/wait-for.js';
import { dashboardDevice } from './helpers/browser.js';
import { freePort } from './helpers/ports.js';
import { startProxy } from './helpers/proxy.js';
import { rolloutPlacement } from '../src/protocol/rollout.js';
import type { DeviceDetail } from '../src/protocol/wire.js';

const MENDER = '/usr/bin/mender';
const TOKEN = 'mender-e2e-admin-token';
const MAC = '02:00:00:00:4d:01';
const DEST = '/opt/acme';
const MODULE = '/usr/share/mender/modules/v3/directory';

function why(): string | undefined {
  if (!existsSync(MENDER)) return 'the mender binary is not installed (apt-get install mender-client)';
  if (process.getuid?.() !== 0) return 'needs root (a private mount namespace and a chroot for the client\'s fixed paths)';
  if (!existsSync(MODULE)) return `the directory update module ${MODULE} is missing`;
  if (spawnSync('unshare', ['-m', 'true']).status !== 0) return 'unshare -m is not permitted here';
  return undefined;
}

/** The chroot's own files: written before the client starts, on the host side of the bind mounts. */
async function prepareRoot(root: string, serverUrl: string): Promise<void> {
  for (const d of ['usr', 'etc', 'dev', 'proc', 'sys', 'tmp', 'var/lib/mender', 'opt', 'run', 'share']) await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, 'share', 'mender-device-identity'), `#!/bin/sh\necho mac=${MAC}\n`, { mode: 0o755 });
  await writeFile(join(root, 'share', 'mender.conf'), JSON.stringify({
    ServerURL: serverUrl,
    UpdatePollIntervalSeconds: 5,
    InventoryPollIntervalSeconds: 5,
    RetryPollIntervalSeconds: 5,
    DBus: { Enabled: false },
  }));
  await writeFile(join(root, 'var/lib/mender/device_type'), 'device_type=acme\n');
}

/** The shell run inside `unshare -m`: mounts, then exec chroot mender. */
function script(root: string): string {
  const r = JSON.stringify(root);
  return [
    'set -e',
    `mount --make-rprivate /`,
    `mount --bind /usr ${r}/usr`,
    `mount -o remount,bind,ro ${r}/usr`,
    `mount -t tmpfs tmpfs ${r}/usr/share`,
    `mkdir -p ${r}/usr/share/mender/modules/v3 ${r}/usr/share/mender/identity ${r}/usr/share/mender/inventory`,
    `cp ${MODULE} ${r}/usr/share/mender/modules/v3/directory`,
    `cp ${r}/share/mender-device-identity ${r}/usr/share/mender/identity/mender-device-identity`,
    `cp -a /etc/. ${r}/etc/`,
    `mkdir -p ${r}/etc/mender && cp ${r}/share/mender.conf ${r}/etc/mender/mender.conf`,
    `echo artifact_name=factory > ${r}/etc/mender/artifact_info`,
    `for l in bin sbin lib lib64; do [ -e ${r}/$l ] || ln -s usr/$l ${r}/$l; done`,
    `mount --rbind /dev ${r}/dev`,
    `mount -t proc proc ${r}/proc`,
    `mount --rbind /sys ${r}/sys`,
    `chmod 1777 ${r}/tmp`,
    `exec chroot ${r} /usr/bin/mender --no-syslog daemon`,
  ].join('\n');
}

function startMender(root: string): { proc: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const proc = spawn('unshare', ['-m', 'sh', '-c', script(root)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = () => new Promise<void>((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    proc.once('exit', () => res());
    proc.kill('SIGKILL');
  });
  return { proc, output: () => out.slice(-6000), stop };
}

test('the real Mender client enrols, installs two releases patchwire built, and reports a failed one with its log', { timeout: 600_000 }, async (t) => {
  const skip = why();
  if (skip) return t.skip(skip);
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-mender-', releases: [['1.0.0', { 'VERSION': '1.0.0', 'bin/run.sh': '#!/bin/sh\necho 1.0.0\n' }]] });
  const set = await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', DEST]);
  assert.equal(set.code, 0, set.stderr);

  const root = join(f.root, 'device');
  await prepareRoot(root, f.server.url);
  const mender = startMender(root);
  t.after(() => mender.stop());
  const detail = () => `--- mender ---\n${mender.output()}\n--- server ---\n${f.server.output().slice(-4000)}`;
  const show = () => runJson<DeviceDetail>(['devices', 'show', MAC, ...f.admin(), '--product', 'acme', '--json']);
  const atVersion = (v: string) => waitFor(async () => {
    const d = await show();
    return d.device.version === v ? d : undefined;
  }, { what: `the Mender device to report ${v} applied`, timeout: 240_000, interval: 1000, detail });

  // 1. Enrols under auto admission, polls, gets 1.0.0, installs it into the folder, reports success.
  const first = await atVersion('1.0.0');
  assert.equal(first.device.status, 'accepted');
  assert.equal(await readFile(join(root, DEST, 'VERSION'), 'utf8'), '1.0.0');
  assert.deepEqual((await readdir(join(root, DEST))).sort(), ['VERSION', 'bin']);
  const events = first.history.map((h) => `${h.event} ${h.version}`);
  assert.ok(events.includes('applied 1.0.0') && events.includes('downloading 1.0.0') && events.includes('installing 1.0.0'), events.join(', '));
  assert.equal(events.filter((e) => e === 'applied 1.0.0').length, 1, 'a repeated status is one report');

  // 2. A second release applies too.
  assert.equal((await f.publish('1.1.0', { 'VERSION': '1.1.0', 'bin/run.sh': '#!/bin/sh\necho 1.1.0\n', 'new.txt': 'new' })).code, 0);
  await atVersion('1.1.0');
  assert.equal(await readFile(join(root, DEST, 'VERSION'), 'utf8'), '1.1.0');
  assert.equal(await readFile(join(root, DEST, 'new.txt'), 'utf8'), 'new');
  const human = await runCli(['devices', 'show', MAC, ...f.admin(), '--product', 'acme']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /version\s+1\.1\.0/);
  // The dashboard shows it too, in a real browser: its page at 1.1.0, the Mender statuses as its history.
  const seen = await dashboardDevice(t, f.server.url, TOKEN, 'acme', MAC, '1.1.0');
  assert.equal(seen.version, '1.1.0');
  assert.match(seen.history[0] ?? '', /applied\s*1\.1\.0/, seen.history.join(' | '));
  assert.ok(seen.history.some((r) => /installing/.test(r)), seen.history.join(' | '));

  // 3. A release into a folder the module cannot create (inside /proc): failure, its log, nothing applied.
  const bad = await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', '/proc/patchwire-cannot-write']);
  assert.equal(bad.code, 0, bad.stderr);
  assert.equal((await f.publish('1.2.0', { 'VERSION': '1.2.0' })).code, 0);
  const failed = await waitFor(async () => {
    const d = await show();
    return d.history.find((h) => h.event === 'failed' && h.version === '1.2.0' && /Mender client\): /.test(h.error ?? '')) ? d : undefined;
  }, { what: 'a failure report of 1.2.0 with its log', timeout: 240_000, interval: 1000, detail });
  assert.equal(failed.device.version, '1.1.0', 'nothing applied');
  const report = failed.history.find((h) => h.event === 'failed' && h.version === '1.2.0')!;
  assert.match(report.error ?? '', /^update to 1\.2\.0 failed \(Mender client\): /);
  assert.ok((report.error ?? '').length <= 1000);
  assert.equal(await readFile(join(root, DEST, 'VERSION'), 'utf8'), '1.1.0', 'the installed folder is untouched');
});

test('the real Mender client stops an update whose staged rollout is aborted while it downloads (409), refuses an artifact broken on the way, reports both failures, and installs nothing', { timeout: 600_000 }, async (t) => {
  const skip = why();
  if (skip) return t.skip(skip);
  // The client reaches the server through a proxy on 127.0.0.1 (its API and, by --public-url, the
  // downloads): when it fetches 1.1.0's artifact, the operator aborts that release's rollout.
  const port = await freePort();
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  let aborted = false;
  let corrupted = 0;
  const proxy = await startProxy(`http://127.0.0.1:${port}`, async (seen, up) => {
    if (!aborted && fleet && seen.method === 'GET' && seen.path.startsWith('/api/devices/v1/download/acme/1.1.0/')) {
      aborted = true;
      const r = await runCli(['rollout', 'abort', ...fleet.admin(), '--product', 'acme']);
      assert.equal(r.code, 0, r.stderr);
    }
    if (seen.method === 'GET' && seen.path.startsWith('/api/devices/v1/download/acme/1.2.0/') && up.status === 200) {
      // A broken artifact: one byte of the payload changed on the way (the last 1 KiB is tar padding of the archive's end).
      corrupted++;
      const body = Buffer.from(up.body);
      body[body.length - 2048] = body[body.length - 2048]! ^ 0xff;
      return { body };
    }
    return undefined;
  });
  t.after(() => proxy.close());
  const f = await startFleet(t, {
    token: TOKEN, prefix: 'patchwire-mender-abort-', releases: [['1.0.0', { 'VERSION': '1.0.0' }]],
    server: { args: ['--port', String(port), '--public-url', proxy.url] },
  });
  fleet = f;
  assert.equal((await runCli(['product', 'update', ...f.admin(), '--product', 'acme', '--mender-dest', DEST])).code, 0);
  const root = join(f.root, 'device');
  await prepareRoot(root, proxy.url);
  const mender = startMender(root);
  t.after(() => mender.stop());
  const detail = () => `--- mender ---\n${mender.output()}\n--- server ---\n${f.server.output().slice(-4000)}`;
  const show = () => runJson<DeviceDetail>(['devices', 'show', MAC, ...f.admin(), '--product', 'acme', '--json']);
  await waitFor(async () => (await show()).device.version === '1.0.0', { what: 'the Mender device at 1.0.0', timeout: 240_000, interval: 1000, detail });

  // 1.1.0 staged with a first phase that holds this device (placement: MAC, product, version).
  const inside = Math.min(99, Math.floor(rolloutPlacement(MAC, 'acme', '1.1.0')) + 1);
  const p = await f.publish('1.1.0', { 'VERSION': '1.1.0' }, { extra: ['--rollout', `${inside}%,100%`, '--every', '1h'] });
  assert.equal(p.code, 0, p.stderr);
  const failed = await waitFor(async () => {
    const d = await show();
    return d.history.find((h) => h.event === 'failed' && h.version === '1.1.0') ? d : undefined;
  }, { what: 'the client to report 1.1.0 failed after the abort', timeout: 240_000, interval: 1000, detail });
  assert.equal(aborted, true, 'the rollout was aborted during the download');
  assert.match(failed.history.find((h) => h.event === 'failed')!.error ?? '', /aborted at the backend/, detail());
  assert.equal(failed.device.version, '1.0.0', 'nothing applied');
  assert.equal(failed.history.some((h) => h.event === 'installing' && h.version === '1.1.0'), false, 'the refused installing status recorded nothing');
  assert.ok(proxy.seen.some((s) => s.method === 'PUT' && /\/deployments\/acme%401\.1\.0\/status$|\/deployments\/acme@1\.1\.0\/status$/.test(s.path) && s.upstreamStatus === 409), 'the client was answered 409');
  assert.equal(await readFile(join(root, DEST, 'VERSION'), 'utf8'), '1.0.0', 'the installed folder is untouched');

  // A broken artifact (changed on the way): the client's own checks refuse it, it reports failure, nothing applied.
  assert.equal((await f.publish('1.2.0', { 'VERSION': '1.2.0' })).code, 0);
  const broken = await waitFor(async () => {
    const d = await show();
    return d.history.find((h) => h.event === 'failed' && h.version === '1.2.0') ? d : undefined;
  }, { what: 'the client to report the broken 1.2.0 failed', timeout: 240_000, interval: 1000, detail });
  assert.ok(corrupted >= 1, 'the artifact was corrupted on the way');
  assert.equal(broken.device.version, '1.0.0', 'nothing applied');
  const reason = broken.history.find((h) => h.event === 'failed' && h.version === '1.2.0')!.error ?? '';
  assert.match(reason, /Artifact install failed/, 'the client\'s own reading of the artifact refused it');
  assert.match(reason, /^update to 1\.2\.0 failed \(Mender client\): /);
  assert.equal(await readFile(join(root, DEST, 'VERSION'), 'utf8'), '1.0.0', 'the installed folder is untouched');
});
