/**
 * Delta patches end to end: a real server computes a delta in the background after a publish,
 * offers it to devices on the old version, agents apply it (verified through the delegated deltas
 * role and the publisher's tree hash) and fall back to the full archive by themselves when it
 * fails; a bad delta is reported and no longer offered.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { writeTree, currentLink } from './helpers/files.js';
import { startProxy } from './helpers/proxy.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { waitFor, WaitTimeoutError } from './helpers/wait-for.js';
import type { CheckResponse } from '../src/protocol/wire.js';

const TOKEN = 'delta-admin';

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

/** Each test gets its own server with acme 1.0.0 (a test that breaks the delta cannot hide it from another). */
const fleet = (t: TestContext, args: string[] = []): Promise<Fleet> =>
  startFleet(t, { token: TOKEN, prefix: 'patchwire-delta-', server: { args }, releases: [['1.0.0', tree('1.0.0', false)]] });

async function offerFor(f: Fleet, deviceId: string, version: string): Promise<CheckResponse> {
  return (await f.rawCheck(deviceId, version)).body;
}

const publish110 = async (f: Fleet) =>
  runCli(['publish', ...f.admin(), '--product', 'acme', '--version', '1.1.0', '--key', f.key, await writeTree(join(f.root, 't2'), tree('1.1.0', true))]);

/**
 * The server computes the delta in the background after a publish: polls the offer to a device
 * on 1.0.0 until it is a delta (or 60 s passed) and returns the last offer.
 */
async function deltaOffer(f: Fleet): Promise<CheckResponse> {
  let last: CheckResponse | undefined;
  try {
    return await waitFor(async () => {
      last = await offerFor(f, 'dd:00:00:00:00:99', '1.0.0');
      return last.release?.kind === 'delta' && last;
    }, { what: 'a delta from 1.0.0 to be offered', timeout: 60_000, interval: 200 });
  } catch (err) {
    if (err instanceof WaitTimeoutError && last) return last;
    throw err;
  }
}

/** The setup of the fallback tests: an agent at 1.0.0, then 1.1.0 published with its delta ready. */
async function agentBeforeDelta(f: Fleet, name: string, mac: string): Promise<string> {
  const dir = await f.initAgent(name, mac);
  assert.equal((await f.check(dir)).version, '1.0.0');
  const p = await publish110(f);
  assert.equal(p.code, 0, p.stderr);
  assert.equal((await deltaOffer(f)).release?.kind, 'delta', 'a delta from 1.0.0 is offered');
  return dir;
}

test('a delta is computed after a publish and offered to devices on the old version only; the agent applies it', async (t) => {
  const f = await fleet(t);
  const { check } = f;
  const a = await f.initAgent('a', 'dd:00:00:00:00:01');
  const b = await f.initAgent('b', 'dd:00:00:00:00:02');
  const c = await f.initAgent('c', 'dd:00:00:00:00:03');
  for (const dir of [a, b, c]) assert.equal((await check(dir)).version, '1.0.0');

  const p = await publish110(f);
  assert.equal(p.code, 0, p.stderr);
  // Computed in the background: the publish did not wait for it.
  const offer = await deltaOffer(f);
  assert.equal(offer?.release?.kind, 'delta', 'a delta from 1.0.0 is offered');
  const d = offer!.release!.delta!;
  assert.equal(d.from, '1.0.0');
  assert.ok(d.length < offer!.release!.length / 2, `delta ${d.length} bytes vs full ${offer!.release!.length}`);
  assert.equal((await offerFor(f, 'dd:00:00:00:00:98', null as unknown as string)).release?.kind, 'full', 'a fresh install gets the full archive');

  const r = await check(a, '--force');
  assert.equal(r.result, 'updated');
  assert.equal(r.version, '1.1.0');
  assert.deepEqual(r.patch, { kind: 'delta', bytes: d.length, resumedFrom: 0 });
  assert.equal(await currentLink(a), join('versions', '1.1.0'));
  assert.equal(await readFile(join(a, 'current', 'VERSION'), 'utf8'), '1.1.0');
  assert.match(await readFile(join(a, 'current', 'lib', '_module5.js'), 'utf8'), /value_5_0/, 'the renamed file is rebuilt from the old tree');
});

