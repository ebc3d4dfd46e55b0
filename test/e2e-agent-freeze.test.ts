/**
 * Freeze and exhaustion on the AGENT (issue 9; docs/security.md, "Freeze and exhaustion on the
 * agent"): a real `patchwire serve`, a man in the middle (test/helpers/proxy.ts) and real
 * `patchwire check` processes. A check answer is believed only when it is signed for this request
 * (device id, nonce) with the product's timestamp key, unexpired and unaltered; an unsigned
 * "up-to-date" only when TUF confirms it; a delta longer than the full archive is never fetched;
 * a symlinked `versions/` or `.patchwire/` is refused. Each attack: the exit code, the `--json`
 * error code, a message naming what failed, and nothing changed in the install folder.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { runCli, type CliResult } from './helpers/cli.js';
import { snapshotDir } from './helpers/files.js';
import { startProxy, type Attack, type Proxy } from './helpers/proxy.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait-for.js';
import type { CheckResponse } from '../src/protocol/wire.js';
import { onlineKey } from './helpers/online-keys.js';
import { signDeltas, signSnapshot, signTimestamp } from '../src/tuf/repository.js';

const TOKEN = 'freeze-admin-token';
const suite = Cleanup.forSuite();
let f: Fleet;
let clockFile: string;

/** A tree whose next version differs in one line: the server's delta beats the full archive. */
function tree(version: string): Record<string, string> {
  const files: Record<string, string> = { VERSION: version };
  for (let m = 0; m < 8; m++) {
    const lines = [];
    for (let i = 0; i < 300; i++) lines.push(`export const v_${m}_${i} = ${(m * 7919 + i * 104729) % 1000003};`);
    if (m === 2) lines[100] = `export const changed = '${version}';`;
    files[`lib/m${m}.js`] = lines.join('\n');
  }
  return files;
}

let mac = 0x10;
const nextMac = () => `02:00:00:00:09:${(mac++).toString(16).padStart(2, '0')}`;
const isCheck = (p: string) => p === '/v1/check';
const check = (dir: string): Promise<CliResult> => runCli(['check', '--dir', dir, '--json', '--force'], { timeoutMs: 60_000 });

async function proxy(attack?: Attack): Promise<Proxy> {
  const p = await startProxy(f.server.url, attack);
  suite.after(() => p.close());
  return p;
}

/** An agent behind its own proxy, brought to 1.0.0 with signed answers (before 2.0.0 exists). */
async function agentAt1(name: string): Promise<{ dir: string; p: Proxy; mac: string; upToDate: Buffer }> {
  const p = await proxy();
  const m = nextMac();
  const dir = await f.initAgent(name, m, { server: p.url });
  const r = await check(dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).version, '1.0.0');
  // One more check, up to date: its signed answer is what a replay attack reuses.
  let upToDate: Buffer = Buffer.alloc(0);
  p.attack = (req, up) => { if (isCheck(req.path)) upToDate = up.body; return undefined; };
  const again = await check(dir);
  assert.equal(JSON.parse(again.stdout).result, 'up-to-date', again.stderr);
  p.attack = undefined;
  const answer = JSON.parse(upToDate.toString()) as CheckResponse;
  assert.equal(answer.signed?.signed.nonce.length, 32, 'the server signed the answer');
  return { dir, p, mac: m, upToDate };
}

/**
 * The install folder as it is now: state, versions, `current`, downloads. Not the TUF cache (a
 * check may legitimately store newer metadata it verified) nor the install id a first check makes.
 */
// The TUF cache, the install id and the device's token cache (its auth is legitimate) may change.
const folder = async (dir: string) => new Map([...(await snapshotDir(dir))].filter(([k]) => !k.includes('/.patchwire/tuf') && !k.endsWith('/install-id') && !k.endsWith('/.patchwire/device-tokens.json')));

/** The attack is refused: exit 1, PW_UNVERIFIED_ANSWER, `message` matched, nothing downloaded, the folder unchanged. */
async function refused(dir: string, p: Proxy, message: RegExp): Promise<void> {
  const before = await folder(dir);
  const seenBefore = p.seen.length;
  const r = await check(dir);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
  const err = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
  assert.equal(err.code, 'PW_UNVERIFIED_ANSWER', err.message);
  assert.match(err.message, message);
  assert.match(err.message, /keeps its version/, 'says what the agent did');
  assert.match(r.stderr, message);
  assert.ok(!p.seen.slice(seenBefore).some((s) => s.path.includes('/targets/')), 'no target was requested');
  assert.deepEqual(await folder(dir), before, 'the install folder is unchanged');
  assert.ok(before.has(join(dir, '.patchwire', 'state.json')), 'the comparison covers the state file');
}

