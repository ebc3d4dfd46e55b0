/**
 * Issue 8, "CLI and operator", with real processes on 127.0.0.1: `--version`, errors as JSON under
 * `--json`, an unknown option named as unknown, a release folder with a link leaving it refused
 * as bad input; status per product and channel, products, releases, yank (the check path and a
 * mirror stop offering a yanked release), devices remove, mirrors list/remove.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, symlink, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson, type ServerProcess } from './helpers/cli.js';
import { waitFor } from './helpers/wait-for.js';
import type { StatusView, MirrorView } from '../src/protocol/wire.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';

const TOKEN = 'operator-admin-token-0123456789';
const MIRROR_TOKEN = 'operator-mirror-token-0123456789';
const A = 'aa:bb:cc:08:00:01';
const B = 'aa:bb:cc:08:00:02';
const C = 'aa:bb:cc:08:00:03';
/** Hand-made checks at the primary (B is bound to its agent's key there; a hand check holds its own). */
const HAND = 'aa:bb:cc:08:00:09';

interface ReleaseListing { product: string; releases: Array<{ channel: string; version: string; yankedAt: string | null; latest: boolean }> }
const suite = Cleanup.forSuite();

describe('the command line itself', () => {
  test('--version prints the version of package.json and exits 0', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  test('an unknown option is named as unknown, not hidden behind a missing required option', async () => {
    const r = await runCli(['check', '--verison']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--verison'/);
    assert.match(r.stderr, /--help/, 'with a hint');
    assert.doesNotMatch(r.stderr, /required option/);
    // A required option still missing, with no typo, is still said so.
    const missing = await runCli(['check']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /required option '--dir/);
  });

  test('under --json an error is one JSON document on stdout, with the same exit codes', async () => {
    const usage = await runCli(['check', '--json', '--verison']);
    assert.equal(usage.code, 2);
    assert.deepEqual(JSON.parse(usage.stdout), { error: { code: 'PW_USAGE', message: "unknown option '--verison'" } });
    const input = await runCli(['devices', '--server', 'not a url', '--token', 't', '--json']);
    assert.equal(input.code, 2);
    const e = JSON.parse(input.stdout) as { error: { code: string; message: string } };
    assert.equal(e.error.code, 'PW_BAD_INPUT');
    assert.match(e.error.message, /is not a URL/);
    const down = await runCli(['status', '--server', 'http://127.0.0.1:9', '--token', 't', '--json']);
    assert.equal(down.code, 1);
    assert.equal((JSON.parse(down.stdout) as { error: { code: string } }).error.code, 'PW_UNREACHABLE');
  });

  test('help is consistent: one metavar per flag as the README writes it, required options marked', async () => {
    const r = await runCli(['publish', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--product <P>\s+product name \(required\)/);
    assert.match(r.stdout, /--server <URL>\s+patchwire server URL.*\(required\)/);
    assert.match(r.stdout, /--channel <C>\s+release channel \(default: "stable"\)/);
    const commands = [['serve'], ['keygen'], ['product', 'create'], ['products'], ['publish'], ['rollout'], ['releases'], ['release', 'yank'], ['schedule'],
      ['move'], ['devices'], ['devices', 'remove'], ['status'], ['mirrors', 'list'], ['mirrors', 'approve'], ['mirrors', 'remove'], ['reconcile'], ['init'], ['check'],
      ['rollback']];
    for (const c of commands) {
      const h = await runCli([...c, '--help']);
      assert.equal(h.code, 0, `${c.join(' ')} --help`);
      const options = h.stdout.slice(h.stdout.indexOf('Options:'));
      assert.doesNotMatch(options, /--[a-z-]+ <[a-z]/, `${c.join(' ')}: metavars are upper-case`);
      for (const [flag, metavar] of [['--server', 'URL'], ['--token', 'T'], ['--product', 'P'], ['--channel', 'C'], ['--key', 'FILE']]) {
        if (options.includes(`${flag} `)) assert.ok(options.includes(`${flag} <${metavar}>`), `${c.join(' ')}: ${flag} <${metavar}>`);
      }
    }
  });
});

describe('an operator with a server', () => {
  let f: Fleet;
  before(async () => {
    f = await startFleet(suite, {
      token: TOKEN, prefix: 'patchwire-e2e-operator-', releases: [['1.0.0', { 'bin/app': 'echo 1.0.0\n' }]],
      server: { args: ['--mirror-token', MIRROR_TOKEN, '--reconcile-interval', '1h'] },
    });
  });

  test('keygen, product create and move print JSON with --json', async () => {
    const key = join(f.root, 'second.key');
    const k = await runCli(['keygen', '--out', key, '--json']);
    assert.equal(k.code, 0, k.stderr);
    assert.equal((JSON.parse(k.stdout) as { file: string }).file, key);
    const rootOut = join(f.root, 'json-product.root.json');
    const p = await runCli(['product', 'create', ...f.admin(), '--product', 'json-product', '--key', key, '--root-out', rootOut, '--json']);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(JSON.parse(p.stdout), { product: 'json-product', rootFile: rootOut });
    const m = await runCli(['move', ...f.admin(), '--product', 'json-product', '--to', 'http://127.0.0.1:9', '--key', key, '--json']);
    assert.equal(m.code, 0, m.stderr);
    assert.equal((JSON.parse(m.stdout) as { url: string }).url, 'http://127.0.0.1:9');
    // A refused request under --json carries the server's code.
    const again = await runCli(['product', 'create', ...f.admin(), '--product', 'json-product', '--key', key, '--root-out', join(f.root, 'x.json'), '--json']);
    assert.equal(again.code, 2);
    assert.equal((JSON.parse(again.stdout) as { error: { code: string } }).error.code, 'PW_PRODUCT_EXISTS');
  });

  test('publish of a folder with a link leaving it: exit 2, the entry and the remedy named, nothing stored', async () => {
    const dir = join(f.root, 'trees', 'outside-link');
    await mkdir(join(dir, 'bin'), { recursive: true });
    await writeFile(join(dir, 'bin', 'app'), 'echo 9\n');
    await symlink('/etc', join(dir, 'x'));
    const before = await f.releases();
    const r = await runCli(['publish', ...f.admin(), '--product', 'acme', '--version', '9.0.0', '--key', f.key, dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /x links outside the tree to \/etc/);
    assert.match(r.stderr, /replace the link by a copy or point it inside the tree/);
    assert.deepEqual(await f.releases(), before, 'nothing was stored');
  });
});

describe('an operator with a fleet of two products and a mirror', () => {
  let f: Fleet;
  let mirror: ServerProcess;
  const mirrorArgs = (sync: string) => ['--upstream', f.server.url, '--upstream-token', MIRROR_TOKEN, '--sync-interval', sync];
  before(async () => {
    f = await startFleet(suite, {
      token: TOKEN, prefix: 'patchwire-e2e-operator-fleet-', releases: [['1.0.0', { 'bin/app': 'echo 1.0.0\n' }]],
      server: { args: ['--mirror-token', MIRROR_TOKEN, '--reconcile-interval', '1h'] },
    });
    const toolsRoot = await f.createProduct({ product: 'tools' });
    assert.equal((await f.publish('1.0.0', { 'bin/tool': 'echo tool\n' }, { product: 'tools' })).code, 0);
    // Two devices of acme and one of tools, each at 1.0.0.
    for (const [name, mac, product, rootFile] of [['a', A, 'acme', f.rootFile], ['b', B, 'acme', f.rootFile], ['c', C, 'tools', toolsRoot]] as const) {
      const dir = await f.initAgent(name, mac, { product, rootFile });
      assert.equal((await f.check(dir)).version, '1.0.0');
    }
    mirror = await f.serve('mirror', { args: mirrorArgs('1s') });
  });

  test('status gives figures per product and channel; --product gives one product', async () => {
    const all = await runJson<StatusView>(['status', ...f.admin(), '--json']);
    assert.equal(all.devices, 3);
    assert.deepEqual(all.versions, { '1.0.0': 3 }, 'the top-level sum over products stays as it was');
    assert.deepEqual(all.products, [
      { product: 'acme', devices: 2, channels: [{ channel: 'stable', latest: '1.0.0', devices: 2, versions: { '1.0.0': 2 } }] },
      { product: 'tools', devices: 1, channels: [{ channel: 'stable', latest: '1.0.0', devices: 1, versions: { '1.0.0': 1 } }] },
    ]);
    const one = await runJson<StatusView>(['status', ...f.admin(), '--product', 'tools', '--json']);
    assert.equal(one.devices, 1);
    // The process's event-loop delay: since start in the status, per window at /v1/admin/runtime.
    const runtime = async () => {
      const res = await fetch(`${f.server.url}/v1/admin/runtime`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 200);
      return (await res.json()) as StatusView['runtime'];
    };
    const w1 = await runtime();
    const w2 = await runtime();
    for (const r of [all.runtime, one.runtime, w1, w2]) {
      const d = r.eventLoopDelayMs;
      assert.ok(d.p50 >= 0 && d.p50 <= d.p99 && d.p99 <= d.max, `event-loop delay figures: ${JSON.stringify(r)}`);
      assert.ok(r.rssBytes > 10_000_000 && r.uptimeSeconds >= 0, JSON.stringify(r));
    }
    assert.ok(all.runtime.eventLoopDelayMs.samples > 0, 'the server sampled its loop since start');
    assert.equal(one.runtime.since, all.runtime.since, 'the status counts from the process start');
    assert.ok(Date.parse(w2.since) >= Date.parse(w1.since) && Date.parse(w2.since) > Date.parse(all.runtime.since), `windows: ${w1.since} then ${w2.since}`);
    assert.equal((await fetch(`${f.server.url}/v1/admin/runtime`)).status, 401, 'admin-token protected');
    const text = await runCli(['status', ...f.admin()]);
    assert.match(text.stdout, /acme: 2 devices\n\s+stable \(latest 1\.0\.0\): 1\.0\.0: 2/);
    const products = await runJson<{ products: string[] }>(['products', ...f.admin(), '--json']);
    assert.deepEqual(products.products, ['acme', 'tools']);
  });

  test('release yank: no longer offered, the channel falls back, devices on it untouched, recorded; a mirror follows', async () => {
    assert.equal((await f.publish('1.1.0', { 'bin/app': 'echo 1.1.0\n' })).code, 0);
    assert.equal((await f.check(f.agentDir('a'), '--force')).version, '1.1.0', 'device a applied 1.1.0 before the yank');
    await waitFor(async () => (await f.rawCheck(B, '1.0.0', { server: mirror.url })).body.latest === '1.1.0', { what: 'the mirror to replicate 1.1.0', detail: mirror.output });

    const y = await runJson<{ version: string; yankedAt: string; latest: string | null }>(['release', 'yank', ...f.admin(), '--product', 'acme', '--version', '1.1.0', '--json']);
    assert.equal(y.version, '1.1.0');
    assert.equal(y.latest, '1.0.0');
    assert.ok(!Number.isNaN(Date.parse(y.yankedAt)));

    // The check path: device b at 1.0.0 is no longer offered 1.1.0.
    const b = await f.check(f.agentDir('b'), '--force');
    assert.equal(b.result, 'up-to-date');
    assert.equal(b.version, '1.0.0');
    const raw = await f.rawCheck(HAND, '1.0.0');
    assert.equal(raw.body.status, 'up-to-date');
    assert.equal(raw.body.latest, '1.0.0');
    // Device a keeps 1.1.0: nothing is sent to it, it is not told to go back.
    const a = await f.check(f.agentDir('a'), '--force');
    assert.equal(a.version, '1.1.0');
    assert.equal((await f.devices()).find((d) => d.deviceId === A)?.version, '1.1.0');
    // The mirror stops offering it too.
    await waitFor(async () => {
      const m = await f.rawCheck(B, '1.0.0', { server: mirror.url });
      return m.body.status === 'up-to-date' && m.body.latest === '1.0.0';
    }, { what: 'the mirror to stop offering the yanked 1.1.0', detail: mirror.output });

    // Recorded and shown.
    const listing = await runJson<ReleaseListing>(['releases', ...f.admin(), '--product', 'acme', '--json']);
    const by = new Map(listing.releases.map((r) => [r.version, r]));
    assert.ok(by.get('1.1.0')?.yankedAt);
    assert.equal(by.get('1.1.0')?.latest, false);
    assert.equal(by.get('1.0.0')?.latest, true);
    assert.match((await runCli(['releases', ...f.admin(), '--product', 'acme'])).stdout, /1\.1\.0.*yanked/);
    // Yanking is final and idempotent; the next version must be higher than the yanked one.
    const again = await runJson<{ yankedAt: string }>(['release', 'yank', ...f.admin(), '--product', 'acme', '--version', '1.1.0', '--json']);
    assert.equal(again.yankedAt, y.yankedAt);
    const lower = await f.publish('1.0.5', { 'bin/app': 'echo 1.0.5\n' });
    assert.equal(lower.code, 2);
    assert.match(lower.stderr, /not higher than 1\.1\.0, the highest \(yanked\) release of acme\/stable/);
    const unknown = await runCli(['release', 'yank', ...f.admin(), '--product', 'acme', '--version', '7.0.0', '--json']);
    assert.equal(unknown.code, 2);
    assert.equal((JSON.parse(unknown.stdout) as { error: { code: string } }).error.code, 'PW_UNKNOWN_RELEASE');
    // Still not offered after a restart (the yank is stored, not only in memory).
    await f.server.stop();
    f.server = await f.serve('server', { args: ['--mirror-token', MIRROR_TOKEN, '--reconcile-interval', '1h', '--port', new URL(f.server.url).port] });
    assert.equal((await f.rawCheck(HAND, '1.0.0')).body.latest, '1.0.0');
  });

  test('devices remove: the record and its history go; a device that checks again enrols as new', async () => {
    const r = await runJson<{ deviceId: string; removed: boolean }>(['devices', 'remove', C.toUpperCase(), ...f.admin(), '--product', 'tools', '--json']);
    assert.deepEqual(r, { product: 'tools', deviceId: C, removed: true });
    assert.ok(!(await f.devices()).some((d) => d.deviceId === C));
    assert.deepEqual(await f.reports(C, { product: 'tools' }), []);
    const again = await runCli(['devices', 'remove', C, ...f.admin(), '--product', 'tools']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /tools has no device aa:bb:cc:08:00:03.*PW_UNKNOWN_DEVICE/);
    assert.equal((await f.rawCheck(C, '1.0.0', { product: 'tools' })).status, 200);
    const back = await waitFor(async () => (await f.devices()).find((d) => d.deviceId === C), { what: 'the device to enrol again' });
    assert.equal(back.version, null, 'as new: no applied version until it reports');
  });

  test('mirrors list and remove: a removed mirror is no longer consolidated, and comes back when it announces again', async () => {
    await mirror.stop();
    // A mirror that announces once (at start): a removal is not undone behind the test's back.
    mirror = await f.serve('mirror', { args: [...mirrorArgs('1h'), '--port', new URL(mirror.url).port] });
    const listed = await waitFor(async () => {
      const { mirrors } = await runJson<{ mirrors: MirrorView[] }>(['mirrors', 'list', ...f.admin(), '--json']);
      return mirrors.length > 0 && mirrors;
    }, { what: 'the mirror listed' });
    assert.deepEqual(listed.map((m) => m.url), [mirror.url]);
    const removed = await runJson<{ url: string; removed: boolean }>(['mirrors', 'remove', mirror.url, ...f.admin(), '--json']);
    assert.deepEqual(removed, { url: mirror.url, removed: true });
    assert.deepEqual((await runJson<{ mirrors: MirrorView[] }>(['mirrors', 'list', ...f.admin(), '--json'])).mirrors, []);
    const rec = await runJson<{ mirrors: unknown[] }>(['reconcile', ...f.admin(), '--json']);
    assert.deepEqual(rec.mirrors, [], 'no longer consolidated');
    const unknown = await runCli(['mirrors', 'remove', mirror.url, ...f.admin()]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /PW_UNKNOWN_MIRROR/);
    // It announces again at its next start and is back, pending: not contacted until approved again.
    await mirror.stop();
    mirror = await f.serve('mirror', { args: [...mirrorArgs('1h'), '--port', new URL(mirror.url).port] });
    const back = await waitFor(async () => (await runJson<{ mirrors: MirrorView[] }>(['mirrors', 'list', ...f.admin(), '--json'])).mirrors[0], { what: 'the mirror back after announcing' });
    assert.equal(back.state, 'pending');
    assert.deepEqual((await runJson<{ mirrors: unknown[]; pending: string[] }>(['reconcile', ...f.admin(), '--json'])), { mirrors: [], pending: [mirror.url] });
  });
});
