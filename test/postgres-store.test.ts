// PostgreSQL-only cases of the Store (the backend-neutral contract is test/contracts/store-contract.ts):
// several processes on one database (two stores = two pools stand in for two servers), the
// coordination of src/store/postgres/pg-coordination.ts, and the errors of an unreachable database.
// Needs PostgreSQL on 127.0.0.1:5432 (test/helpers/postgres.ts); fails, saying how to start it, without.
import { test, type TestContext } from 'node:test';
import { pgMigrations } from '../src/store/postgres/pg-migrations.js';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PostgresStore, DatabaseUnavailableError } from '../src/store/postgres/postgres-store.js';
import { parsePgUrl, redactPgUrl } from '../src/store/postgres/pg-connection.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { DeviceRecord, ReportRecord, Sighting, Store } from '../src/store/store.js';
import type { NotifyChannel } from '../src/store/coordination.js';
import { at } from './contracts/store-contract.js';
import { pgUrl, tempPgDatabase, withAdmin } from './helpers/postgres.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait-for.js';

/** A store on `url`, closed when the test ends. */
async function open(t: TestContext, url: string, migrate = true): Promise<PostgresStore> {
  const s = await PostgresStore.open(url);
  t.after(() => s.close());
  if (migrate) await s.migrate();
  return s;
}

/** Two stores (two pools, as two server processes) on one fresh database. */
async function twoStores(t: TestContext): Promise<[PostgresStore, PostgresStore, string]> {
  const url = await tempPgDatabase(t);
  const a = await open(t, url);
  return [a, await open(t, url), url];
}

const report = (deviceId: string, version: string, minute: number, source: string): ReportRecord => ({
  deviceId, product: 'app', channel: 'stable', event: 'applied', version, previousVersion: null, detail: null, at: at(minute), source,
});

test('two stores migrating one fresh database at once both succeed, and the schema is made once', async (t) => {
  const url = await tempPgDatabase(t);
  const stores = await Promise.all([open(t, url, false), open(t, url, false), open(t, url, false)]);
  await Promise.all(stores.map((s) => s.migrate()));
  const applied = await withDb(url, async (q) => (await q('SELECT name FROM kysely_migration ORDER BY name')).map((r) => r.name));
  assert.deepEqual(applied, Object.keys(pgMigrations).sort(), 'each migration applied once');
  await stores[0]!.setSetting('k', 'v');
  assert.equal(await stores[2]!.getSetting('k'), 'v');
  await stores[1]!.migrate(); // and again on a later start: nothing to do
});

test('change feed with concurrent writers in two processes: a reader following the cursor misses no committed change', async (t) => {
  const [a, b] = await twoStores(t);
  const devices = Array.from({ length: 40 }, (_, i) => `dev-${i}`);
  let writing = true;
  const seen = new Map<string, DeviceRecord>();
  let cursor: string | null = null;
  // Small pages read while the writers commit: a position drawn before the last page was read
  // but committed after it would be behind the cursor, and the reader's copy of it stale.
  const read = async (): Promise<number> => {
    const page = await a.listDeviceChanges(cursor, 7);
    for (const d of page.devices) seen.set(`${d.deviceId}/${d.product}`, d);
    cursor = page.next;
    return page.devices.length;
  };
  const reader = (async () => { while (writing) await read(); })();
  const writer = async (store: Store, name: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const dev = devices[(i * 7 + name.length * 13) % devices.length]!;
      const minute = 10 + i;
      const kind = i % 4;
      if (kind === 0) await store.recordReport(report(dev, `1.${i}.0`, minute, name));
      else if (kind === 1) await store.recordSightings(devices.slice(i % 10, i % 10 + 5).map((d): Sighting => ({ deviceId: d, product: 'app', channel: 'stable', seenAt: at(minute), source: name })));
      else if (kind === 2) await store.mergeDevices([{ deviceId: dev, product: 'app', channel: 'beta', version: `2.${i}.0`, firstSeenAt: at(1), lastSeenAt: at(minute), lastReportAt: at(minute), source: name, updatedAt: new Date(0) }]);
      else await store.touchDevice(dev, 'app');
    }
  };
  // Four writers per store, each a chain of awaited writes, so eight transactions contend at once.
  await Promise.all([a, b].flatMap((s, k) => Array.from({ length: 4 }, (_, j) => writer(s, `https://s${k}-${j}.example`, 60))));
  writing = false;
  await reader;
  while ((await read()) > 0);
  const table = await b.listDevices();
  assert.ok(table.length > 0);
  for (const d of table) assert.deepEqual(seen.get(`${d.deviceId}/${d.product}`), d, `the reader's copy of ${d.deviceId} is its last committed change`);
  assert.equal(seen.size, table.length);
});