test('an old tree changed on the device: the agent falls back to the full archive and does not blame the delta', async (t) => {
  const f = await fleet(t);
  const { check } = f;
  const b = await agentBeforeDelta(f, 'b', 'dd:00:00:00:00:02');
  await appendFile(join(b, 'versions', '1.0.0', 'VERSION'), ' (edited locally)');
  const r = await check(b, '--force');
  assert.equal(r.version, '1.1.0');
  assert.equal(r.patch?.kind, 'full');
  assert.equal(await readFile(join(b, 'current', 'VERSION'), 'utf8'), '1.1.0');
  assert.ok(!(await f.reports('dd:00:00:00:00:02')).some((x) => x.event === 'delta-failed'));
  assert.equal((await offerFor(f, 'dd:00:00:00:00:97', '1.0.0')).release?.kind, 'delta', 'still offered to others');
});

test('a corrupted delta: the agent verifies, falls back to the full archive by itself, reports it, and the server stops offering it', async (t) => {
  // One distinct device is enough here; the default threshold (3) is e2e-agent-freeze.test.ts's.
  const f = await fleet(t, ['--delta-fail-threshold', '1']);
  const { check } = f;
  const c = await agentBeforeDelta(f, 'c', 'dd:00:00:00:00:03');
  const proxy = await startProxy(f.server.url, (req, up) => {
    if (!req.path.includes('/targets/deltas/')) return undefined;
    const bad = Buffer.from(up.body);
    bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff;
    return { body: bad };
  });
  try {
    const state = await f.state(c);
    state.server = proxy.url;
    await writeFile(join(c, '.patchwire', 'state.json'), JSON.stringify(state));
    const r = await check(c, '--force');
    assert.equal(r.result, 'updated');
    assert.equal(r.version, '1.1.0');
    assert.equal(r.patch?.kind, 'full', 'fell back to the full archive');
    assert.equal(await readFile(join(c, 'current', 'VERSION'), 'utf8'), '1.1.0');
    const reports = await f.reports('dd:00:00:00:00:03');
    assert.ok(reports.some((x) => x.event === 'delta-failed' && x.detail?.startsWith('deltas/')), JSON.stringify(reports));
    assert.equal((await offerFor(f, 'dd:00:00:00:00:96', '1.0.0')).release?.kind, 'full', 'the failed delta is no longer offered');
  } finally {
    await proxy.close();
  }
});

test('a delta computed before a restart is still served after it: an agent on the old version applies it', async (t) => {
  const f = await fleet(t);
  const a = await agentBeforeDelta(f, 'a', 'dd:00:00:00:00:04');
  // The same data folder and port (the agent keeps its server URL).
  const port = new URL(f.server.url).port;
  await f.server.stop();
  f.server = await f.serve('server', { args: ['--port', port] });
  assert.equal((await offerFor(f, 'dd:00:00:00:00:95', '1.0.0')).release?.kind, 'delta', 'still offered after the restart');
  const r = await f.check(a, '--force');
  assert.equal(r.version, '1.1.0');
  assert.equal(r.patch?.kind, 'delta', 'the delta was served and applied');
  assert.ok(!(await f.reports('dd:00:00:00:00:04')).some((x) => x.event === 'delta-failed'));
});

test('--delta-low-cost-above 0: the delta is computed in the lower-cost mode and the agent applies it', async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-delta-', server: { args: ['--delta-low-cost-above', '0', '--log-level', 'info'] }, releases: [['1.0.0', tree('1.0.0', false)]] });
  const dir = await agentBeforeDelta(f, 'a', 'dd:00:00:00:00:05');
  assert.match(f.server.output(), /"lowCost":true[^\n]*"msg":"delta ready"/, 'computed in the lower-cost mode');
  const r = await f.check(dir, '--force');
  assert.equal(r.version, '1.1.0');
  assert.equal(r.patch?.kind, 'delta');
  assert.equal(await readFile(join(dir, 'current', 'VERSION'), 'utf8'), '1.1.0');
});