/** A check answer rewritten to "up-to-date" at 1.0.0 (an attacker's answer), signed block as given. */
function upToDate(body: Buffer, signed: 'keep' | 'drop'): Buffer {
  const a = JSON.parse(body.toString()) as CheckResponse;
  const out: CheckResponse = { ...a, status: 'up-to-date', latest: '1.0.0', release: null };
  if (signed === 'drop') delete out.signed;
  return Buffer.from(JSON.stringify(out));
}

let agents: Record<'strip' | 'replay' | 'expired' | 'other' | 'altered' | 'delta' | 'symlink' | 'meta', { dir: string; p: Proxy; mac: string; upToDate: Buffer }>;

before(async () => {
  const root = await tempDir(suite, 'patchwire-freeze-');
  clockFile = join(root, 'clock-offset');
  f = await startFleet(suite, {
    token: TOKEN, prefix: 'patchwire-freeze-',
    server: { env: { PATCHWIRE_ENABLE_FAULTS: '1', PATCHWIRE_CLOCK_FILE: clockFile } },
    releases: [['1.0.0', tree('1.0.0')]],
  });
  const names = ['strip', 'replay', 'expired', 'other', 'altered', 'delta', 'symlink', 'meta'] as const;
  agents = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await agentAt1(n)] as const))) as typeof agents;
  const p = await f.publish('2.0.0', tree('2.0.0'));
  assert.equal(p.code, 0, p.stderr);
});

test('the server signs its answers for the request; the agent records that it signs', async () => {
  const { dir, p } = agents.strip;
  const state = await f.state(dir);
  assert.deepEqual(state.signingServers, [p.url]);
});

test('"up-to-date" with no signature to a fresh agent: TUF says 2.0.0 exists, refused', async () => {
  const p = await proxy((req, up) => (isCheck(req.path) ? { body: upToDate(up.body, 'drop') } : undefined));
  const dir = await f.initAgent('fresh', nextMac(), { server: p.url });
  await refused(dir, p, /does not sign its answers.*the publisher signed 2\.0\.0/);
});

test('an unsigned "deferred" for a release the publisher did not stage is refused (a mirror may hold back only staged releases)', async () => {
  const p = await proxy((req, up) => {
    if (!isCheck(req.path)) return undefined;
    const a = JSON.parse(up.body.toString()) as CheckResponse;
    const out: CheckResponse = { ...a, status: 'deferred', release: null, rollout: { version: '2.0.0', opensAt: null, spreadSeconds: 0 } };
    delete out.signed;
    return { body: Buffer.from(JSON.stringify(out)) };
  });
  const dir = await f.initAgent('deferred', nextMac(), { server: p.url });
  await refused(dir, p, /says a staged rollout holds acme\/stable 2\.0\.0 back.*did not stage that release/);
});

test('a stripped signature after the agent has seen signed answers is refused (downgrade)', async () => {
  const { dir, p } = agents.strip;
  p.attack = (req, up) => (isCheck(req.path) ? { body: upToDate(up.body, 'drop') } : undefined);
  await refused(dir, p, /carries no signature, but this server signed its answers before/);
});

test('a replayed earlier signed "up-to-date" is refused (another nonce)', async () => {
  const { dir, p, upToDate: earlier } = agents.replay;
  p.attack = (req) => (isCheck(req.path) ? { body: earlier } : undefined);
  await refused(dir, p, /signed for another request.*replayed/);
});

test('an expired signed answer is refused', async () => {
  const { dir, p } = agents.expired;
  // The server's clock runs 10 minutes behind: its answers expire (5 minutes) before they arrive.
  await writeFile(clockFile, String(-10 * 60_000));
  try {
    await refused(dir, p, /it expired at/);
  } finally {
    await rm(clockFile, { force: true });
  }
});

