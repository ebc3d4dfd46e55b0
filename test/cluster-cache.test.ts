/**
 * Several server processes on one database, played in one process: two real servers (real HTTP on
 * 127.0.0.1, each its own data folder) over two SQLite connections to one file and one artifact
 * folder, sharing one LocalCoordination marked shared, so every change reaches the other server
 * only through the catalog/revocation notifications, as with PostgreSQL (e2e-cluster.test.ts runs
 * the real thing: two `patchwire serve` processes on PostgreSQL).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer as startInProcess, type RunningServer } from '../src/server/start.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { LocalCoordination, type NotifyChannel } from '../src/store/coordination.js';
import { CatalogSync, type RevocationNotice } from '../src/server/services/catalog-sync.js';
import { runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { writeTree } from './helpers/files.js';
import { waitFor } from './helpers/wait-for.js';
import { ServerReads } from './helpers/server-reads.js';
import { deviceSession } from './helpers/device-session.js';
import { targetUrl } from '../src/protocol/urls.js';

const TOKEN = 'cluster-cache-admin-token-0123456789';
/** Within 1 s, as docs/architecture.md promises, plus a margin for a shared test machine. */
const WITHIN = { timeout: 2000 };

interface ServeOptions { token?: string; print?: (l: string) => void }

/** One "process": a real server (own data folder, real HTTP) on `<root>/shared.db` and `<root>/artifacts`. */
async function serveOn(root: string, cleanup: Cleanup, name: string, coordination: LocalCoordination, o: ServeOptions = {}): Promise<RunningServer> {
  const store = await SqliteStore.open(join(root, 'shared.db'), { coordination });
  await store.migrate();
  const artifacts = await DiskArtifactStore.open(join(root, 'artifacts'));
  const s = await startInProcess({
    dataDir: join(root, name), host: '127.0.0.1', port: 0, token: o.token, logLevel: 'silent', print: o.print ?? (() => {}),
    storage: { store, artifacts }, cacheReloadMs: 3600_000,
  });
  cleanup.after(() => s.close());
  return s;
}

class Reads extends ServerReads {
  constructor(private readonly url: string) { super(TOKEN, 'acme'); }
  protected defaultServer(): string { return this.url; }
}