test('recordSightings: a batch with a device several times ends as SQLite\'s row-by-row upsert leaves it', async (t) => {
  const pgStore = await open(t, await tempPgDatabase(t));
  const sqlite = await SqliteStore.open(join(await tempDir(t, 'patchwire-pg-cmp-'), 'patchwire.db'));
  t.after(() => sqlite.close());
  await sqlite.migrate();
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let round = 0; round < 20; round++) {
    const batch = Array.from({ length: 30 }, (): Sighting => ({
      deviceId: `dev-${rnd(5)}`, product: rnd(4) === 0 ? 'tool' : 'app', channel: ['stable', 'beta'][rnd(2)]!, seenAt: at(rnd(6)),
      source: ['https://a.example', 'https://b.example', 'https://c.example'][rnd(3)]!,
    }));
    await pgStore.recordSightings(batch);
    await sqlite.recordSightings(batch);
  }
  const content = (ds: DeviceRecord[]) => ds.map(({ updatedAt: _, ...d }) => d);
  assert.deepEqual(content(await pgStore.listDevices()), content(await sqlite.listDevices()));
});

test('notifications: one sent through store A reaches store B and A itself', async (t) => {
  const [a, b] = await twoStores(t);
  const got: string[] = [];
  await b.coordination.listen('catalog', (p) => got.push(`b:${p}`));
  const subA = await a.coordination.listen('catalog', (p) => got.push(`a:${p}`));
  await b.coordination.listen('release', (p) => got.push(`b-release:${p}`));
  await a.coordination.notify('catalog', 'acme');
  await waitFor(() => got.length >= 2, { what: 'both stores to hear the notification', timeout: 5_000 });
  assert.deepEqual(got.sort(), ['a:acme', 'b:acme'], 'every listener of the channel, and only of that channel');
  await assert.rejects(a.coordination.notify('catalog', 'x'.repeat(8000)), RangeError);
  // A closed subscription hears nothing more; a channel name that is no plain identifier works
  // (channels other slices add may have a '-').
  got.length = 0;
  await subA.close();
  const odd = 'online-Keys' as NotifyChannel;
  await b.coordination.listen(odd, (p) => got.push(`odd:${p}`));
  await a.coordination.notify('catalog', 'again');
  await a.coordination.notify(odd, 'k1');
  await waitFor(() => got.length >= 2, { what: 'the notifications after the close', timeout: 5_000 });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(got.sort(), ['b:again', 'odd:k1']);
});