test('an answer signed for another device is refused', async () => {
  const { dir, p } = agents.other;
  p.attack = async (req) => {
    if (!isCheck(req.path)) return undefined;
    // The attacker asks the real server as another device (with this agent's nonce) and answers with that.
    const body = { ...(JSON.parse(req.body.toString()) as Record<string, unknown>), deviceId: '02:00:00:00:09:ff', version: '2.0.0' };
    const headers = { 'content-type': 'application/json', ...(await f.sessions.headers(f.server.url, '02:00:00:00:09:ff')) };
    const res = await fetch(`${f.server.url}/v1/check`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { body: Buffer.from(await res.arrayBuffer()) };
  };
  await refused(dir, p, /signed for device 02:00:00:00:09:ff, not this device/);
});

test('a signed answer altered to say up-to-date is refused, with or without its signed block altered too', async () => {
  const { dir, p } = agents.altered;
  p.attack = (req, up) => (isCheck(req.path) ? { body: upToDate(up.body, 'keep') } : undefined);
  await refused(dir, p, /unsigned answer says up-to-date .*signed block says update .*altered in transit/);
  p.attack = (req, up) => {
    if (!isCheck(req.path)) return undefined;
    const a = JSON.parse(upToDate(up.body, 'keep').toString()) as CheckResponse;
    a.signed!.signed = { ...a.signed!.signed, status: 'up-to-date', latest: '1.0.0', release: null };
    return { body: Buffer.from(JSON.stringify(a)) };
  };
  await refused(dir, p, /not signed by the timestamp key of this product's trusted root/);
  // Without the attack, the same agent updates.
  p.attack = undefined;
  const r = await check(dir);
  assert.equal(JSON.parse(r.stdout).version, '2.0.0', r.stderr);
});

test('an unsigned "up-to-date" that TUF confirms (as from a mirror) is believed; a new URL, so no downgrade is assumed', async () => {
  const { dir } = agents.altered; // at 2.0.0 after the test above
  const p = await proxy((req, up) => (isCheck(req.path) ? { body: upToDate(up.body, 'drop') } : undefined));
  const state = await f.state(dir);
  assert.equal(state.version, '2.0.0');
  await writeFile(join(dir, '.patchwire', 'state.json'), JSON.stringify({ ...state, server: p.url }));
  const r = await check(dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).result, 'up-to-date');
  assert.ok(p.seen.some((s) => s.path.endsWith('/tuf/timestamp.json')), 'confirmed through a TUF refresh');
  assert.deepEqual((await f.state(dir)).signingServers, state.signingServers, 'the unsigned URL is not recorded as signing');
});

test('a delta whose signed length exceeds the full archive is never downloaded; the full archive is', async () => {
  const { dir, p } = agents.delta;
  // Asked as another device at 1.0.0 (a hand-made check for the agent's own MAC would need its key).
  const offer = await waitFor(async () => {
    const o = (await f.rawCheck('02:00:00:00:09:f1', '1.0.0')).body;
    return o.release?.kind === 'delta' && o;
  }, { what: 'a delta from 1.0.0 to be offered', timeout: 60_000, interval: 200 });
  // A compromised server: its real online keys sign a deltas role declaring 300 MB for the delta.
  const key = (role: 'snapshot' | 'timestamp' | 'deltas') => onlineKey(join(f.root, 'server'), role);
  type Meta = { signed: { version: number; meta: Record<string, { version: number }>; targets: Record<string, { length: number; hashes: { sha256: string }; custom: Record<string, unknown> }> } };
  const ts = await f.tuf<{ signed: { version: number; snapshot_meta?: unknown; meta: Record<string, { version: number }> } }>('timestamp.json');
  const snapVersion = ts.signed.meta['snapshot.json']!.version;
  const snap = await f.tuf<Meta>(`${snapVersion}.snapshot.json`);
  const targetsVersion = snap.signed.meta['targets.json']!.version;
  const deltasVersion = snap.signed.meta['deltas.json']!.version;
  const targetsJson = JSON.stringify(await f.tuf(`${targetsVersion}.targets.json`));
  const deltas = await f.tuf<Meta>(`${deltasVersion}.deltas.json`);
  const huge = 300 * 1024 * 1024;
  const targets = Object.fromEntries(Object.entries(deltas.signed.targets).map(([path, t]) =>
    [path, { length: path === offer.release!.delta!.target ? huge : t.length, sha256: t.hashes.sha256, custom: t.custom }]));
  const expires = new Date(Date.now() + 86400_000);
  const d = signDeltas({ version: deltasVersion + 1, targets, key: await key('deltas'), expires });
  const s = signSnapshot({ version: snapVersion + 1, targetsVersion, targetsJson, deltas: { version: d.version, json: d.json }, key: await key('snapshot'), expires });
  const t = signTimestamp({ version: ts.signed.version + 1, snapshotVersion: s.version, snapshotJson: s.json, key: await key('timestamp'), expires });
  const forged: Record<string, string> = { 'timestamp.json': t.json, [`${s.version}.snapshot.json`]: s.json, [`${d.version}.deltas.json`]: d.json };
  p.attack = (req) => {
    const name = req.path.split('/tuf/')[1];
    return name && forged[name] ? { status: 200, body: Buffer.from(forged[name]!) } : undefined;
  };
  const r = await check(dir);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { version: string; patch: { kind: string }; warnings?: string[] };
  assert.equal(result.version, '2.0.0');
  assert.equal(result.patch.kind, 'full', 'fell back to the full archive');
  assert.match(result.warnings?.join('\n') ?? '', /delta .* was refused \(its signed length 314572800 is larger than the full archive's \d+ bytes\)/);
  assert.match(r.stderr, /was refused/);
  assert.ok(p.seen.some((x) => x.path.endsWith(`/${d.version}.deltas.json`)), 'the forged deltas metadata was served');
  assert.ok(!p.seen.some((x) => x.path.includes('/targets/deltas/')), 'no delta byte was requested');
  const downloads = await readdir(join(dir, '.patchwire', 'downloads')).catch(() => [] as string[]);
  assert.ok(!downloads.some((n) => n.includes('pwdelta')), `no delta file written: ${downloads.join(', ')}`);
});

test('a symlinked versions/ is refused by check and rollback; the other folder is untouched', async () => {
  const { dir } = agents.symlink;
  const elsewhere = await tempDir(suite, 'patchwire-elsewhere-');
  await writeFile(join(elsewhere, 'marker'), 'do not touch');
  await mkdir(join(elsewhere, '0.9.0'));
  await rename(join(dir, 'versions'), join(f.root, `versions-moved-${randomBytes(4).toString('hex')}`));
  await symlink(elsewhere, join(dir, 'versions'));
  const other = await snapshotDir(elsewhere);
  const state = await readFile(join(dir, '.patchwire', 'state.json'), 'utf8');
  for (const args of [['check', '--force'], ['rollback']]) {
    const r = await runCli([...args, '--dir', dir, '--json']);
    assert.equal(r.code, 2, `${args[0]}: ${r.stdout}${r.stderr}`);
    const err = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'PW_UNSAFE_FOLDER');
    assert.match(err.message, new RegExp(`${join(dir, 'versions').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is a symbolic link`));
    assert.match(err.message, /make .* a plain folder owned by the user/);
  }
  assert.deepEqual(await snapshotDir(elsewhere), other, 'the other folder and its marker are untouched');
  assert.equal(await readFile(join(dir, '.patchwire', 'state.json'), 'utf8'), state, 'state unchanged');
});

test('a symlinked .patchwire/ is refused before anything is written through it', async () => {
  const { dir } = agents.meta;
  const elsewhere = await tempDir(suite, 'patchwire-meta-elsewhere-');
  const real = join(elsewhere, 'meta');
  await rename(join(dir, '.patchwire'), real);
  await symlink(real, join(dir, '.patchwire'));
  const before = await snapshotDir(elsewhere);
  const r = await runCli(['check', '--dir', dir, '--json', '--force']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /\.patchwire is a symbolic link/);
  assert.deepEqual(await snapshotDir(elsewhere), before, 'no lock, state or download written through the link');
});

/** A `delta-failed` report for `target` from `deviceId`, as an agent sends it. */
async function deltaFailed(deviceId: string, target: string, server = f.server.url): Promise<void> {
  const res = await fetch(`${server}/v1/report`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...(await f.sessions.headers(server, deviceId)) },
    body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', event: 'delta-failed', version: '1.0.0', previousVersion: '1.0.0', detail: target }),
  });
  assert.equal(res.status, 200, await res.text());
}

