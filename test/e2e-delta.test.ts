/**
 * Delta patches end to end: a real server computes a delta in the background after a publish,
 * offers it to devices on the old version, agents apply it (verified through the delegated deltas
 * role and the publisher's tree hash) and fall back to the full archive by themselves when it
 * fails; a bad delta is reported and no longer offered.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson, startServer, type ServerProcess } from './helpers/cli.js';
import { tempDir, writeTree, currentLink } from './helpers/files.js';
import { startProxy } from './helpers/proxy.js';

const TOKEN = 'delta-admin';
let root: string;
let server: ServerProcess;
let key: string;
let rootFile: string;

interface CheckJson { result: string; version: string | null; patch?: { kind: string; bytes: number } }
interface Offer { status: string; release: { kind: string; length: number; delta: { from: string; target: string; length: number } | null } | null }

/** A tree big enough that a delta beats the compressed archive: 300 lines of varied text per file. */
function tree(version: string, renamed: boolean): Record<string, string> {
  const files: Record<string, string> = {};
  for (let f = 0; f < 12; f++) {
    const lines = [];
    for (let i = 0; i < 300; i++) lines.push(`export const value_${f}_${i} = ${(f * 7919 + i * 104729) % 1000003}; // module ${f} line ${i}`);
    if (f === 3) lines[150] = `export const changed = '${version}';`;
    files[`lib/${renamed && f === 5 ? '_module5' : `module${f}`}.js`] = lines.join('\n');
  }
  files['VERSION'] = version;
  return files;
}

const check = (dir: string, ...flags: string[]) => runJson<CheckJson>(['check', '--dir', dir, '--json', ...flags]);

async function offerFor(deviceId: string, version: string): Promise<Offer> {
  const res = await fetch(`${server.url}/v1/check`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', version }),
  });
  return (await res.json()) as Offer;
}

async function reportsOf(deviceId: string): Promise<Array<{ event: string; detail: string | null }>> {
  const res = await fetch(`${server.url}/v1/admin/products/acme/devices/${deviceId}/reports`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as Array<{ event: string; detail: string | null }>;
}

async function initAgent(name: string, mac: string, url = server.url): Promise<string> {
  const dir = join(root, name);
  const r = await runCli(['init', '--dir', dir, '--server', url, '--product', 'acme', '--root', rootFile, '--device-id', mac]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

before(async () => {
  root = await tempDir('patchwire-delta-');
  server = await startServer(join(root, 'server'), { token: TOKEN });
  key = join(root, 'k.key');
  assert.equal((await runCli(['keygen', '--out', key])).code, 0);
  rootFile = join(root, 'acme.root.json');
  const admin = ['--server', server.url, '--token', TOKEN];
  let r = await runCli(['product', 'create', ...admin, '--product', 'acme', '--key', key, '--root-out', rootFile]);
  assert.equal(r.code, 0, r.stderr);
  r = await runCli(['publish', ...admin, '--product', 'acme', '--version', '1.0.0', '--key', key, await writeTree(join(root, 't1'), tree('1.0.0', false))]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

test('a delta is computed after a publish and offered to devices on the old version only; the agent applies it', async () => {
  const a = await initAgent('a', 'dd:00:00:00:00:01');
  const b = await initAgent('b', 'dd:00:00:00:00:02');
  const c = await initAgent('c', 'dd:00:00:00:00:03');
  for (const dir of [a, b, c]) assert.equal((await check(dir)).version, '1.0.0');

  const admin = ['--server', server.url, '--token', TOKEN];
  const p = await runCli(['publish', ...admin, '--product', 'acme', '--version', '1.1.0', '--key', key, await writeTree(join(root, 't2'), tree('1.1.0', true))]);
  assert.equal(p.code, 0, p.stderr);
  // Computed in the background: the publish did not wait for it.
  let offer: Offer | undefined;
  for (let i = 0; i < 300; i++) {
    offer = await offerFor('dd:00:00:00:00:99', '1.0.0');
    if (offer.release?.kind === 'delta') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(offer?.release?.kind, 'delta', 'a delta from 1.0.0 is offered');
  const d = offer!.release!.delta!;
  assert.equal(d.from, '1.0.0');
  assert.ok(d.length < offer!.release!.length / 2, `delta ${d.length} bytes vs full ${offer!.release!.length}`);
  assert.equal((await offerFor('dd:00:00:00:00:98', null as unknown as string)).release?.kind, 'full', 'a fresh install gets the full archive');

  const r = await check(a, '--force');
  assert.equal(r.result, 'updated');
  assert.equal(r.version, '1.1.0');
  assert.deepEqual(r.patch, { kind: 'delta', bytes: d.length });
  assert.equal(await currentLink(a), join('versions', '1.1.0'));
  assert.equal(await readFile(join(a, 'current', 'VERSION'), 'utf8'), '1.1.0');
  assert.match(await readFile(join(a, 'current', 'lib', '_module5.js'), 'utf8'), /value_5_0/, 'the renamed file is rebuilt from the old tree');
});

test('an old tree changed on the device: the agent falls back to the full archive and does not blame the delta', async () => {
  const b = join(root, 'b');
  await appendFile(join(b, 'versions', '1.0.0', 'VERSION'), ' (edited locally)');
  const r = await check(b, '--force');
  assert.equal(r.version, '1.1.0');
  assert.equal(r.patch?.kind, 'full');
  assert.equal(await readFile(join(b, 'current', 'VERSION'), 'utf8'), '1.1.0');
  assert.ok(!(await reportsOf('dd:00:00:00:00:02')).some((x) => x.event === 'delta-failed'));
  assert.equal((await offerFor('dd:00:00:00:00:97', '1.0.0')).release?.kind, 'delta', 'still offered to others');
});

test('a corrupted delta: the agent verifies, falls back to the full archive by itself, reports it, and the server stops offering it', async () => {
  const proxy = await startProxy(server.url, (path, body) => {
    if (!path.includes('/targets/deltas/')) return undefined;
    const bad = Buffer.from(body);
    bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff;
    return bad;
  });
  try {
    const c = join(root, 'c');
    const state = JSON.parse(await readFile(join(c, '.patchwire', 'state.json'), 'utf8')) as Record<string, unknown>;
    state.server = proxy.url;
    await (await import('node:fs/promises')).writeFile(join(c, '.patchwire', 'state.json'), JSON.stringify(state));
    const r = await check(c, '--force');
    assert.equal(r.result, 'updated');
    assert.equal(r.version, '1.1.0');
    assert.equal(r.patch?.kind, 'full', 'fell back to the full archive');
    assert.equal(await readFile(join(c, 'current', 'VERSION'), 'utf8'), '1.1.0');
    const reports = await reportsOf('dd:00:00:00:00:03');
    assert.ok(reports.some((x) => x.event === 'delta-failed' && x.detail?.startsWith('deltas/')), JSON.stringify(reports));
    assert.equal((await offerFor('dd:00:00:00:00:96', '1.0.0')).release?.kind, 'full', 'the failed delta is no longer offered');
  } finally {
    await proxy.close();
  }
});