describe('two servers on one database: caches follow notifications', () => {
  const cleanup = Cleanup.forSuite();
  let root: string;
  let a: RunningServer;
  let b: RunningServer;
  let key: string;
  // Reads through either server; one set of device sessions, so a device keeps one key at both.
  let atA: Reads;
  let atB: Reads;

  const serve = (name: string, coordination: LocalCoordination, o: ServeOptions = {}) => serveOn(root, cleanup, name, coordination, o);

  before(async () => {
    root = await tempDir(cleanup, 'patchwire-cluster-');
    key = join(root, 'publisher.key');
    const bus = new LocalCoordination({ shared: true });
    // Both start together on an empty database: one makes the admin token and prints it.
    const printed: string[] = [];
    [a, b] = await Promise.all([serve('a', bus, { print: (l) => printed.push(l) }), serve('b', bus, { print: (l) => printed.push(l) })]);
    assert.equal(printed.length, 1, `one admin token printed: ${printed.join(' | ')}`);
    const admin = /: (\S+)$/.exec(printed[0]!)![1]!;
    const status = await fetch(`${b.url}/v1/admin/status`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(status.status, 200, 'the token A or B printed works at both');
    const s2 = await fetch(`${a.url}/v1/admin/status`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(s2.status, 200);
    // Later tests use a token of their own: every process is started with the same PATCHWIRE_TOKEN.
    await Promise.all([a.close(), b.close()]);
    [a, b] = await Promise.all([serve('a', bus, { token: TOKEN }), serve('b', bus, { token: TOKEN })]);
    assert.equal((await runCli(['keygen', '--out', key])).code, 0);
    atB = new Reads(b.url);
    atA = Object.assign(new Reads(a.url), { sessions: atB.sessions });
  });

  it('share the online keys through the database (no key file), and one product created through A is known to B', async () => {
    assert.deepEqual(a.services.products.onlineKeys(), b.services.products.onlineKeys());
    await assert.rejects(access(join(root, 'a', 'keys', 'online.json')), 'a shared database keeps the online keys in its settings');
    const r = await runCli(['product', 'create', '--server', a.url, '--token', TOKEN, '--product', 'acme', '--key', key, '--root-out', join(root, 'acme.root.json')]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => b.services.products.exists('acme'), { ...WITHIN, what: 'B knows the product' });
  });

  it('a release published through A is offered by B; a yank through B withdraws it at A', async () => {
    const tree = await writeTree(join(root, 'trees', '1.0.0'), { 'bin/acme': 'echo 1.0.0\n' });
    const p = await runCli(['publish', '--server', a.url, '--token', TOKEN, '--product', 'acme', '--version', '1.0.0', '--key', key, tree]);
    assert.equal(p.code, 0, p.stderr);
    const offer = await waitFor(async () => {
      const c = await atB.rawCheck('aa:bb:cc:10:00:01', null);
      return c.body.status === 'update' && c.body;
    }, { ...WITHIN, what: 'B offers 1.0.0' });
    assert.equal(offer.latest, '1.0.0');
    // The bytes are shared too: B serves the archive A received.
    const res = await fetch(targetUrl(b.url, 'acme', offer.release!.target, offer.release!.sha256));
    assert.equal(res.status, 200);
    await res.arrayBuffer();

    const y = await runCli(['release', 'yank', '--server', b.url, '--token', TOKEN, '--product', 'acme', '--version', '1.0.0']);
    assert.equal(y.code, 0, y.stderr);
    await waitFor(async () => (await atA.rawCheck('aa:bb:cc:10:00:02', null)).body.latest === null, { ...WITHIN, what: 'A no longer offers the yanked 1.0.0' });
  });

  it('a schedule set through B and a moved notice set through B appear in checks at A', async () => {
    const at = new Date(Date.now() + 3600_000).toISOString();
    const s = await runCli(['schedule', '--server', b.url, '--token', TOKEN, '--product', 'acme', '--at', at]);
    assert.equal(s.code, 0, s.stderr);
    await waitFor(async () => (await atA.rawCheck('aa:bb:cc:10:00:03', null)).body.schedule?.at === at, { ...WITHIN, what: 'A announces the schedule' });
    const m = await runCli(['move', '--server', b.url, '--token', TOKEN, '--product', 'acme', '--to', 'http://127.0.0.1:9', '--key', key]);
    assert.equal(m.code, 0, m.stderr);
    await waitFor(async () => (await atA.rawCheck('aa:bb:cc:10:00:03', null)).body.moved?.url === 'http://127.0.0.1:9', { ...WITHIN, what: 'A announces the moved notice' });
  });

  it('an admission policy set through A holds for an enrolment at B; a reject through A stops the token at B', async () => {
    const mac = 'aa:bb:cc:10:00:04';
    const session = await deviceSession(b.url, mac);
    const check = () => fetch(`${b.url}/v1/check`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...session.headers },
      body: JSON.stringify({ deviceId: mac, product: 'acme', channel: 'stable', version: null }),
    });
    assert.equal((await check()).status, 200, 'B confirmed the token (held in its memory from now on)');
    const r = await runCli(['devices', 'reject', mac, '--server', a.url, '--token', TOKEN, '--product', 'acme']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await check()).status === 401, { ...WITHIN, what: 'B refuses the rejected device\'s token' });

    const p = await runCli(['product', 'admission', 'acme', 'approve', '--server', a.url, '--token', TOKEN]);
    assert.equal(p.code, 0, p.stderr);
    await waitFor(() => b.services.products.admissionOf('acme') === 'approve', { ...WITHIN, what: 'B has the new policy' });
    await assert.rejects(deviceSession(b.url, 'aa:bb:cc:10:00:05'), /PW_DEVICE_PENDING/, 'a new device waits for approval at B');
  });

  it('a device reported through B is read through A', async () => {
    const tree = await writeTree(join(root, 'trees', '1.1.0'), { 'bin/acme': 'echo 1.1.0\n' });
    const p = await runCli(['publish', '--server', b.url, '--token', TOKEN, '--product', 'acme', '--version', '1.1.0', '--key', key, tree]);
    assert.equal(p.code, 0, p.stderr);
    await waitFor(async () => a.services.releases.latestOf('acme', 'stable')?.version === '1.1.0', { ...WITHIN, what: 'A has 1.1.0' });
    const mac = 'aa:bb:cc:10:00:01';
    const headers = await atA.sessions.headers(a.url, mac);
    const res = await fetch(`${a.url}/v1/report`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ deviceId: mac, product: 'acme', channel: 'stable', event: 'applied', version: '1.1.0', previousVersion: null }),
    });
    assert.equal(res.status, 200, await res.text());
    const rows = await atB.reports(mac);
    assert.deepEqual(rows.map((r) => [r.event, r.version]), [['applied', '1.1.0']]);
  });
});