test('delta-failed: withdrawn only when 3 distinct devices report it, counted across a restart', async () => {
  const probe = '02:00:00:00:09:f0';
  const offered = async (server = f.server.url) => (await f.rawCheck(probe, '1.0.0', { server })).body.release?.delta?.target;
  const target = await waitFor(() => offered(), { what: 'a delta from 1.0.0 to be offered', timeout: 60_000, interval: 200 });
  for (let i = 0; i < 5; i++) await deltaFailed('02:00:00:00:09:a1', target);
  assert.equal(await offered(), target, 'one device reporting 5 times: still offered');
  await deltaFailed('02:00:00:00:09:a2', target);
  assert.equal(await offered(), target, '2 distinct devices: still offered');
  // A restart does not reset the count: it is read from the stored reports.
  await f.server.stop();
  f.server = await f.serve('server', { env: { PATCHWIRE_ENABLE_FAULTS: '1', PATCHWIRE_CLOCK_FILE: clockFile } });
  assert.equal(await offered(), target, 'still offered after the restart');
  await deltaFailed('02:00:00:00:09:a3', target);
  assert.equal(await offered(), undefined, '3 distinct devices: withdrawn');
  assert.equal((await f.rawCheck(probe, '1.0.0')).body.release?.kind, 'full');
});
