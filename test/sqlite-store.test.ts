// SQLite-only cases of the Store (the backend-neutral contract is test/contracts/store-contract.ts):
// the data folder as files, and migrations of databases written by older versions.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { migrations } from '../src/store/sqlite/migrations.js';
import { at, sighting } from './contracts/store-contract.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';

const suite = Cleanup.forSuite();

async function tempRoot(prefix: string): Promise<string> {
  const root = await tempDir(suite, prefix);
  return root;
}

/** A database file migrated only up to (and including) `last`, as an older version left it. */
async function oldDatabase(last: string): Promise<{ file: string; db: Kysely<any> }> {
  const file = join(await tempRoot('patchwire-migrate-'), 'data', 'patchwire.db');
  await SqliteStore.open(file).then((s) => s.close()); // creates the folder and file
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) });
  const names = Object.keys(migrations).sort();
  const upTo = Object.fromEntries(names.slice(0, names.indexOf(last) + 1).map((n) => [n, migrations[n]!]));
  const { error } = await new Migrator({ db, provider: { getMigrations: async () => upTo } }).migrateToLatest();
  assert.equal(error, undefined);
  return { file, db };
}

describe('SQLite: the data folder', () => {
  it('a copy of the closed data opens elsewhere with everything in it', async () => {
    const root = await tempRoot('patchwire-store-');
    const store = await SqliteStore.open(join(root, 'data', 'patchwire.db'));
    await store.migrate();
    await store.setSetting('k', 'v');
    await store.recordSightings([{ deviceId: 'dev-1', product: 'app', channel: 'stable', seenAt: at(1), source: 's' }]);
    await store.close();
    const other = await tempRoot('patchwire-store-copy-');
    await cp(join(root, 'data'), join(other, 'data'), { recursive: true });
    const copy = await SqliteStore.open(join(other, 'data', 'patchwire.db'));
    try {
      await copy.migrate();
      assert.equal(await copy.getSetting('k'), 'v');
      assert.equal(await copy.countDevices(), 1);
    } finally {
      await copy.close();
    }
  });
});

describe('SQLite: migration 0002 on a database made by 0001', () => {
  it('backfills updated_at with last_seen_at and adds the mirrors table', async () => {
    const { file, db } = await oldDatabase('0001_initial');
    await db.insertInto('devices').values({
      device_id: 'old', product: 'app', channel: 'stable', version: '1.0.0', first_seen_at: at(1).getTime(),
      last_seen_at: at(7).getTime(), last_report_at: at(3).getTime(), source: 's',
    }).execute();
    await db.destroy();
    const store = await SqliteStore.open(file);
    try {
      await store.migrate();
      assert.deepEqual((await store.getDevice('old', 'app'))?.updatedAt, at(7));
      assert.deepEqual((await store.listDeviceChanges(null, 10)).devices.map((d) => d.deviceId), ['old']);
      assert.deepEqual(await store.listMirrors(), []);
      await store.recordSightings([sighting('new', 1)]);
      assert.ok((await store.getDevice('new', 'app'))!.updatedAt > at(7));
    } finally {
      await store.close();
    }
  });
});

describe('SQLite: migration 0004 (change cursors) on a database made by 0003', () => {
  it('numbers the existing changes in their old order, converts push cursors and restarts pulls', async () => {
    const { file, db } = await oldDatabase('0003_deltas');
    const row = (deviceId: string, updatedAt: number) => ({
      device_id: deviceId, product: 'app', channel: 'stable', version: null, first_seen_at: at(1).getTime(),
      last_seen_at: at(1).getTime(), last_report_at: null, source: 's', updated_at: updatedAt,
    });
    // Two rows learnt from the primary (updated_at 0), then local changes at 5, 5 and 9.
    await db.insertInto('devices').values([row('up-b', 0), row('up-a', 0), row('c', at(5).getTime()), row('b', at(5).getTime()), row('d', at(9).getTime())]).execute();
    const mirror = (url: string, cursor: number | null, pushCursor: number | null) => ({
      url, announced_at: at(1).getTime(), store_id: null, cursor, push_cursor: pushCursor, last_sync_at: null, last_attempt_at: null, pulled: 3, pushed: 4, error: null,
    });
    await db.insertInto('mirrors').values([
      mirror('https://m1.example', at(8).getTime(), at(9).getTime()), // d (at 9) not pushed yet
      mirror('https://m2.example', null, null),
      mirror('https://m3.example', at(2).getTime(), at(2).getTime()), // nothing local pushed yet
    ]).execute();
    await db.destroy();
    const store = await SqliteStore.open(file);
    try {
      await store.migrate();
      const all = await store.listDeviceChanges(null, 10);
      assert.deepEqual(all.devices.map((d) => d.deviceId), ['up-a', 'up-b', 'b', 'c', 'd'], 'the old (updatedAt, deviceId) order');
      const [m1, m2, m3] = await store.listMirrors();
      assert.deepEqual([m1!.cursor, m2!.cursor, m3!.cursor], [null, null, null], 'pull cursors were the mirrors\' times: start over');
      assert.deepEqual((await store.listDeviceChanges(m1!.pushCursor, 10)).devices.map((d) => d.deviceId), ['d']);
      assert.equal(m2!.pushCursor, null);
      assert.deepEqual((await store.listDeviceChanges(m3!.pushCursor, 10)).devices.map((d) => d.deviceId), ['b', 'c', 'd']);
      assert.deepEqual([m1!.pulled, m1!.pushed], [3, 4]);
      // New writes continue after the migrated history; rows learnt from upstream go before it.
      await store.recordSightings([sighting('e', 1)]);
      await store.mergeDevices([{ ...all.devices[0]!, deviceId: 'up-new', updatedAt: new Date(0) }], { fromUpstream: true });
      assert.deepEqual((await store.listDeviceChanges(all.next, 10)).devices.map((d) => d.deviceId), ['e']);
      assert.deepEqual((await store.listDeviceChanges(null, 10)).devices.map((d) => d.deviceId), ['up-new', 'up-a', 'up-b', 'b', 'c', 'd', 'e']);
    } finally {
      await store.close();
    }
  });
});

describe('SQLite: migration 0007 (mirror approval) on a database made by 0005', () => {
  it('makes every known mirror pending (an announce was all it took) and keeps its sync state', async () => {
    const { file, db } = await oldDatabase('0005_release_yank');
    await db.insertInto('mirrors').values({
      url: 'https://m1.example', announced_at: at(1).getTime(), store_id: 'a'.repeat(32), pull_after: 'c7', push_after: '9',
      last_sync_at: at(2).getTime(), last_attempt_at: at(2).getTime(), pulled: 3, pushed: 4, error: null,
    }).execute();
    await db.destroy();
    const store = await SqliteStore.open(file);
    try {
      await store.migrate();
      assert.deepEqual(await store.listMirrors(), [{
        url: 'https://m1.example', announcedAt: at(1), state: 'pending', approvedAt: null, cursor: 'c7', pushCursor: '9', storeId: 'a'.repeat(32),
        lastSyncAt: at(2), lastAttemptAt: at(2), pulled: 3, pushed: 4, error: null, skipped: 0, skippedWhy: null,
      }]);
      assert.equal(await store.approveMirror('https://m1.example', at(3)), true);
      assert.equal((await store.listMirrors())[0]!.state, 'approved');
    } finally {
      await store.close();
    }
  });
});