/** A shared in-process coordination that can also report a gap, as PgCoordination does after it reconnects. */
class GappyBus extends LocalCoordination {
  readonly gaps: Array<() => void> = [];
  constructor() { super({ shared: true }); }
  override async listen(channel: NotifyChannel, onMessage: (payload: string) => void, onGap?: () => void) {
    if (onGap) this.gaps.push(onGap);
    return super.listen(channel, onMessage);
  }
}

describe('CatalogSync', () => {
  const log = { warned: [] as string[], warn(_o: object, m: string) { this.warned.push(m); }, error() {} };
  const calls: string[] = [];
  const reloaders = {
    reloadProduct: async (p: string) => void calls.push(`product ${p}`),
    reloadAll: async () => void calls.push('all'),
    revoke: (r: RevocationNotice) => void calls.push(`revoke ${r.deviceId} ${r.keyId}`),
  };

  it('reloads the product a notification names, applies revocations, ignores malformed ones, and reloads all after a gap', async (t) => {
    const bus = new GappyBus();
    const sync = new CatalogSync(bus, { reloadIntervalMs: 3600_000, log });
    t.after(() => sync.close());
    await sync.start(reloaders);
    sync.ready();
    sync.changed('acme', 'releases');
    sync.revoked({ deviceId: 'aa:bb:cc:00:00:01', product: 'acme', keyId: null, at: 1 });
    await bus.notify('catalog', '{"product":"../etc"}');
    await bus.notify('revocation', 'not json');
    await waitFor(() => calls.length >= 2 && log.warned.length >= 2, { what: 'the notifications handled', timeout: 2000 });
    await sync.idle();
    assert.deepEqual(calls, ['product acme', 'revoke aa:bb:cc:00:00:01 null']);
    assert.equal(log.warned.length, 2, 'each malformed notification is logged and changes nothing');
    calls.length = 0;
    bus.gaps[0]!();
    await sync.idle();
    assert.deepEqual(calls, ['all']);
  });

  it('does nothing on a database only one process uses (SQLite): no notifications, no reloads', async (t) => {
    const bus = new LocalCoordination();
    const sync = new CatalogSync(bus, { reloadIntervalMs: 3600_000, log });
    t.after(() => sync.close());
    let heard = 0;
    await bus.listen('catalog', () => heard++);
    calls.length = 0;
    await sync.start(reloaders);
    sync.ready();
    sync.changed('acme', 'releases');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(heard, 0);
    assert.deepEqual(calls, []);
  });
});

it('serve refuses a --cache-reload or --sighting-flush that is not a bounded duration, and creates nothing', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = join(await tempDir(c), 'data');
  for (const [flag, value, message] of [
    ['--cache-reload', 'soon', /--cache-reload 'soon' is not a duration/],
    ['--sighting-flush', '2h', /--sighting-flush '2h' is longer than the most it allows, 1h/],
  ] as const) {
    const r = await runCli(['serve', '--data', dir, '--port', '0', flag, value]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  await assert.rejects(access(dir), 'no data folder made');
});
