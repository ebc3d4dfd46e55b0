/**
 * Attacks on the AGENT through a hostile network or server (docs/design.md sections 3, 6, 8): real
 * `patchwire serve` processes on 127.0.0.1, a man in the middle (test/helpers/proxy.ts)
 * between them and real `patchwire check` processes. Every attack must be refused with an error
 * that names what failed, and must leave the install folder exactly as it was: same state, same
 * trusted metadata, same versions, same `current`. Afterwards the agent still works against the
 * real server.
 *
 * "Warm" agents: a refused download happens after the TUF metadata verified, and tuf-js
 * legitimately persists verified metadata. So that the before/after comparison can include
 * `.patchwire/tuf/`, agents that are attacked at the download step first see the current
 * metadata in a check whose target download fails with 503 (`warm`).
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { runCli, runJson, type CliResult, type ServerProcess } from './helpers/cli.js';
import { writeTree, currentLink, readCurrent, snapshotDir } from './helpers/files.js';
import { startProxy, type Proxy, type Seen } from './helpers/proxy.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet, type ProductInfo } from './helpers/fleet.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitUntilPast } from './helpers/wait-for.js';
import type { CheckResult } from '../src/agent/check.js';
import { applyRelease } from '../src/agent/install.js';
import { VerificationError } from '../src/agent/errors.js';
import { encodeHeader, encodePax, padding } from '../src/util/tar-format.js';
import { packTree } from '../src/util/archive-pack.js';
import { hashTree } from '../src/util/tree-hash.js';
import type { CheckResponse, ReleaseTargetCustom } from '../src/protocol/index.js';
import { resignAnswer } from './helpers/online-keys.js';

const TOKEN = 'attack-admin-token';
const suite = Cleanup.forSuite();
let f: Fleet;
let root: string;
let server: ServerProcess;
let key: string;
let rootFile: string;
/** A second, unrelated server with a 2 s timestamp lifetime (freeze attack; a "real other server"). */
let freezeServer: ServerProcess;
let freezeRootFile: string;
type ReleaseInfo = ProductInfo['releases'][number];

/** 300 kB of incompressible text: a target big enough to cut in half. */
const BIG = randomBytes(225_000).toString('base64');
const TREE_1 = { 'bin/app': '#!/bin/sh\necho 1.0.0\n', README: 'version one' };
const TREE_2 = { 'bin/app': '#!/bin/sh\necho 2.0.0\n', README: 'version two', 'data.bin': BIG };

let macCounter = 0x10;
const nextMac = () => `02:00:00:00:${(macCounter >> 8).toString(16).padStart(2, '0')}:${(macCounter++ & 0xff).toString(16).padStart(2, '0')}`;

const isTargetDownload = (s: Seen) => s.path.includes('/targets/') && s.method === 'GET';
const stateFile = (dir: string) => join(dir, '.patchwire', 'state.json');
const readState = async (dir: string) => JSON.parse(await readFile(stateFile(dir), 'utf8')) as Record<string, unknown>;
const check = (dir: string): Promise<CliResult> => runCli(['check', '--dir', dir, '--json', '--force'], { timeoutMs: 60_000 });

async function publish(srv: ServerProcess, version: string, files: Record<string, string>): Promise<void> {
  const r = await f.publish(version, files, { server: srv.url });
  assert.equal(r.code, 0, r.stderr);
}

async function createProduct(srv: ServerProcess, rootOut: string): Promise<void> {
  await f.createProduct({ server: srv.url, rootOut });
}

const releases = (srv: ServerProcess): Promise<ReleaseInfo[]> => f.releases({ server: srv.url });

/** Another server (stopped with the fleet) with acme at 1.0.0; `args`: more `patchwire serve` flags. */
async function serverAt1(name: string, args: string[] = []): Promise<{ srv: ServerProcess; rootFile: string }> {
  const srv = await f.serve(name, { args });
  const rootOut = join(root, `${name}.root.json`);
  await createProduct(srv, rootOut);
  await publish(srv, '1.0.0', TREE_1);
  return { srv, rootFile: rootOut };
}

async function proxyTo(upstream: string): Promise<Proxy> {
  const p = await startProxy(upstream);
  suite.after(() => p.close());
  return p;
}

