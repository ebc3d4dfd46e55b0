/**
 * The timestamp record a server reuses for its signed check answers (issue 10: read once per
 * TIMESTAMP_REUSE_MS instead of once per signed check). Every server here runs on a frozen clock,
 * so the reuse window never runs out by itself: a signed answer names the new timestamp only
 * because a publish, a moved notice or a re-sign dropped the cached record, in this process or,
 * through the catalog notification, in another one on the same database (SQLite with a shared
 * in-process coordination, and PostgreSQL with its real LISTEN/NOTIFY). An agent refuses an answer
 * naming a timestamp older than one it trusts, so a stale record would be a false freeze alarm.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../src/server/start.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import type { Store } from '../src/store/store.js';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { LocalCoordination } from '../src/store/coordination.js';
import type { CheckResponse } from '../src/protocol/wire.js';
import { runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { writeTree } from './helpers/files.js';
import { waitFor } from './helpers/wait-for.js';
import { DeviceSessions } from './helpers/device-session.js';
import { tempPgDatabase } from './helpers/postgres.js';

const TOKEN = 'timestamp-cache-admin-token-0123456789';
/** Short, so a re-sign is due after moving the clock 61 s (device tokens last an hour). */
const TIMESTAMP_EXPIRY_S = 120;

/** A clock the test moves by hand; it never moves by itself. */
class FrozenClock {
  t = Date.now();
  readonly now = () => new Date(this.t);
}

interface Fleet {
  root: string;
  key: string;
  clock: FrozenClock;
  sessions: DeviceSessions;
}

/** A server on `store` (migrated by the caller: two migrations at once on one SQLite file collide). */
async function serve(f: Fleet, cleanup: Cleanup, name: string, store: Store): Promise<RunningServer> {
  const artifacts = await DiskArtifactStore.open(join(f.root, 'artifacts'));
  const s = await startServer({
    dataDir: join(f.root, name), host: '127.0.0.1', port: 0, token: TOKEN, logLevel: 'silent', print: () => {},
    storage: { store, artifacts }, cacheReloadMs: 3600_000, clock: f.clock.now, timestampExpirySeconds: TIMESTAMP_EXPIRY_S,
  });
  cleanup.after(() => s.close());
  return s;
}

/** A check as the agent sends it (a nonce: the answer is signed); answers the timestamp version it names. */
async function signedCheck(f: Fleet, server: string, deviceId = 'aa:bb:cc:20:00:01'): Promise<number> {
  const nonce = randomBytes(16).toString('hex');
  const res = await fetch(`${server}/v1/check`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await f.sessions.headers(server, deviceId)) },
    body: JSON.stringify({ deviceId, product: 'acme', channel: 'stable', version: null, nonce }),
  });
  const body = (await res.json()) as CheckResponse;
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.signed?.signed.nonce, nonce, 'the answer is signed for this request');
  return body.signed!.signed.timestamp.version;
}

/** The version of timestamp.json as the server serves it now (read from the store). */
async function servedTimestamp(server: string): Promise<number> {
  const res = await fetch(`${server}/v1/products/acme/tuf/timestamp.json`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { signed: { version: number } }).signed.version;
}

async function newFleet(cleanup: Cleanup): Promise<Fleet> {
  const root = await tempDir(cleanup, 'patchwire-ts-cache-');
  const key = join(root, 'publisher.key');
  assert.equal((await runCli(['keygen', '--out', key])).code, 0);
  return { root, key, clock: new FrozenClock(), sessions: new DeviceSessions() };
}

async function createProduct(f: Fleet, server: string): Promise<void> {
  const r = await runCli(['product', 'create', '--server', server, '--token', TOKEN, '--product', 'acme', '--key', f.key, '--root-out', join(f.root, 'acme.root.json')]);
  assert.equal(r.code, 0, r.stderr);
}

async function publish(f: Fleet, server: string, version: string): Promise<void> {
  const tree = await writeTree(join(f.root, 'trees', version), { 'bin/acme': `echo ${version}\n` });
  const p = await runCli(['publish', '--server', server, '--token', TOKEN, '--product', 'acme', '--version', version, '--key', f.key, tree]);
  assert.equal(p.code, 0, p.stderr);
}

