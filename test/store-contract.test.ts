// The Store contract: every implementation runs the same suite. PATCHWIRE_STORES=sqlite,postgres
// picks which run (default: sqlite, the one that needs no server).
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  StoreConflictError, type MetadataRecord, type MetadataRole, type ReleaseRecord, type ReportRecord, type Store,
} from '../src/store/store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

/** One empty database; open() may be called again after close() and must see the same data. */
interface StoreHarness {
  open(): Promise<Store>;
  /** Optional capability: a copy of the closed database, opened from its new place. */
  copy?(): Promise<StoreHarness>;
  cleanup(): Promise<void>;
}

const roots: string[] = [];
after(async () => { for (const r of roots) await rm(r, { recursive: true, force: true }); });

async function sqliteHarness(dir?: string): Promise<StoreHarness> {
  const root = dir ?? await mkdtemp(join(tmpdir(), 'patchwire-store-'));
  roots.push(root);
  const file = join(root, 'data', 'patchwire.db');
  return {
    open: () => SqliteStore.open(file),
    async copy() {
      const other = await mkdtemp(join(tmpdir(), 'patchwire-store-copy-'));
      await cp(join(root, 'data'), join(other, 'data'), { recursive: true });
      return sqliteHarness(other);
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

const implementations: { name: string; harness: () => Promise<StoreHarness> }[] = [
  { name: 'sqlite', harness: () => sqliteHarness() },
];
const selected = (process.env.PATCHWIRE_STORES ?? 'sqlite').split(',');

const t0 = Date.UTC(2025, 0, 1);
const at = (minutes: number): Date => new Date(t0 + minutes * 60_000);

function meta(product: string, role: MetadataRole, version: number): MetadataRecord {
  return { product, role, version, json: JSON.stringify({ role, version }), expiresAt: at(1000 + version) };
}

function release(version: string, channel = 'stable', product = 'app'): ReleaseRecord {
  return {
    product, channel, version, target: `app-${version}.tar.gz`, sha256: 'a'.repeat(64), length: 1234,
    treeHash: 'b'.repeat(64), createdAt: at(5),
  };
}

function report(event: ReportRecord['event'], version: string | null, minute: number, deviceId = 'dev-1'): ReportRecord {
  return {
    deviceId, product: 'app', channel: 'stable', event, version, previousVersion: '1.0.0',
    detail: event === 'failed' ? 'disk full' : null, at: at(minute), source: 'https://primary.example',
  };
}

function storeContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
  describe(`Store contract: ${name}`, () => {
    let harness: StoreHarness;
    let store: Store;
    const opened: Store[] = [];
    const reopen = async (): Promise<Store> => {
      const s = await harness.open();
      opened.push(s);
      await s.migrate();
      return s;
    };

    beforeEach(async () => {
      harness = await makeHarness();
      store = await reopen();
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
      await harness.cleanup();
    });

    it('migrate is safe to run again on every start', async () => {
      await store.migrate();
      await store.setSetting('k', 'v');
      await store.migrate();
      assert.equal(await store.getSetting('k'), 'v');
    });

    it('settings: unknown is undefined, set replaces', async () => {
      assert.equal(await store.getSetting('x'), undefined);
      await store.setSetting('x', '1');
      await store.setSetting('x', '2');
      assert.equal(await store.getSetting('x'), '2');
    });

    it('createProduct stores the product and its metadata; products are listed by name', async () => {
      await store.createProduct({ name: 'zeta', createdAt: at(1) }, [meta('zeta', 'root', 1)]);
      await store.createProduct({ name: 'app', createdAt: at(2) }, [meta('app', 'root', 1), meta('app', 'targets', 1)]);
      assert.deepEqual(await store.getProduct('app'), { name: 'app', createdAt: at(2) });
      assert.equal(await store.getProduct('nope'), undefined);
      assert.deepEqual((await store.listProducts()).map((p) => p.name), ['app', 'zeta']);
      assert.deepEqual(await store.getMetadata('app', 'targets'), meta('app', 'targets', 1));
    });

    it('createProduct of an existing name conflicts and writes nothing', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'root', 1)]);
      await assert.rejects(
        store.createProduct({ name: 'app', createdAt: at(9) }, [meta('app', 'root', 2)]),
        (err: unknown) => err instanceof StoreConflictError && err.what === 'product',
      );
      assert.deepEqual(await store.getProduct('app'), { name: 'app', createdAt: at(1) });
      assert.equal(await store.getMetadata('app', 'root', 2), undefined);
    });

    it('createProduct with a duplicate metadata version conflicts and leaves no product', async () => {
      await assert.rejects(
        store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'root', 1), meta('app', 'root', 1)]),
        (err: unknown) => err instanceof StoreConflictError && err.what === 'metadata',
      );
      assert.equal(await store.getProduct('app'), undefined);
    });

    it('getMetadata returns the highest version by default, or the one asked for', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'timestamp', 1)]);
      // Inserted out of order: "latest" must mean the highest number, not the last written.
      await store.putMetadata([meta('app', 'timestamp', 10), meta('app', 'timestamp', 2)]);
      assert.equal((await store.getMetadata('app', 'timestamp'))?.version, 10);
      assert.deepEqual(await store.getMetadata('app', 'timestamp', 2), meta('app', 'timestamp', 2));
      assert.equal(await store.getMetadata('app', 'timestamp', 3), undefined);
      assert.equal(await store.getMetadata('app', 'snapshot'), undefined);
    });

    it('putMetadata with one existing version conflicts and writes none of the batch', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'timestamp', 1)]);
      await assert.rejects(
        store.putMetadata([meta('app', 'timestamp', 2), meta('app', 'timestamp', 1)]),
        (err: unknown) => err instanceof StoreConflictError && err.what === 'metadata',
      );
      assert.equal((await store.getMetadata('app', 'timestamp'))?.version, 1);
    });

    it('commitRelease stores release and metadata; listReleases keeps publication order', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, []);
      // Published out of semver order (a hotfix of an old line): the list follows publication.
      await store.commitRelease(release('2.0.0'), [meta('app', 'targets', 2)]);
      await store.commitRelease(release('1.5.1'), [meta('app', 'targets', 3)]);
      await store.commitRelease(release('2.0.0', 'beta'), [meta('app', 'targets', 4)]);
      assert.deepEqual(await store.getRelease('app', 'stable', '2.0.0'), release('2.0.0'));
      assert.equal(await store.getRelease('app', 'stable', '9.9.9'), undefined);
      assert.deepEqual((await store.listReleases('app')).map((r) => `${r.channel}/${r.version}`),
        ['stable/2.0.0', 'stable/1.5.1', 'beta/2.0.0']);
      assert.deepEqual((await store.listReleases('app', 'stable')).map((r) => r.version), ['2.0.0', '1.5.1']);
      assert.equal((await store.getMetadata('app', 'targets'))?.version, 4);
    });

    it('commitRelease of an existing version conflicts and writes nothing', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, []);
      await store.commitRelease(release('1.0.0'), [meta('app', 'targets', 2)]);
      await assert.rejects(
        store.commitRelease({ ...release('1.0.0'), length: 99 }, [meta('app', 'targets', 3)]),
        (err: unknown) => err instanceof StoreConflictError && err.what === 'release',
      );
      assert.equal(await store.getMetadata('app', 'targets', 3), undefined);
      assert.equal((await store.getRelease('app', 'stable', '1.0.0'))?.length, 1234);
    });

    it('commitRelease whose metadata version exists conflicts and adds no release', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'targets', 1)]);
      await assert.rejects(
        store.commitRelease(release('1.0.0'), [meta('app', 'snapshot', 1), meta('app', 'targets', 1)]),
        (err: unknown) => err instanceof StoreConflictError && err.what === 'metadata',
      );
      assert.deepEqual(await store.listReleases('app'), []);
      assert.equal(await store.getMetadata('app', 'snapshot'), undefined);
    });

    it('setMoved replaces the notice and adds its metadata', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, []);
      assert.equal(await store.getMoved('app'), undefined);
      const first = { product: 'app', url: 'https://a.example', target: 'moved-1.json', sha256: 'c'.repeat(64), setAt: at(2) };
      const second = { ...first, url: 'https://b.example', target: 'moved-2.json', setAt: at(3) };
      await store.setMoved(first, [meta('app', 'targets', 1)]);
      await store.setMoved(second, [meta('app', 'targets', 2)]);
      assert.deepEqual(await store.getMoved('app'), second);
      assert.equal((await store.getMetadata('app', 'targets'))?.version, 2);
      await assert.rejects(store.setMoved({ ...second, url: 'https://c.example' }, [meta('app', 'targets', 2)]), StoreConflictError);
      assert.deepEqual(await store.getMoved('app'), second, 'a conflicting setMoved must not replace the notice');
    });

    it('schedules: set replaces per (product, channel); list covers all', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, []);
      const s = { product: 'app', channel: 'stable', at: at(60), spreadSeconds: 3600, setAt: at(2) };
      await store.setSchedule(s);
      await store.setSchedule({ ...s, spreadSeconds: 60, setAt: at(3) });
      await store.setSchedule({ ...s, channel: 'beta' });
      assert.deepEqual(await store.getSchedule('app', 'stable'), { ...s, spreadSeconds: 60, setAt: at(3) });
      assert.equal(await store.getSchedule('app', 'nightly'), undefined);
      assert.deepEqual((await store.listSchedules()).map((x) => x.channel).sort(), ['beta', 'stable']);
    });

    it('recordSightings adds unknown devices and keeps the newest lastSeenAt', async () => {
      const sighting = { deviceId: 'dev-1', product: 'app', channel: 'stable', seenAt: at(10), source: 'https://a.example' };
      await store.recordSightings([sighting]);
      assert.deepEqual(await store.getDevice('dev-1', 'app'), {
        deviceId: 'dev-1', product: 'app', channel: 'stable', version: null, firstSeenAt: at(10), lastSeenAt: at(10),
        lastReportAt: null, source: 'https://a.example',
      });
      // A late batch from another process carries an older sighting: it must not move time back.
      await store.recordSightings([{ ...sighting, seenAt: at(5), source: 'https://old.example' }]);
      let d = await store.getDevice('dev-1', 'app');
      assert.deepEqual([d?.lastSeenAt, d?.firstSeenAt], [at(10), at(10)]);
      assert.equal(d?.source, 'https://a.example');
      await store.recordSightings([
        { ...sighting, seenAt: at(20), channel: 'beta', source: 'https://mirror.example' },
        { ...sighting, seenAt: at(15) },
      ]);
      d = await store.getDevice('dev-1', 'app');
      assert.deepEqual([d?.lastSeenAt, d?.channel, d?.source], [at(20), 'beta', 'https://mirror.example']);
      assert.equal(await store.getDevice('dev-1', 'other'), undefined, 'devices are per (id, product)');
    });

    it('recordSightings writes a batch of 10,000 in one call', async () => {
      const batch = Array.from({ length: 10_000 }, (_, i) => ({
        deviceId: `dev-${i}`, product: 'app', channel: 'stable', seenAt: at(1), source: 'https://a.example',
      }));
      await store.recordSightings(batch);
      assert.equal(await store.countDevices({ product: 'app' }), 10_000);
      assert.equal((await store.getDevice('dev-9999', 'app'))?.lastSeenAt.getTime(), at(1).getTime());
    });

    it('recordReport: applied and rolled-back set the version, failed does not', async () => {
      await store.recordSightings([{ deviceId: 'dev-1', product: 'app', channel: 'stable', seenAt: at(1), source: 'https://a.example' }]);
      let d = await store.recordReport(report('applied', '2.0.0', 10));
      assert.deepEqual(d, {
        deviceId: 'dev-1', product: 'app', channel: 'stable', version: '2.0.0', firstSeenAt: at(1), lastSeenAt: at(10),
        lastReportAt: at(10), source: 'https://primary.example',
      });
      d = await store.recordReport(report('failed', '3.0.0', 20));
      assert.deepEqual([d.version, d.lastReportAt], ['2.0.0', at(20)]);
      d = await store.recordReport(report('rolled-back', '1.0.0', 30));
      assert.equal(d.version, '1.0.0');
      assert.deepEqual(await store.getDevice('dev-1', 'app'), d);
      const history = await store.listReports('dev-1', 'app');
      assert.deepEqual(history.map((r) => r.event), ['applied', 'failed', 'rolled-back']);
      assert.deepEqual(history[1], report('failed', '3.0.0', 20));
    });

    it('recordReport from an unknown device adds it', async () => {
      const d = await store.recordReport(report('failed', '2.0.0', 7, 'new-dev'));
      assert.deepEqual([d.version, d.firstSeenAt, d.lastSeenAt], [null, at(7), at(7)]);
      assert.equal((await store.listReports('new-dev', 'app')).length, 1);
      assert.deepEqual(await store.listReports('new-dev', 'other'), []);
    });

    it('listDevices, countDevices and countVersions filter by product', async () => {
      const seen = (deviceId: string, product: string) => ({ deviceId, product, channel: 'stable', seenAt: at(1), source: 's' });
      await store.recordSightings([seen('a', 'app'), seen('b', 'app'), seen('c', 'app'), seen('d', 'app'), seen('e', 'tool')]);
      await store.recordReport(report('applied', '1.0.0', 2, 'a'));
      await store.recordReport(report('applied', '1.0.0', 2, 'b'));
      await store.recordReport(report('applied', '2.0.0', 2, 'c'));
      assert.deepEqual(await store.countVersions({ product: 'app' }), { '1.0.0': 2, '2.0.0': 1, none: 1 });
      assert.deepEqual(await store.countVersions(), { '1.0.0': 2, '2.0.0': 1, none: 2 });
      assert.equal(await store.countDevices(), 5);
      assert.equal(await store.countDevices({ product: 'tool' }), 1);
      assert.deepEqual((await store.listDevices({ product: 'app' })).map((d) => d.deviceId).sort(), ['a', 'b', 'c', 'd']);
      assert.equal((await store.listDevices()).length, 5);
    });

    it('data survives close and reopen', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'root', 1)]);
      await store.commitRelease(release('1.0.0'), []);
      await store.recordReport(report('applied', '1.0.0', 2));
      await store.close();
      const again = await reopen();
      assert.deepEqual(await again.getProduct('app'), { name: 'app', createdAt: at(1) });
      assert.deepEqual(await again.getRelease('app', 'stable', '1.0.0'), release('1.0.0'));
      assert.equal((await again.getDevice('dev-1', 'app'))?.version, '1.0.0');
    });

    it('a copy of the closed data opens elsewhere with everything in it', async (t) => {
      if (!harness.copy) return t.skip('implementation has no copyable data folder');
      await store.setSetting('k', 'v');
      await store.recordSightings([{ deviceId: 'dev-1', product: 'app', channel: 'stable', seenAt: at(1), source: 's' }]);
      await store.close();
      const copy = await harness.copy();
      const other = await copy.open();
      try {
        await other.migrate();
        assert.equal(await other.getSetting('k'), 'v');
        assert.equal(await other.countDevices(), 1);
      } finally {
        await other.close();
        await copy.cleanup();
      }
    });
  });
}

for (const impl of implementations) {
  if (selected.includes(impl.name)) storeContract(impl.name, impl.harness);
}