/** `patchwire init` of a new install folder whose server is `serverUrl` (a proxy, usually). */
async function initAgent(name: string, serverUrl: string, rootPath = rootFile): Promise<string> {
  const dir = join(root, name);
  const r = await runCli(['init', '--dir', dir, '--server', serverUrl, '--product', 'acme', '--root', rootPath, '--device-id', nextMac()]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

async function checkOk(dir: string, result: CheckResult['result'], version: string): Promise<CheckResult> {
  const r = await runJson<CheckResult>(['check', '--dir', dir, '--json', '--force']);
  assert.equal(r.result, result, JSON.stringify(r));
  assert.equal(r.version, version);
  return r;
}

/** Makes the agent's trusted metadata current without installing anything: the target download answers 503. */
async function warm(proxy: Proxy, dir: string): Promise<void> {
  proxy.attack = (req) => (isTargetDownload(req) ? { status: 503, body: Buffer.from('{"statusCode":503,"code":"PW_UNAVAILABLE","error":"Service Unavailable","message":"busy"}') } : undefined);
  const r = await check(dir);
  proxy.attack = undefined;
  assert.equal(r.code, 1, `warm-up check should fail at the download: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /503/);
}

/** Points the agent straight at the real server (as an operator would after the attack) and checks. */
async function straight(dir: string, srv: ServerProcess, result: CheckResult['result'], version: string): Promise<void> {
  const s = await readState(dir);
  s.server = srv.url;
  await writeFile(stateFile(dir), JSON.stringify(s, null, 2));
  const r = await checkOk(dir, result, version);
  assert.equal(r.server, srv.url);
  assert.equal(await currentLink(dir), join('versions', version));
}

function withoutPrefix(snap: Map<string, string>, prefixes: string[]): Map<string, string> {
  return new Map([...snap].filter(([k]) => !prefixes.some((p) => k === p || k.startsWith(`${p}/`))));
}

/** Byte-for-byte equality of two snapshots, naming what differs. */
function assertSameTree(before: Map<string, string>, after: Map<string, string>, what: string): void {
  const diff: string[] = [];
  for (const [k, v] of before) if (!after.has(k)) diff.push(`removed ${k}`); else if (after.get(k) !== v) diff.push(`changed ${k}`);
  for (const k of after.keys()) if (!before.has(k)) diff.push(`added ${k}`);
  assert.deepEqual(diff, [], `${what}: the install folder changed:\n${diff.join('\n')}`);
}

/** Runs a check that must be refused: exit `code`, stderr matching every pattern, nothing changed on disk. */
async function refused(dir: string, patterns: RegExp[], opts: { code?: number; exclude?: string[] } = {}): Promise<CliResult> {
  // The device token cache is no state: a refused check may fetch a token before the attack shows.
  const exclude = [...(opts.exclude ?? []), '.patchwire/device-tokens.json'].map((p) => join(dir, p));
  const beforeSnap = withoutPrefix(await snapshotDir(dir), exclude);
  const link = await currentLink(dir).catch(() => null);
  const r = await check(dir);
  assert.equal(r.code, opts.code ?? 1, `expected exit ${opts.code ?? 1}; stdout: ${r.stdout} stderr: ${r.stderr}`);
  // No result; under --json (issue 8) the error itself is the one document on stdout.
  const printed = JSON.parse(r.stdout) as { result?: unknown; error?: { code?: unknown; message?: unknown } };
  assert.equal(printed.result, undefined, 'a refused check prints no result');
  assert.deepEqual(Object.keys(printed), ['error'], `stdout is one error document: ${r.stdout}`);
  assert.equal(typeof printed.error?.code, 'string');
  assert.ok(r.stderr.includes(String(printed.error?.message)), 'the same message as on stderr');
  for (const p of patterns) assert.match(r.stderr, p);
  assertSameTree(beforeSnap, withoutPrefix(await snapshotDir(dir), exclude), r.stderr.trim());
  assert.equal(await currentLink(dir).catch(() => null), link, '`current` is unchanged');
  return r;
}

/** Agents installed at 1.0.0 (before 2.0.0 exists), each behind its own proxy. */
const at1: Record<string, { dir: string; proxy: Proxy }> = {};

before(async () => {
  f = await startFleet(suite, { token: TOKEN, prefix: 'patchwire-attacks-', releases: [['1.0.0', TREE_1]] });
  ({ root, server, key, rootFile } = f);
  for (const name of ['tamper', 'endless', 'meta', 'unlisted']) {
    const proxy = await proxyTo(server.url);
    const dir = await initAgent(name, proxy.url);
    await checkOk(dir, 'updated', '1.0.0');
    at1[name] = { dir, proxy };
  }
  await publish(server, '2.0.0', TREE_2);

  ({ srv: freezeServer, rootFile: freezeRootFile } = await serverAt1('freeze-server', ['--timestamp-expiry', '2s']));
});

test('1. tampered artifact: one flipped byte in the target download is refused (sha256 mismatch), nothing applied', async () => {
  const { dir, proxy } = at1.tamper!;
  await warm(proxy, dir);
  let flipped = 0;
  proxy.attack = (req, up) => {
    if (!isTargetDownload(req) || up.status !== 200) return undefined;
    const body = Buffer.from(up.body);
    body[body.length >> 1]! ^= 0x01;
    flipped++;
    return { body };
  };
  await refused(dir, [/sha256/, /2\.0\.0\.tar\.gz/]);
  proxy.attack = undefined;
  assert.equal(flipped, 1, 'the tampered target was requested once');
  await straight(dir, server, 'updated', '2.0.0');
  assert.equal(await readCurrent(dir, 'README'), 'version two');
});

test('2. endless data: a target download that never ends is cut off at the signed length; a short one is refused too', async () => {
  const { dir, proxy } = at1.endless!;
  await warm(proxy, dir);
  proxy.attack = (req, up) => (isTargetDownload(req) && up.status === 200 ? { endless: true } : undefined);
  await refused(dir, [/more than the signed length/, /endless data/]);
  assert.ok(proxy.endless.clientClosed, 'the agent hung up on the endless stream');
  assert.ok(proxy.endless.sent < 64 * 1024 * 1024, `the agent stopped reading early (junk pushed: ${proxy.endless.sent} bytes)`);

  // Truncated: a clean answer with fewer bytes than signed.
  proxy.attack = (req, up) => (isTargetDownload(req) && up.status === 200 ? { body: up.body.subarray(0, up.body.length - 100) } : undefined);
  await refused(dir, [/bytes but the signed length is \d+/]);
  proxy.attack = undefined;
  await straight(dir, server, 'updated', '2.0.0');
});

test('3. tampered metadata: a changed character in N.targets.json or in timestamp.json is refused (signature/hash)', async () => {
  // Not warmed: this agent still trusts the targets of 1.0.0, so it must fetch the new ones.
  const { dir, proxy } = at1.meta!;
  let tampered = 0;
  proxy.attack = (req, up) => {
    if (!/\/tuf\/\d+\.targets\.json$/.test(req.path) || up.status !== 200) return undefined;
    const text = up.body.toString('utf8');
    const m = /"treeHash":\s*"([0-9a-f])/.exec(text);
    assert.ok(m, 'the signed targets carry a treeHash');
    const at = m.index + m[0].length - 1;
    tampered++;
    return { body: Buffer.from(text.slice(0, at) + (m[1] === '0' ? '1' : '0') + text.slice(at + 1)) };
  };
  await refused(dir, [/TUF metadata .* refused/, /signature|hash/]);
  assert.ok(tampered >= 1, 'the targets metadata was fetched and tampered');

  // A timestamp whose expiry is pushed a year out (an attacker extending a frozen view).
  tampered = 0;
  proxy.attack = (req, up) => {
    if (!req.path.endsWith('/tuf/timestamp.json') || up.status !== 200) return undefined;
    const text = up.body.toString('utf8');
    const changed = text.replace(/("expires":\s*")(\d{4})/, (_, pre: string, year: string) => `${pre}${Number(year) + 1}`);
    assert.notEqual(changed, text);
    tampered++;
    return { body: Buffer.from(changed) };
  };
  await refused(dir, [/TUF metadata .* refused/, /bad signature/]);
  assert.ok(tampered >= 1, 'the timestamp was fetched and tampered');
  proxy.attack = undefined;
  await straight(dir, server, 'updated', '2.0.0');
});

test('4. freeze: a replayed timestamp.json that has expired is refused as expired; straight to the server the same agent updates', async () => {
  const proxy = await proxyTo(freezeServer.url);
  let captured: Buffer | undefined;
  let replays = 0;
  proxy.attack = (req, up) => {
    if (!req.path.endsWith('/tuf/timestamp.json') || up.status !== 200) return undefined;
    if (!captured) captured = up.body;
    else replays++;
    return { body: captured };
  };
  const first = await fetch(`${proxy.url}/v1/products/acme/tuf/timestamp.json`);
  assert.equal(first.status, 200);
  await first.arrayBuffer();
  assert.ok(captured, 'the proxy captured a timestamp');
  const frozen = JSON.parse(captured.toString('utf8')) as { signed: { version: number; expires: string } };
  const expires = Date.parse(frozen.signed.expires);
  assert.ok(expires - Date.now() <= 2_500, `the server signs timestamps for 2 s (expires ${frozen.signed.expires})`);
  await waitUntilPast(expires, `the captured timestamp to expire (${frozen.signed.expires})`);
  // Meanwhile the server itself has re-signed: the attack is only in the replay.
  const live = (await (await fetch(`${freezeServer.url}/v1/products/acme/tuf/timestamp.json`)).json()) as { signed: { version: number; expires: string } };
  assert.ok(live.signed.version > frozen.signed.version && Date.parse(live.signed.expires) > Date.now(), 'the server re-signed');

  const dir = await initAgent('frozen', proxy.url, freezeRootFile);
  await refused(dir, [/expired/, /TUF metadata .* refused/]);
  assert.ok(replays >= 1, 'the agent was served the frozen copy');
  await assert.rejects(currentLink(dir), 'nothing was installed');
  await straight(dir, freezeServer, 'updated', '1.0.0');
});

test('5. rollback: an offer of a lower (or the same) version is refused; an offer the signed targets do not list is refused', async () => {
  const rels = await releases(server);
  const rel1 = rels.find((r) => r.version === '1.0.0')!;
  const rel2 = rels.find((r) => r.version === '2.0.0')!;
  // A compromised server: the offer is signed with its real timestamp key (a signed check answer
  // cannot stop that), so what refuses it is the agent's own rollback and TUF checks.
  const offer = (release: { version: string; target: string; sha256: string; length: number }) => async (req: Seen, up: { body: Buffer; status: number }) => {
    if (req.path !== '/v1/check' || up.status !== 200) return undefined;
    const answer = JSON.parse(up.body.toString('utf8')) as CheckResponse;
    const signed = { ...answer.signed!.signed, status: 'update' as const, latest: release.version, release: { version: release.version, target: release.target } };
    const forged = { ...answer, status: 'update', latest: release.version, release: { ...release, kind: 'full' }, signed: await resignAnswer(join(root, 'server'), signed) };
    return { body: Buffer.from(JSON.stringify(forged)) };
  };

  // An agent at 2.0.0 is offered the real, signed 1.0.0 release.
  const proxy = await proxyTo(server.url);
  const high = await initAgent('high', proxy.url);
  await checkOk(high, 'updated', '2.0.0');
  proxy.attack = offer(rel1);
  await refused(high, [/1\.0\.0/, /not higher than the applied 2\.0\.0/, /rollback/]);
  assert.equal((await readState(high)).version, '2.0.0');
  proxy.attack = offer(rel2);
  await refused(high, [/not higher than the applied 2\.0\.0/, /rollback/]);
  proxy.attack = undefined;
  await straight(high, server, 'up-to-date', '2.0.0');

  // An agent at 1.0.0 is offered a 3.0.0 that no signed metadata lists...
  const { dir, proxy: p2 } = at1.unlisted!;
  await warm(p2, dir);
  p2.attack = offer({ version: '3.0.0', target: 'stable/3.0.0.tar.gz', sha256: rel2.sha256, length: rel2.length });
  await refused(dir, [/stable\/3\.0\.0\.tar\.gz/, /signed TUF targets do not list it/]);
  // ... or a 3.0.0 that is really the signed 2.0.0 target (the signed custom version must match).
  p2.attack = offer({ version: '3.0.0', target: rel2.target, sha256: rel2.sha256, length: rel2.length });
  await refused(dir, [/signed as version 2\.0\.0, not 3\.0\.0/]);
  p2.attack = undefined;
  assert.equal((await readState(dir)).version, '1.0.0');
  await straight(dir, server, 'updated', '2.0.0');
});

test('6. an unsigned moved notice injected into check answers is refused; state.server is unchanged', async () => {
  const proxy = await proxyTo(server.url);
  const dir = await initAgent('moved', proxy.url);
  await checkOk(dir, 'updated', '2.0.0');
  const inject = (target: string) => (req: Seen, up: { body: Buffer; status: number }) => {
    if (req.path !== '/v1/check' || up.status !== 200) return undefined;
    const answer = JSON.parse(up.body.toString('utf8')) as Record<string, unknown>;
    return { body: Buffer.from(JSON.stringify({ ...answer, moved: { url: freezeServer.url, target } })) };
  };
  proxy.attack = inject('moved.json');
  await refused(dir, [/moved notice/, /refused/, /no signed target "moved\.json"/]);
  assert.equal((await readState(dir)).server, proxy.url);
  // A hint naming a real signed target that is not a moved notice.
  proxy.attack = inject('stable/2.0.0.tar.gz');
  await refused(dir, [/moved notice/, /not a moved notice/]);
  assert.equal((await readState(dir)).server, proxy.url);
  proxy.attack = undefined;
  await straight(dir, server, 'up-to-date', '2.0.0');
});

describe('7. moved loop: A announces B and B announces A (signed, real CLI)', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let dir: string;
  let loopRoot: string;

  before(async () => {
    const aData = join(root, 'loop-a');
    const bData = join(root, 'loop-b');
    a = await f.serve('loop-a');
    loopRoot = join(root, 'loop.root.json');
    await createProduct(a, loopRoot);
    await publish(a, '1.0.0', TREE_1);
    await a.stop();
    await cp(aData, bData, { recursive: true });
    a = await f.serve('loop-a');
    b = await f.serve('loop-b');
    dir = await initAgent('looper', a.url, loopRoot);
    await checkOk(dir, 'updated', '1.0.0');
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const r = await runCli(['move', '--server', from.url, '--token', TOKEN, '--product', 'acme', '--to', to.url, '--key', key]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  const metadata = async (srv: ServerProcess, file: string) => Buffer.from(await (await fetch(`${srv.url}/v1/products/acme/tuf/${file}`)).arrayBuffer());
  const targetsVersion = async (srv: ServerProcess) =>
    (JSON.parse((await metadata(srv, 'timestamp.json')).toString()) as { signed: { version: number } }).signed.version;

  test('7a. the agent at A gets a clear loop error and stays with A; state, versions and current are unchanged', async () => {
    const r = await refused(dir, [/loop/, new RegExp(`${a.url} -> ${b.url} -> ${a.url}`), new RegExp(`stays with ${a.url}`)], { exclude: ['.patchwire/tuf'] });
    assert.ok(r.stderr.length > 0);
    assert.equal((await readState(dir)).server, a.url);
  });

  test('7b. after the refused loop the agent does not keep B\'s metadata as trusted metadata of A', async () => {
    // The agent stays with A; its trusted targets must be A's (or what it had before), never those of
    // the server it refused to move to. B's targets differ from A's only in the moved notice's URL.
    const trusted = await readFile(join(dir, '.patchwire', 'tuf', 'targets.json'));
    const tsVersion = await targetsVersion(a);
    assert.ok(tsVersion >= 3);
    const aTargets = await metadata(a, `${tsVersion}.targets.json`);
    const bTargets = await metadata(b, `${tsVersion}.targets.json`);
    assert.notDeepEqual(aTargets, bTargets);
    assert.ok(!trusted.equals(bTargets), 'the agent at A trusts B\'s targets metadata (moved.json -> A) after refusing to move to B');
  });

  test('7c. the loop stays refused, with the same clear error, on the next check', async () => {
    const again = await check(dir);
    assert.equal(again.code, 1, `a second check must refuse the loop again; got exit ${again.code}: ${again.stdout}${again.stderr}`);
    assert.match(again.stderr, /loop/);
    assert.equal((await readState(dir)).server, a.url);
  });

  test('7d. once the operator breaks the loop (B announces itself) the agent follows A -> B', async () => {
    // A still announces B, and B now announces B: the chain ends at B.
    const fix = await runCli(['move', '--server', b.url, '--token', TOKEN, '--product', 'acme', '--to', b.url, '--key', key]);
    assert.equal(fix.code, 0, fix.stderr);
    // Control: an agent that never met the loop does follow A -> B now.
    const fresh = await initAgent('looper-control', a.url, loopRoot);
    assert.equal((await checkOk(fresh, 'updated', '1.0.0')).server, b.url);
    const r = await checkOk(dir, 'up-to-date', '1.0.0');
    assert.equal(r.server, b.url);
    assert.equal((await readState(dir)).server, b.url);
  });
});

describe('8. path-escaping archive content never reaches disk (applyRelease)', () => {
  const cleanup = Cleanup.forSuite();
  let base: string;
  let dir: string;
  let archives: string;

  /** A gzip'd tar from raw entries; `pax` puts the path in a pax header (the ustar name stays innocent). */
  function tarGz(entries: Array<{ name: string; type?: 'file' | 'dir' | 'symlink' | 'hardlink'; body?: string; link?: string; pax?: boolean }>): Buffer {
    const blocks: Buffer[] = [];
    for (const e of entries) {
      const body = Buffer.from(e.body ?? '');
      const typeflag = { file: '0', dir: '5', symlink: '2', hardlink: '1' }[e.type ?? 'file'];
      if (e.pax) {
        const pax = encodePax([['path', e.name]]);
        blocks.push(encodeHeader({ name: 'PaxHeaders/x', mode: 0o644, size: pax.length, typeflag: 'x' }), pax, Buffer.alloc(padding(pax.length)));
      }
      const size = e.type === undefined || e.type === 'file' ? body.length : 0;
      blocks.push(encodeHeader({ name: e.pax ? 'innocent' : e.name, mode: 0o644, size, typeflag, linkname: e.link }));
      if (size) blocks.push(body, Buffer.alloc(padding(size)));
    }
    blocks.push(Buffer.alloc(1024));
    return gzipSync(Buffer.concat(blocks));
  }

  const custom = (version: string, treeHash: string, treeBytes = 1 << 20): ReleaseTargetCustom => ({
    patchwire: { kind: 'full', product: 'acme', channel: 'stable', version, treeHash, treeBytes, treeFiles: 1 },
  });

  before(async () => {
    base = await tempDir(cleanup, 'patchwire-slip-');
    archives = await tempDir(cleanup, 'patchwire-slip-archives-');
    dir = join(base, 'install');
    await mkdir(dir);
    const good = await writeTree(join(archives, 'good-tree'), TREE_1);
    const goodArchive = join(archives, 'good.tar.gz');
    await packTree(good, goodArchive);
    const tree = await hashTree(good);
    await applyRelease(dir, goodArchive, custom('1.0.0', tree.hash));
    assert.equal(await currentLink(dir), join('versions', '1.0.0'));
  });

  const cases: Array<[string, () => Parameters<typeof tarGz>[0]]> = [
    ['a "../evil" file', () => [{ name: '../evil', body: 'pwned' }]],
    ['a "../../../evil" file after a good one', () => [{ name: 'ok.txt', body: 'fine' }, { name: '../../../evil', body: 'pwned' }]],
    ['an "a/../../evil" file', () => [{ name: 'a/', type: 'dir' }, { name: 'a/../../evil', body: 'pwned' }]],
    ['an absolute path', () => [{ name: join(base, 'abs-evil'), body: 'pwned' }]],
    ['a "../evil" path hidden in a pax header', () => [{ name: '../evil-pax', body: 'pwned', pax: true }]],
    ['a symlink to outside, then a file through it', () => [{ name: 'esc', type: 'symlink', link: '../../..' }, { name: 'esc/evil', body: 'pwned' }]],
    ['an absolute symlink, then a file through it', () => [{ name: 'esc', type: 'symlink', link: base }, { name: 'esc/evil', body: 'pwned' }]],
    ['a symlink inside the tree, then a file through it', () => [{ name: 'sub', type: 'symlink', link: '.' }, { name: 'sub/evil', body: 'pwned' }]],
    ['a symlink that climbs after a name', () => [{ name: 'd/', type: 'dir' }, { name: 'esc', type: 'symlink', link: 'd/../../..' }]],
    ['a hard link to a file outside', () => [{ name: 'h', type: 'hardlink', link: '/etc/passwd' }]],
  ];

  for (const [what, entries] of cases) {
    test(`refuses ${what}: nothing written outside, no .partial, current unchanged`, async () => {
      const archive = join(archives, `evil-${randomBytes(4).toString('hex')}.tar.gz`);
      await writeFile(archive, tarGz(entries()));
      const beforeSnap = await snapshotDir(base);
      await assert.rejects(applyRelease(dir, archive, custom('6.6.6', 'a'.repeat(64))), (err: unknown) => {
        assert.ok(err instanceof VerificationError, `a VerificationError, got ${String(err)}`);
        assert.match(err.message, /unsafe/);
        return true;
      });
      assertSameTree(beforeSnap, await snapshotDir(base), what);
      assert.equal(existsSync(join(dir, 'versions', '6.6.6.partial')), false);
      assert.equal(existsSync(join(dir, 'versions', '6.6.6')), false);
      assert.equal(await currentLink(dir), join('versions', '1.0.0'));
      for (const p of [join(base, 'evil'), join(base, 'abs-evil'), join(dir, 'evil'), join(dir, 'versions', 'evil'), '/etc/evil']) {
        assert.equal(existsSync(p), false, `${p} must not exist`);
      }
    });
  }
});

describe('9. corrupt state: check and agent exit 2, naming the file and what to do, and change nothing', () => {
  let dir: string;
  let original: Buffer;

  before(async () => {
    dir = await initAgent('corrupt', server.url);
    await checkOk(dir, 'updated', '2.0.0');
    original = await readFile(stateFile(dir));
  });

  const variants: Array<[string, (s: Record<string, unknown>) => string | null, RegExp]> = [
    ['truncated to half', () => original.subarray(0, original.length >> 1).toString('utf8'), /not valid JSON/],
    ['empty', () => '', /not valid JSON/],
    ['intervalSeconds is a string', (s) => JSON.stringify({ ...s, intervalSeconds: '3600' }), /intervalSeconds/],
    ['version is a number', (s) => JSON.stringify({ ...s, version: 2 }), /"version"/],
    ['server is a number', (s) => JSON.stringify({ ...s, server: 12345 }), /"server"/],
    ['nextCheckAt is not a time', (s) => JSON.stringify({ ...s, nextCheckAt: 'tomorrow' }), /nextCheckAt/],
    ['an array', () => '[]', /not a JSON object/],
    ['deleted', () => null, /no agent state .* run `patchwire init`/],
  ];

  for (const [what, make, pattern] of variants) {
    test(`state.json ${what}`, async () => {
      const content = make(JSON.parse(original.toString('utf8')) as Record<string, unknown>);
      if (content === null) await unlink(stateFile(dir));
      else await writeFile(stateFile(dir), content);
      try {
        const r = await refused(dir, [pattern, /state\.json/, /patchwire init/], { code: 2 });
        assert.ok(r.stderr.includes(stateFile(dir)), `the message names ${stateFile(dir)}: ${r.stderr}`);
        const beforeSnap = await snapshotDir(dir);
        const agent = await runCli(['agent', '--dir', dir], { timeoutMs: 15_000 });
        assert.equal(agent.code, 2, `agent exits 2 at once (not a retry loop); got ${agent.code}: ${agent.stdout}${agent.stderr}`);
        assert.ok(agent.stderr.includes(stateFile(dir)), agent.stderr);
        assertSameTree(beforeSnap, await snapshotDir(dir), 'agent --dir');
      } finally {
        await writeFile(stateFile(dir), original);
      }
    });
  }

  test('with the state restored the agent works again', async () => {
    await checkOk(dir, 'up-to-date', '2.0.0');
  });
});

describe('10. bad input to init: exit 2, a message naming the input, nothing created or changed', () => {
  let notRoot: string;
  let notJson: string;
  let emptyObject: string;

  before(async () => {
    notRoot = join(root, 'targets-not-root.json');
    const t = await fetch(`${server.url}/v1/products/acme/tuf/1.targets.json`);
    assert.equal(t.status, 200);
    await writeFile(notRoot, Buffer.from(await t.arrayBuffer()));
    notJson = join(root, 'not-json.root');
    await writeFile(notJson, randomBytes(200));
    emptyObject = join(root, 'empty-object.json');
    await writeFile(emptyObject, '{}');
  });

  const base = (dir: string) => ({ '--dir': dir, '--server': server.url, '--product': 'acme', '--root': rootFile, '--device-id': '02:aa:bb:cc:dd:ee' });
  const cases: Array<[string, () => Record<string, string>, RegExp]> = [
    ['a server that is not a URL', () => ({ '--server': 'not a url' }), /server URL "not a url" is invalid/],
    ['an ftp:// server', () => ({ '--server': 'ftp://example.com' }), /server URL .* is invalid/],
    ['a server URL with a query', () => ({ '--server': `${server.url}/?x=1` }), /server URL .* is invalid/],
    ['a missing root file', () => ({ '--root': join(root, 'no-such.root.json') }), /cannot read the root file .*no-such\.root\.json.*ENOENT/],
    ['a root file that is not JSON', () => ({ '--root': notJson }), /root file .* is not JSON/],
    ['a root file that is TUF targets metadata', () => ({ '--root': notRoot }), /not signed TUF root metadata/],
    ['a root file that is {}', () => ({ '--root': emptyObject }), /not signed TUF root metadata/],
    ['a device id that is not a MAC', () => ({ '--device-id': 'zz:zz:zz:zz:zz:zz' }), /device id .* is not a MAC address/],
    ['an all-zero MAC', () => ({ '--device-id': '00:00:00:00:00:00' }), /device id .* is not a MAC address/],
    ['an interval that is not a duration', () => ({ '--interval': 'soon' }), /--interval "soon"/],
    ['a zero interval', () => ({ '--interval': '0s' }), /interval/],
    ['an interval longer than a year', () => ({ '--interval': '400d' }), /interval .* is invalid/],
    ['a product name with capitals', () => ({ '--product': 'ACME!' }), /product "ACME!" is invalid/],
  ];

  for (const [what, override, pattern] of cases) {
    test(`init with ${what}`, async () => {
      const dir = join(root, `bad-init-${randomBytes(4).toString('hex')}`);
      const flags = { ...base(dir), ...override() };
      const r = await runCli(['init', ...Object.entries(flags).flat()]);
      assert.equal(r.code, 2, `exit 2; got ${r.code}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(existsSync(dir), false, 'the install folder was not created');
    });
  }

  test('init over an existing install: refused, nothing changed', async () => {
    const dir = await initAgent('existing', server.url);
    await checkOk(dir, 'updated', '2.0.0');
    const beforeSnap = await snapshotDir(dir);
    const r = await runCli(['init', '--dir', dir, '--server', 'http://127.0.0.1:1', '--product', 'acme', '--root', rootFile, '--device-id', '02:aa:bb:cc:dd:ef', '--interval', '5m']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /already initialised/);
    assert.ok(r.stderr.includes(stateFile(dir)), r.stderr);
    assertSameTree(beforeSnap, await snapshotDir(dir), 'init over an install');
  });

  test('init with --dir naming a file: refused, the file is unchanged', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'keep me');
    const r = await runCli(['init', ...Object.entries(base(file)).flat()]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /not a folder/);
    assert.equal(await readFile(file, 'utf8'), 'keep me');
  });
});

