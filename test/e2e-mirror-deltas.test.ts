/**
 * Issue 13, deltas through mirrors, end to end with real processes on 127.0.0.1: a primary
 * computes a delta after a publish, a mirror copies it (hashed while staged, checked against the
 * signed deltas metadata it replicated) and offers it as the primary does; an agent enrolled
 * through the mirror applies it, fetching every byte from the mirror. Attacks: a man in the middle
 * between a mirror and its primary that corrupts the delta's bytes (the mirror refuses it, says
 * why, offers the full archive, and takes the delta once it comes intact), and one that forges the
 * catalog's delta entries (paths that leave the deltas folder, lengths beyond the release,
 * versions the mirror does not hold: all refused, the honest delta still copied).
 *
 * One primary for the file (acme 1.0.0, then 1.1.0 with its delta); the attacks start mirrors
 * of their own; the last test withdraws the delta at the primary (the mirror follows). Between each mirror and the primary runs a proxy (test/helpers/proxy.ts) that records
 * what the mirror fetched and, in the attacks, tampers with it. Mirrors replicate every second.
 */
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { startProxy, type Proxy } from './helpers/proxy.js';
import { Cleanup } from './helpers/cleanup.js';
import { currentLink } from './helpers/files.js';
import { waitFor } from './helpers/wait-for.js';
import type { ServerProcess } from './helpers/cli.js';
import type { CheckResponse, MirrorCatalog } from '../src/protocol/wire.js';

const ADMIN = 'mirror-deltas-admin';
const MIRROR_TOKEN = 'mirror-deltas-mt';
const MIRROR_ADMIN = 'mirror-deltas-mirror-admin';
const DELTA_PATH = '/v1/products/acme/targets/deltas/';

/** A tree big enough that a delta beats the compressed archive (as in e2e-delta.test.ts). */
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

const suite = Cleanup.forSuite();
let f: Fleet;
/** The primary's offer to a device on 1.0.0 once its delta is ready. */
let primaryOffer: CheckResponse;

const offerAt = async (server: string, deviceId: string): Promise<CheckResponse> => (await f.rawCheck(deviceId, '1.0.0', { server })).body;

/** A mirror of the primary reached through `proxy` (its --upstream), with its own data folder. */
async function startMirror(name: string, proxy: Proxy): Promise<ServerProcess> {
  const mirror = await f.serve(name, { token: MIRROR_ADMIN, args: ['--upstream', proxy.url, '--upstream-token', MIRROR_TOKEN, '--sync-interval', '1s'] });
  await waitFor(async () => (await f.releases({ server: mirror.url })).length > 0, { what: `mirror ${name} to replicate acme`, timeout: 60_000, detail: mirror.output });
  return mirror;
}

/** Waits until the mirror offers a device on 1.0.0 an update of kind `kind` to 1.1.0. */
const offered = (mirror: ServerProcess, kind: 'delta' | 'full', deviceId: string) =>
  waitFor(async () => {
    const o = await offerAt(mirror.url, deviceId);
    return o.release?.version === '1.1.0' && o.release.kind === kind && o;
  }, { what: `the mirror to offer the ${kind} update to 1.1.0`, timeout: 60_000, detail: mirror.output });