test('notifications: a LISTEN connection killed by the server reconnects, calls onGap, and hears what is sent afterwards', async (t) => {
  const [a, b] = await twoStores(t);
  const got: string[] = [];
  let gaps = 0;
  await b.coordination.listen('release', (p) => got.push(p), () => gaps++);
  const pid = b.coordination.listenerPid();
  assert.ok(pid);
  await withAdmin((c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
  await waitFor(() => gaps === 1 && b.coordination.listenerPid() !== undefined && b.coordination.listenerPid() !== pid,
    { what: 'the listener to reconnect and report the gap', timeout: 10_000 });
  await a.coordination.notify('release', 'acme/stable/2.0.0');
  await waitFor(() => got.includes('acme/stable/2.0.0'), { what: 'a notification after the reconnect', timeout: 5_000 });
  assert.equal(gaps, 1);
});

test('locks: tryLock from B while A holds the lock does not run; withLock from B waits for A; both work again after', async (t) => {
  const [a, b] = await twoStores(t);
  const order: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const holder = a.coordination.withLock('timestamps', async () => {
    entered();
    order.push('a in');
    await held;
    order.push('a out');
    return 'a';
  });
  await inside;
  assert.deepEqual(await b.coordination.tryLock('timestamps', async () => 'b'), { ran: false });
  assert.deepEqual(await a.coordination.tryLock('timestamps', async () => 'a again'), { ran: false }, 'held in this process too');
  assert.deepEqual(await b.coordination.tryLock('other-name', async () => 'free'), { ran: true, value: 'free' });
  const waiter = b.coordination.withLock('timestamps', async () => { order.push('b in'); return 'b'; });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(order, ['a in'], 'B waits while A holds it');
  release();
  assert.equal(await holder, 'a');
  assert.equal(await waiter, 'b');
  assert.deepEqual(order, ['a in', 'a out', 'b in']);
  // A throwing fn releases the lock and its connection.
  await assert.rejects(a.coordination.withLock('timestamps', async () => { throw new Error('boom'); }), /boom/);
  assert.deepEqual(await b.coordination.tryLock('timestamps', async () => 'b'), { ran: true, value: 'b' });
});

test('an unreachable server, a missing database and an unknown user are refused with what to do', async (t) => {
  const port = await freePort();
  await assert.rejects(PostgresStore.open(`postgres://postgres@127.0.0.1:${port}/x`),
    (err: unknown) => err instanceof DatabaseUnavailableError && /127\.0\.0\.1:\d+ \(connection refused\): start PostgreSQL/.test(err.message));
  await assert.rejects(PostgresStore.open(pgUrl('patchwire_no_such_db')),
    (err: unknown) => err instanceof DatabaseUnavailableError && /no database 'patchwire_no_such_db': create it \(createdb -h 127\.0\.0\.1 -p 5432 -U postgres patchwire_no_such_db\)/.test(err.message));
  const url = new URL(await tempPgDatabase(t));
  url.username = 'patchwire_no_such_user';
  await assert.rejects(PostgresStore.open(url.toString()),
    (err: unknown) => err instanceof DatabaseUnavailableError && /refused user 'patchwire_no_such_user'/.test(err.message));
});

test('a store opens at most ?pool= connections, plus one that listens', async (t) => {
  const url = new URL(await tempPgDatabase(t));
  url.searchParams.set('pool', '2');
  const s = await open(t, url.toString());
  await s.coordination.listen('catalog', () => {});
  await Promise.all(Array.from({ length: 20 }, (_, i) => s.getDevice(`dev-${i}`, 'app')));
  await Promise.all(Array.from({ length: 5 }, (_, i) => s.recordSightings([{ deviceId: `dev-${i}`, product: 'app', channel: 'stable', seenAt: at(i), source: 's' }])));
  const database = url.pathname.slice(1);
  const n = await withAdmin(async (c) => Number((await c.query('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [database])).rows[0].n));
  assert.ok(n >= 2 && n <= 3, `${n} connections`);
});

test('URLs: the password is never shown; pool size is bounded; a URL without a database is refused', () => {
  assert.equal(redactPgUrl('postgres://pw:s3cret@db.example:5432/fleet'), 'postgres://pw:***@db.example:5432/fleet');
  assert.equal(redactPgUrl('postgres://pw@db.example/fleet'), 'postgres://pw@db.example/fleet');
  assert.equal(parsePgUrl('postgres://pw@db.example/fleet').pool, 10);
  assert.equal(parsePgUrl('postgres://pw@db.example/fleet?pool=3').pool, 3);
  assert.throws(() => parsePgUrl('postgres://pw@db.example/fleet?pool=0'), /pool=0 must be a whole number from 1 to 1000/);
  assert.throws(() => parsePgUrl('postgres://pw:s3cret@db.example:5432'), (e: Error) => /names no database/.test(e.message) && !e.message.includes('s3cret'));
});

/** Runs `fn` with a query function on its own connection to `url`. */
async function withDb<T>(url: string, fn: (q: (text: string) => Promise<Array<Record<string, unknown>>>) => Promise<T>): Promise<T> {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(async (text) => (await c.query(text)).rows);
  } finally {
    await c.end();
  }
}