test('11. resume: a download cut half-way fails; the next check resumes it with Range: bytes=N- and applies', async () => {
  const proxy = await proxyTo(server.url);
  const dir = await initAgent('resume', proxy.url);
  await warm(proxy, dir);
  let cut = 0;
  let total = 0;
  proxy.attack = (req, up) => {
    if (!isTargetDownload(req) || up.status !== 200 || req.headers.range) return undefined;
    total = up.body.length;
    cut = total >> 1;
    return { cutAfter: cut };
  };
  // The partial download is legitimately kept for the resume: downloads/ is excluded here.
  await refused(dir, [/broke after \d+ of \d+ bytes/, /resume/], { exclude: ['.patchwire/downloads'] });
  proxy.attack = undefined;
  assert.ok(cut > 100_000, `a real cut (target of ${total} bytes)`);
  const rel2 = (await releases(server)).find((r) => r.version === '2.0.0')!;
  const part = join(dir, '.patchwire', 'downloads', `${rel2.sha256}.part`);
  const kept = (await stat(part)).size;
  assert.ok(kept > 0 && kept <= cut, `partial download kept: ${kept} of ${cut} sent`);

  proxy.seen.length = 0;
  await checkOk(dir, 'updated', '2.0.0');
  const downloads = proxy.seen.filter(isTargetDownload);
  assert.equal(downloads.length, 1, JSON.stringify(downloads.map((s) => [s.path, s.headers.range])));
  assert.equal(downloads[0]!.headers.range, `bytes=${kept}-`);
  assert.equal(downloads[0]!.upstreamStatus, 206);
  assert.equal(await currentLink(dir), join('versions', '2.0.0'));
  assert.equal(await readCurrent(dir, 'data.bin'), BIG);
  assert.equal(existsSync(part), false, 'no partial download left');
});