describe('one server: a signed answer names the timestamp a write just made', () => {
  const cleanup = Cleanup.forSuite();
  let f: Fleet;
  let s: RunningServer;

  before(async () => {
    f = await newFleet(cleanup);
    const store = await SqliteStore.open(join(f.root, 'one.db'));
    await store.migrate();
    s = await serve(f, cleanup, 'one', store);
    await createProduct(f, s.url);
  });

  it('after a publish, a moved notice and a re-sign (the clock frozen between them)', async () => {
    const first = await signedCheck(f, s.url);
    assert.equal(first, await servedTimestamp(s.url));
    assert.equal(await signedCheck(f, s.url, 'aa:bb:cc:20:00:02'), first, 'reused while nothing changed');

    await publish(f, s.url, '1.0.0');
    const published = await servedTimestamp(s.url);
    assert.ok(published > first, 'the publish signed a new timestamp');
    assert.equal(await signedCheck(f, s.url), published, 'the next answer names the timestamp of the publish');

    const m = await runCli(['move', '--server', s.url, '--token', TOKEN, '--product', 'acme', '--to', 'http://127.0.0.1:9', '--key', f.key]);
    assert.equal(m.code, 0, m.stderr);
    const moved = await servedTimestamp(s.url);
    assert.ok(moved > published);
    assert.equal(await signedCheck(f, s.url), moved, 'the next answer names the timestamp of the moved notice');

    // Past half the timestamp's lifetime: the next signed answer re-signs first and names the new one.
    f.clock.t += (TIMESTAMP_EXPIRY_S / 2 + 1) * 1000;
    const resigned = await signedCheck(f, s.url);
    assert.ok(resigned > moved, `re-signed (${resigned} > ${moved})`);
    assert.equal(await servedTimestamp(s.url), resigned);
    assert.equal(await signedCheck(f, s.url, 'aa:bb:cc:20:00:02'), resigned);
  });
});

/**
 * Two servers on one database, each with its own cache: what A writes reaches B's signed answers
 * through the notification alone (the clock is frozen, so B's reuse window never runs out).
 */
function twoServers(label: string, open: (f: Fleet, cleanup: Cleanup) => Promise<[Store, Store]>): void {
  describe(`two servers on one database (${label}): B's signed answers follow A's writes`, () => {
    const cleanup = Cleanup.forSuite();
    let f: Fleet;
    let a: RunningServer;
    let b: RunningServer;

    before(async () => {
      f = await newFleet(cleanup);
      const [sa, sb] = await open(f, cleanup);
      [a, b] = await Promise.all([serve(f, cleanup, 'a', sa), serve(f, cleanup, 'b', sb)]);
      await createProduct(f, a.url);
      await waitFor(() => b.services.products.exists('acme'), { what: 'B knows the product', timeout: 10_000 });
    });

    it('a publish and a moved notice through A', async () => {
      const first = await signedCheck(f, b.url);
      assert.equal(await signedCheck(f, b.url, 'aa:bb:cc:20:00:02'), first, 'B reuses its record');
      await publish(f, a.url, '1.0.0');
      const published = await servedTimestamp(a.url);
      assert.ok(published > first);
      await waitFor(async () => (await signedCheck(f, b.url)) === published, { what: `B names timestamp ${published} after A's publish`, timeout: 5000 });

      const m = await runCli(['move', '--server', a.url, '--token', TOKEN, '--product', 'acme', '--to', 'http://127.0.0.1:9', '--key', f.key]);
      assert.equal(m.code, 0, m.stderr);
      const moved = await servedTimestamp(a.url);
      assert.ok(moved > published);
      await waitFor(async () => (await signedCheck(f, b.url)) === moved, { what: `B names timestamp ${moved} after A's moved notice`, timeout: 5000 });
    });

    it('a re-sign by A', async () => {
      const before = await signedCheck(f, b.url);
      f.clock.t += (TIMESTAMP_EXPIRY_S / 2 + 1) * 1000;
      // A re-signs (timestamp.json re-signs first when due); B hears of it.
      const resigned = await servedTimestamp(a.url);
      assert.ok(resigned > before, `A re-signed (${resigned} > ${before})`);
      await waitFor(async () => (await signedCheck(f, b.url)) === resigned, { what: `B names the re-signed timestamp ${resigned}`, timeout: 5000 });
    });
  });
}

twoServers('SQLite, shared coordination', async (f) => {
  const bus = new LocalCoordination({ shared: true });
  const first = await SqliteStore.open(join(f.root, 'shared.db'), { coordination: bus });
  await first.migrate();
  return [first, await SqliteStore.open(join(f.root, 'shared.db'), { coordination: bus })];
});

if ((process.env.PATCHWIRE_STORES ?? 'postgres').split(',').includes('postgres')) {
  twoServers('PostgreSQL, LISTEN/NOTIFY', async (_f, cleanup) => {
    const url = await tempPgDatabase(cleanup);
    const first = await PostgresStore.open(url);
    await first.migrate();
    return [first, await PostgresStore.open(url)];
  });
}