describe('deltas through mirrors', () => {
  let mirror: ServerProcess;
  let toPrimary: Proxy;
  let toMirror: Proxy;
  let agent: string;

  before(async () => {
    f = await startFleet(suite, {
      token: ADMIN,
      prefix: 'patchwire-mirror-deltas-',
      // One device's delta-failed report withdraws a delta (the last test).
      server: { name: 'primary', args: ['--mirror-token', MIRROR_TOKEN, '--reconcile-interval', '1h', '--delta-fail-threshold', '1'] },
      releases: [['1.0.0', tree('1.0.0', false)]],
    });
    // The agent is enrolled through the mirror (reached through a proxy that records what it fetched) at 1.0.0.
    toPrimary = await startProxy(f.server.url);
    suite.after(() => toPrimary.close());
    mirror = await startMirror('mirror', toPrimary);
    toMirror = await startProxy(mirror.url);
    suite.after(() => toMirror.close());
    agent = await f.initAgent('a', 'dd:00:00:00:01:01', { server: toMirror.url });
    assert.equal((await f.check(agent)).version, '1.0.0');

    const p = await f.publish('1.1.0', tree('1.1.0', true));
    assert.equal(p.code, 0, p.stderr);
    primaryOffer = await waitFor(async () => {
      const o = await offerAt(f.server.url, 'dd:00:00:00:01:99');
      return o.release?.kind === 'delta' && o;
    }, { what: 'the primary to compute the delta from 1.0.0', timeout: 60_000, detail: f.server.output });
  });

  test('a mirror copies the delta and offers it as the primary does; an agent behind it applies the delta, every byte from the mirror', async (t) => {
    const mirrorOffer = await offered(mirror, 'delta', 'dd:00:00:00:01:98');
    assert.deepEqual(mirrorOffer.release, primaryOffer.release, 'the same offer as at the primary');
    const d = mirrorOffer.release!.delta!;
    assert.equal(d.from, '1.0.0');
    // The mirror fetched the delta from its primary once, by its hash, with the mirror token.
    const copied = toPrimary.seen.filter((r) => r.path.startsWith(DELTA_PATH));
    assert.equal(copied.length, 1, JSON.stringify(copied.map((r) => r.path)));
    assert.equal(copied[0]!.path, `${DELTA_PATH}stable/${d.sha256}.1.0.0_1.1.0.pwdelta`);
    assert.equal(copied[0]!.upstreamStatus, 200);

    const primarySeen = toPrimary.seen.length;
    const mirrorSeen = toMirror.seen.length;
    const r = await f.check(agent, '--force');
    assert.equal(r.result, 'updated');
    assert.equal(r.version, '1.1.0');
    assert.deepEqual(r.patch, { kind: 'delta', bytes: d.length, resumedFrom: 0 });
    t.diagnostic(`behind the mirror: delta ${d.length} bytes instead of the full archive's ${mirrorOffer.release!.length} (${(d.length / mirrorOffer.release!.length).toFixed(3)}x)`);
    assert.equal(await currentLink(agent), join('versions', '1.1.0'));
    assert.equal(await readFile(join(agent, 'current', 'VERSION'), 'utf8'), '1.1.0');
    assert.deepEqual(await readFile(join(agent, 'current', 'lib', '_module5.js'), 'utf8'), tree('1.1.0', true)['lib/_module5.js'], 'the renamed file is rebuilt from the old tree');
    assert.deepEqual(await readFile(join(agent, 'current', 'lib', 'module3.js'), 'utf8'), tree('1.1.0', true)['lib/module3.js']);
    // The agent got the delta (and no archive) from the mirror; the mirror fetched nothing of it meanwhile.
    const agentGot = toMirror.seen.slice(mirrorSeen).filter((x) => x.path.includes('/targets/'));
    assert.deepEqual(agentGot.map((x) => [x.path, x.upstreamStatus]), [[`${DELTA_PATH}stable/${d.sha256}.1.0.0_1.1.0.pwdelta`, 200]]);
    assert.deepEqual(toPrimary.seen.slice(primarySeen).filter((x) => x.path.includes('/targets/')), [], 'no target fetched from the primary during the update');
    assert.ok(!(await f.reports('dd:00:00:00:01:01', { server: mirror.url })).some((x) => x.event === 'delta-failed'));
  });

  test('a man in the middle corrupts the delta on its way to a mirror: the mirror refuses it, says why, offers the full archive, and copies the delta once it comes intact', async () => {
    let corrupt = true;
    const tamper = await startProxy(f.server.url, (req, up) => {
      if (!corrupt || !req.path.startsWith(DELTA_PATH) || up.status !== 200) return undefined;
      const bad = Buffer.from(up.body);
      bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
      return { body: bad };
    });
    try {
      const m = await startMirror('mirror-tampered', tamper);
      const d = primaryOffer.release!.delta!;
      await waitFor(() => m.output().includes('a delta from the primary was refused'), { what: 'the mirror to log the refused delta', timeout: 60_000, detail: m.output });
      const line = m.output().split('\n').find((l) => l.includes('a delta from the primary was refused'))!;
      assert.match(line, new RegExp(`sent ${d.length} bytes with sha256 [0-9a-f]{64}, expected ${d.length} bytes with sha256 ${d.sha256}`), line);
      assert.match(line, /deltas\/stable\/1\.0\.0_1\.1\.0\.pwdelta/);
      // The pass went on: 1.1.0 is replicated and offered, as the full archive.
      const full = await offered(m, 'full', 'dd:00:00:00:02:98');
      assert.equal(full.release?.delta, null);
      // Tried again at the next passes, refused each time while the bytes are bad; nothing kept.
      await waitFor(() => tamper.seen.filter((r) => r.path.startsWith(DELTA_PATH)).length >= 2, { what: 'the mirror to try the delta again', timeout: 60_000, detail: m.output });
      assert.equal((await offerAt(m.url, 'dd:00:00:00:02:97')).release?.kind, 'full');
      const served = await fetch(`${m.url}${DELTA_PATH}stable/${d.sha256}.1.0.0_1.1.0.pwdelta`);
      assert.equal(served.status, 404, 'the mirror serves no delta it does not hold');
      await served.body?.cancel();
      // Once the bytes come intact, the mirror takes them and offers the delta.
      corrupt = false;
      const delta = await offered(m, 'delta', 'dd:00:00:00:02:96');
      assert.deepEqual(delta.release, primaryOffer.release);
    } finally {
      await tamper.close();
    }
  });

  test('a forged catalog (paths out of the deltas folder, lengths beyond the release, unknown versions, junk): every forged entry is refused and logged, the honest delta still copied', async () => {
    const d = primaryOffer.release!.delta!;
    const honest = { channel: 'stable', from: '1.0.0', to: '1.1.0', engine: 'lz-brotli', createdAt: new Date().toISOString(), failed: false };
    const forged = [
      { ...honest, target: 'deltas/stable/../../../../etc/passwd', sha256: d.sha256, length: d.length },
      { ...honest, target: `deltas/stable/1.0.0_1.1.0.pwdelta`, sha256: 'f'.repeat(64), length: primaryOffer.release!.length * 100 },
      { ...honest, from: '0.9.0', target: 'deltas/stable/0.9.0_1.1.0.pwdelta', sha256: d.sha256, length: d.length },
      { ...honest, from: '1.1.0', to: '1.0.0', target: 'deltas/stable/1.1.0_1.0.0.pwdelta', sha256: d.sha256, length: d.length },
      { ...honest, target: 'deltas/stable/1.0.0_1.1.0.pwdelta', sha256: 'e'.repeat(64), length: d.length },
      'junk',
      null,
    ];
    const forger = await startProxy(f.server.url, (req, up) => {
      if (!req.path.startsWith('/v1/mirror/catalog') || up.status !== 200) return undefined;
      const catalog = JSON.parse(up.body.toString('utf8')) as MirrorCatalog;
      for (const p of catalog.products) p.deltas = [...forged, ...(p.deltas ?? [])] as never;
      return { body: Buffer.from(JSON.stringify(catalog)) };
    });
    try {
      const m = await startMirror('mirror-forged', forger);
      const delta = await offered(m, 'delta', 'dd:00:00:00:03:98');
      assert.deepEqual(delta.release, primaryOffer.release, 'the honest delta is copied and offered');
      await waitFor(() => m.output().includes('this mirror refused 7 of the deltas'), { what: 'the mirror to log the refused entries', timeout: 30_000, detail: m.output });
      const line = m.output().split('\n').find((l) => l.includes('this mirror refused 7 of the deltas'))!;
      assert.match(line, /'deltas\/stable\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd' is not the delta path of stable 1\.0\.0 to 1\.1\.0/);
      assert.match(line, /longer than the full archive of 1\.1\.0/);
      assert.match(line, /names releases this mirror does not hold/);
      assert.match(line, /not to a higher version/);
      assert.match(line, /is not what the signed deltas metadata lists/);
      // Logged once, not at every pass.
      await waitFor(() => forger.seen.filter((r) => r.path.startsWith('/v1/mirror/catalog')).length >= 4, { what: 'more replication passes', timeout: 60_000 });
      assert.equal(m.output().split('\n').filter((l) => l.includes('this mirror refused 7 of the deltas')).length, 1);
      // Only the honest delta was ever fetched, by its hash.
      const fetched = forger.seen.filter((r) => r.path.includes('/targets/deltas/')).map((r) => r.path);
      assert.deepEqual([...new Set(fetched)], [`${DELTA_PATH}stable/${d.sha256}.1.0.0_1.1.0.pwdelta`]);
    } finally {
      await forger.close();
    }
  });

  // Last: it withdraws the primary's delta.
  test('a delta the primary withdraws (a device could not apply it) is withdrawn by the mirror too: both offer the full archive', async () => {
    const d = primaryOffer.release!.delta!;
    assert.equal((await offerAt(mirror.url, 'dd:00:00:00:04:98')).release?.kind, 'delta');
    const deviceId = 'dd:00:00:00:04:01';
    const res = await fetch(`${f.server.url}/v1/report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await f.sessions.headers(f.server.url, deviceId)) },
      body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', event: 'delta-failed', version: '1.0.0', previousVersion: '1.0.0', toVersion: '1.1.0', detail: 'deltas/stable/1.0.0_1.1.0.pwdelta' }),
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal((await offerAt(f.server.url, 'dd:00:00:00:04:97')).release?.kind, 'full', 'withdrawn at the primary');
    const full = await offered(mirror, 'full', 'dd:00:00:00:04:96');
    assert.deepEqual(full.release, (await offerAt(f.server.url, 'dd:00:00:00:04:95')).release, 'the same offer as at the primary');
    // The mirror still serves the bytes (the signed deltas metadata lists them), it just no longer offers them.
    const served = await fetch(`${mirror.url}${DELTA_PATH}stable/${d.sha256}.1.0.0_1.1.0.pwdelta`);
    assert.equal(served.status, 200);
    assert.equal((await served.arrayBuffer()).byteLength, d.length);
  });
});