test('12. a signed move to a server that cannot be reached: exit 1, the agent keeps its address and its trusted metadata', async () => {
  // Same spirit as 7b: following a notice must not touch the trusted metadata before the new
  // server verified. A server of its own (2 s timestamps, as the freeze server's) announces a
  // closed port; the move stays there, away from the other tests.
  const { srv: mover, rootFile: moverRoot } = await serverAt1('move-server', ['--timestamp-expiry', '2s']);
  const dir = await initAgent('deadmove', mover.url, moverRoot);
  await checkOk(dir, 'updated', '1.0.0');
  const mv = await runCli(['move', '--server', mover.url, '--token', TOKEN, '--product', 'acme', '--to', 'http://127.0.0.1:9', '--key', key]);
  assert.equal(mv.code, 0, mv.stderr);
  const r = await check(dir);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /127\.0\.0\.1:9/);
  assert.equal((await readState(dir)).server, mover.url);
  assert.equal(await currentLink(dir), join('versions', '1.0.0'));
  const tuf = join(dir, '.patchwire', 'tuf');
  for (const f of ['root.json', 'timestamp.json', 'snapshot.json', 'targets.json']) {
    assert.ok(existsSync(join(tuf, f)), `${f} of the server the agent stays with is still trusted (a failed move must not reset the rollback-protection counters)`);
  }
});
