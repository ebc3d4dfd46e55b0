// The Store contract, backend-neutral: storeContract() runs every case against one implementation,
// given a factory of empty databases (test/store-contract.test.ts lists the implementations;
// SQLite-only cases are in test/sqlite-store.test.ts).
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type {
  DeviceIdentityRecord, DeviceRecord, MetadataRecord, MetadataRole, ReleaseRecord, ReportRecord, Sighting, Store,
} from '../../src/store/store.js';
import { InvalidCursorError, StoreConflictError } from '../../src/store/errors.js';
import { DEVICE_PAGE_SCAN, REPORTS_KEPT_PER_DEVICE, type DeviceFilter } from '../../src/store/store.js';

/** One empty database; open() may be called again after close() and must see the same data. */
export interface StoreHarness {
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

export const t0 = Date.UTC(2025, 0, 1);
export const at = (minutes: number): Date => new Date(t0 + minutes * 60_000);

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

/** A device as it is merged between servers; updatedAt is ignored by mergeDevices. */
function device(deviceId: string, fields: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    deviceId, product: 'app', channel: 'stable', version: null, firstSeenAt: at(1), lastSeenAt: at(1), lastReportAt: null,
    source: 'https://m1.example', updatedAt: new Date(0), ...fields,
  };
}

export const sighting = (deviceId: string, minute: number, fields: Partial<Sighting> = {}): Sighting => ({
  deviceId, product: 'app', channel: 'stable', seenAt: at(minute), source: 'https://a.example', ...fields,
});

/** The record without its change time, for comparisons of content. */
const content = (d: DeviceRecord | undefined): Omit<DeviceRecord, 'updatedAt'> | undefined => {
  if (!d) return d;
  const { updatedAt: _, ...rest } = d;
  return rest;
};

export function storeContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
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
      assert.deepEqual(await store.getProduct('app'), { name: 'app', createdAt: at(2), admission: 'auto' });
      assert.equal(await store.getProduct('nope'), undefined);
      assert.deepEqual((await store.listProducts()).map((p) => p.name), ['app', 'zeta']);
      assert.deepEqual(await store.getMetadata('app', 'targets'), meta('app', 'targets', 1));
    });

    it('setMenderDest sets and clears a product\'s Mender folder (migration 0013); false for no such product', async () => {
      await store.createProduct({ name: 'mender-p', createdAt: at(3) }, [meta('mender-p', 'root', 1)]);
      assert.equal(await store.setMenderDest('mender-p', '/opt/app'), true);
      assert.equal((await store.getProduct('mender-p'))?.menderDest, '/opt/app');
      assert.equal((await store.listProducts()).find((p) => p.name === 'mender-p')?.menderDest, '/opt/app');
      assert.equal(await store.setMenderDest('mender-p', null), true);
      assert.deepEqual(await store.getProduct('mender-p'), { name: 'mender-p', createdAt: at(3), admission: 'auto' });
      assert.equal(await store.setMenderDest('nope', '/opt/x'), false);
    });

    it('createProduct of an existing name conflicts and writes nothing', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'root', 1)]);
      await assert.rejects(
        store.createProduct({ name: 'app', createdAt: at(9) }, [meta('app', 'root', 2)]),
        (err: unknown) => err instanceof StoreConflictError && err.what === 'product',
      );
      assert.deepEqual(await store.getProduct('app'), { name: 'app', createdAt: at(1), admission: 'auto' });
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
      assert.deepEqual(content(await store.getDevice('dev-1', 'app')), {
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
      assert.deepEqual(content(d), {
        deviceId: 'dev-1', product: 'app', channel: 'stable', version: '2.0.0', firstSeenAt: at(1), lastSeenAt: at(10),
        lastReportAt: at(10), source: 'https://primary.example', lastEvent: 'applied',
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

    it('countDeltaFailedDevices counts distinct devices per product and delta target', async () => {
      const failed = (deviceId: string, detail: string, product = 'app'): ReportRecord => ({ ...report('delta-failed', '1.0.0', 5, deviceId), product, detail });
      const t = 'deltas/stable/1.0.0_2.0.0.pwdelta';
      assert.equal(await store.countDeltaFailedDevices('app', t), 0);
      for (let i = 0; i < 3; i++) await store.recordReport(failed('dev-a', t));
      await store.recordReport(failed('dev-b', t));
      await store.recordReport(failed('dev-c', 'deltas/stable/1.1.0_2.0.0.pwdelta'));
      await store.recordReport(failed('dev-d', t, 'other'));
      await store.recordReport({ ...report('failed', '1.0.0', 6, 'dev-e'), detail: t });
      assert.equal(await store.countDeltaFailedDevices('app', t), 2, 'dev-a thrice and dev-b; not another target, product or event');
    });

    it('putRollout replaces the rollout of (product, channel, version); listRollouts reads them back, all or one product\'s', async () => {
      const r = {
        product: 'app', channel: 'stable', version: '2.0.0', phases: [5, 25.5, 100], phase: 0, state: 'active' as const,
        every: 3600, haltAt: 2.5, minDevices: 20, phaseStartedAt: at(1), updatedAt: at(1),
      };
      assert.deepEqual(await store.listRollouts(), []);
      await store.putRollout(r);
      await store.putRollout({ ...r, product: 'tool', every: null, haltAt: null, updatedAt: at(2) });
      assert.deepEqual(await store.listRollouts('app'), [r]);
      await store.putRollout({ ...r, phase: 1, state: 'paused', phaseStartedAt: at(3), updatedAt: at(3) });
      assert.deepEqual(await store.listRollouts('app'), [{ ...r, phase: 1, state: 'paused', phaseStartedAt: at(3), updatedAt: at(3) }]);
      const all = await store.listRollouts();
      assert.deepEqual(all.map((x) => [x.product, x.every, x.haltAt]), [['app', 3600, 2.5], ['tool', null, null]]);
    });

    it('countRolloutOutcomes counts distinct devices that attempted a release, by outcome', async () => {
      const rep = (deviceId: string, event: ReportRecord['event'], version: string | null, previousVersion: string | null, detail: string | null, channel = 'stable'): ReportRecord =>
        ({ deviceId, product: 'app', channel, event, version, previousVersion, detail, at: at(1), source: 's' });
      const zero = { attempted: 0, applied: 0, failed: 0, rolledBack: 0, failing: 0 };
      assert.deepEqual(await store.countRolloutOutcomes('app', 'stable', '2.0.0'), zero);
      await store.recordReport(rep('a', 'applied', '2.0.0', '1.0.0', null));
      await store.recordReport(rep('a', 'applied', '2.0.0', '1.0.0', null));
      await store.recordReport(rep('b', 'failed', '1.0.0', '1.0.0', 'update to 2.0.0 failed in install: disk full'));
      await store.recordReport(rep('b', 'failed', '1.0.0', '1.0.0', 'update to 2.0.0 failed in download: reset'));
      await store.recordReport(rep('c', 'rolled-back', '1.0.0', '2.0.0', 'health'));
      await store.recordReport(rep('d', 'failed', null, null, 'first install: update to 2.0.0 failed in health: exit 1'));
      await store.recordReport(rep('c', 'failed', '1.0.0', '1.0.0', 'update to 2.0.0 failed in health: exit 1'));
      // Not about 2.0.0 (another version, channel, event), so not counted.
      await store.recordReport(rep('e', 'applied', '2.0.1', '1.0.0', null));
      await store.recordReport(rep('f', 'failed', '1.0.0', '1.0.0', 'update to 2.0.0.1 failed in install: x'));
      await store.recordReport(rep('g', 'applied', '2.0.0', '1.0.0', null, 'beta'));
      await store.recordReport(rep('h', 'delta-failed', '1.0.0', '1.0.0', 'deltas/stable/1.0.0_2.0.0.pwdelta'));
      assert.deepEqual(await store.countRolloutOutcomes('app', 'stable', '2.0.0'), { attempted: 4, applied: 1, failed: 3, rolledBack: 1, failing: 3 });
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

    it('listDevicePage: pages of at most `limit` in (device id, product) order, each device once, with a product filter; a bad cursor is refused', async () => {
      const seen = (deviceId: string, product: string) => ({ deviceId, product, channel: 'stable', seenAt: at(1), source: 's' });
      const ids = Array.from({ length: 23 }, (_, i) => `dev-${String(i).padStart(2, '0')}`);
      await store.recordSightings([...ids.map((id) => seen(id, 'app')), seen('dev-05', 'tool'), seen('dev-30', 'tool')]);
      const all = async (product: string | undefined, limit: number) => {
        const out: string[] = [];
        let after: string | null = null;
        for (let pages = 0; ; pages++) {
          assert.ok(pages < 100, 'paging ends');
          const page = await store.listDevicePage(product ? { product } : {}, after, limit);
          assert.ok(page.devices.length <= limit);
          out.push(...page.devices.map((d) => `${d.deviceId}/${d.product}`));
          if (page.next === null) return out;
          assert.equal(typeof page.next, 'string');
          after = page.next;
        }
      };
      const expected = [...ids.map((id) => `${id}/app`), 'dev-05/tool', 'dev-30/tool'].sort();
      assert.deepEqual(await all(undefined, 5), expected);
      assert.deepEqual(await all(undefined, 1000), expected);
      assert.deepEqual(await all(undefined, 25), expected, 'a page exactly full is the last one (next null)');
      assert.deepEqual(await all('tool', 2), ['dev-05/tool', 'dev-30/tool']);
      assert.deepEqual(await all('app', 7), ids.map((id) => `${id}/app`));
      assert.deepEqual(await all('none', 7), []);
      // A device removed between pages does not shift the pages: nothing is skipped or repeated.
      const first = await store.listDevicePage({}, null, 3);
      await store.removeDevice('dev-01', 'app');
      const second = await store.listDevicePage({}, first.next, 3);
      assert.deepEqual(second.devices.map((d) => d.deviceId), ['dev-03', 'dev-04', 'dev-05']);
      await assert.rejects(store.listDevicePage({}, 'not a cursor!', 3), InvalidCursorError);
    });

    it('recordReport keeps the release and failing state of a report and the latest event on the device; the oldest beyond REPORTS_KEPT_PER_DEVICE go', async () => {
      await store.recordReport({ ...report('downloading', '1.0.0', 1), toVersion: '2.0.0' });
      let d = await store.recordReport({ ...report('failed', '1.0.0', 2), toVersion: '2.0.0', state: 'stage', detail: 'tree hash mismatch' });
      assert.equal(d.lastEvent, 'failed');
      assert.equal((await store.getDevice('dev-1', 'app'))?.lastEvent, 'failed');
      const [first, second] = await store.listReports('dev-1', 'app');
      assert.deepEqual(first, { ...report('downloading', '1.0.0', 1), toVersion: '2.0.0' });
      assert.deepEqual(second, { ...report('failed', '1.0.0', 2), toVersion: '2.0.0', state: 'stage', detail: 'tree hash mismatch' });
      // Another device's history is not touched by this one's trim.
      await store.recordReport(report('applied', '1.0.0', 3, 'dev-2'));
      for (let i = 0; i < REPORTS_KEPT_PER_DEVICE + 5; i++) d = await store.recordReport(report(i % 2 ? 'installing' : 'downloading', '1.0.0', 10 + i));
      assert.equal(d.lastEvent, 'downloading');
      const kept = await store.listReports('dev-1', 'app');
      assert.equal(kept.length, REPORTS_KEPT_PER_DEVICE);
      assert.deepEqual([kept[0]!.at, kept.at(-1)!.at], [at(15), at(10 + REPORTS_KEPT_PER_DEVICE + 4)], 'the newest are kept, oldest first');
      assert.equal((await store.listReports('dev-2', 'app')).length, 1);
    });

    it('listDevicePage filters by version, last event, id prefix and last seen, alone and together, paging each to exactly its set', async () => {
      const products = ['app', 'tool'];
      const ids = Array.from({ length: 60 }, (_, i) => `aa:bb:cc:00:${String(Math.floor(i / 10)).padStart(2, '0')}:${String(i % 10).padStart(2, '0')}`);
      await store.recordSightings(ids.flatMap((id, i) => products.map((product) => ({ deviceId: id, product, channel: 'stable', seenAt: at(i % 3 === 0 ? 1 : 100), source: 's' }))));
      const events = ['applied', 'failed', 'downloading', null] as const;
      const want = new Map<string, { version: string | null; lastEvent: string | null; seen: number }>();
      for (const [i, id] of ids.entries()) {
        for (const product of products) {
          const ev = events[(i + (product === 'tool' ? 1 : 0)) % 4]!;
          const version = ev === 'applied' ? (i % 2 ? '2.0.0' : '1.0.0') : null;
          if (ev !== null) {
            // A report moves last seen forward: keep the stale ones stale by reporting before their sighting.
            await store.recordReport({ ...report(ev, version, 0, id), product });
          }
          want.set(`${id}/${product}`, { version, lastEvent: ev, seen: i % 3 === 0 ? 1 : 100 });
        }
      }
      const all = async (filter: DeviceFilter, limit: number) => {
        const out: string[] = [];
        let after: string | null = null;
        for (let pages = 0; ; pages++) {
          assert.ok(pages < 500, 'paging ends');
          const page = await store.listDevicePage(filter, after, limit);
          assert.ok(page.devices.length <= limit);
          out.push(...page.devices.map((d) => `${d.deviceId}/${d.product}`));
          if (page.next === null) return out;
          after = page.next;
        }
      };
      const expect = (f: DeviceFilter) => [...want.entries()].filter(([k, w]) => {
        const [id, product] = k.split('/') as [string, string];
        return (f.product === undefined || f.product === product) && (f.version === undefined || f.version === w.version)
          && (f.lastEvent === undefined || f.lastEvent === w.lastEvent) && (f.idPrefix === undefined || id.startsWith(f.idPrefix))
          && (f.seenBefore === undefined || at(w.seen) < f.seenBefore);
      }).map(([k]) => k).sort();
      const filters: DeviceFilter[] = [
        {}, { product: 'tool' }, { version: '2.0.0' }, { version: null }, { product: 'app', version: '1.0.0' },
        { lastEvent: 'failed' }, { lastEvent: null, product: 'tool' }, { idPrefix: 'aa:bb:cc:00:03' }, { idPrefix: 'aa:bb:cc:00:0', product: 'app' },
        { seenBefore: at(50) }, { seenBefore: at(50), product: 'app', lastEvent: 'applied' }, { lastEvent: 'applied', version: '2.0.0' },
        { idPrefix: 'aa:bb:cc:00:02:0', seenBefore: at(50), version: null }, { idPrefix: 'ff' }, { product: 'none' },
      ];
      for (const f of filters) {
        const expected = expect(f);
        for (const limit of [1, 7, 1000]) assert.deepEqual(await all(f, limit), expected, `${JSON.stringify(f)}, pages of ${limit}`);
      }
      const d = (await store.listDevicePage({ lastEvent: 'failed', product: 'app' }, null, 1)).devices[0]!;
      assert.deepEqual([d.lastEvent, d.version], ['failed', null]);
    });

    it('listDevicePage with a filter no index serves reads at most DEVICE_PAGE_SCAN rows a page and still lists every match', async () => {
      const n = DEVICE_PAGE_SCAN + 2_500;
      const id = (i: number) => `aa:bb:${String(Math.floor(i / 10_000)).padStart(2, '0')}:${String(Math.floor(i / 100) % 100).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}:00`;
      const stale = new Set([5, DEVICE_PAGE_SCAN + 7, n - 1]);
      await store.recordSightings(Array.from({ length: n }, (_, i) => ({ deviceId: id(i), product: 'app', channel: 'stable', seenAt: at(stale.has(i) ? 1 : 100), source: 's' })));
      const pages: number[] = [];
      const out: string[] = [];
      let after: string | null = null;
      do {
        const page = await store.listDevicePage({ seenBefore: at(50) }, after, 500);
        pages.push(page.devices.length);
        out.push(...page.devices.map((d) => d.deviceId));
        after = page.next;
      } while (after !== null && pages.length < 10);
      assert.deepEqual(out, [...stale].map(id));
      assert.ok(pages.length >= 2, `the scan is bounded, so it takes more than one page (pages: ${pages.join(', ')})`);
    });

    it('updatedAt: every write that changes a device moves it forward, a no-op write keeps it', async () => {
      const before = Date.now();
      await store.recordSightings([sighting('dev-1', 10)]);
      const u1 = (await store.getDevice('dev-1', 'app'))!.updatedAt.getTime();
      assert.ok(u1 >= before && u1 <= Date.now() + 1_000, 'a write is stamped with the time of the write');
      await store.recordSightings([sighting('dev-1', 11)]);
      const u2 = (await store.getDevice('dev-1', 'app'))!.updatedAt.getTime();
      assert.ok(u2 > u1, 'a newer sighting');
      // An older sighting, or the same one again, changes nothing and must not be resent to mirrors.
      await store.recordSightings([sighting('dev-1', 5, { source: 'https://old.example' }), sighting('dev-1', 11)]);
      assert.equal((await store.getDevice('dev-1', 'app'))!.updatedAt.getTime(), u2);
      // Same time, other source: a change.
      await store.recordSightings([sighting('dev-1', 11, { source: 'https://m1.example' })]);
      const u3 = (await store.getDevice('dev-1', 'app'))!.updatedAt.getTime();
      assert.ok(u3 > u2, 'a sighting that changes the source');
      const r1 = await store.recordReport(report('applied', '2.0.0', 20));
      assert.ok(r1.updatedAt.getTime() > u3, 'an applied report');
      const r2 = await store.recordReport(report('failed', '3.0.0', 21));
      assert.ok(r2.updatedAt.getTime() > r1.updatedAt.getTime(), 'a failed report');
      const [m1] = await store.mergeDevices([device('dev-1', { lastSeenAt: at(30), source: 'https://m2.example' })]);
      assert.ok(m1!.updatedAt.getTime() > r2.updatedAt.getTime(), 'a merge that changes the record');
      assert.deepEqual(await store.getDevice('dev-1', 'app'), m1);
      assert.deepEqual(await store.mergeDevices([device('dev-1', { lastSeenAt: at(29) })]), []);
      assert.deepEqual((await store.getDevice('dev-1', 'app'))!.updatedAt, m1!.updatedAt, 'a merge that changes nothing');
      // The untouched device keeps its time through all of it.
      await store.recordSightings([sighting('dev-2', 1)]);
      const other = (await store.getDevice('dev-2', 'app'))!.updatedAt;
      await store.recordReport(report('applied', '2.0.0', 40));
      assert.deepEqual((await store.getDevice('dev-2', 'app'))!.updatedAt, other);
    });

    it('listDeviceChanges: in change order, after the cursor, at most limit', async () => {
      await store.recordSightings([sighting('c', 1), sighting('a', 1, { product: 'tool' }), sighting('a', 1)]);
      await store.recordReport(report('applied', '1.0.0', 2, 'b'));
      await store.recordSightings([sighting('c', 3)]);
      const { devices: all, next: end } = await store.listDeviceChanges(null, 100);
      // c changed again last: it moved to the end of the feed.
      assert.deepEqual(all.map((d) => `${d.deviceId}/${d.product}`).slice(2), ['b/app', 'c/app']);
      assert.deepEqual(all.map((d) => `${d.deviceId}/${d.product}`).slice(0, 2).sort(), ['a/app', 'a/tool']);
      for (let i = 1; i < all.length; i++) assert.ok(all[i]!.updatedAt >= all[i - 1]!.updatedAt);
      assert.deepEqual(all, await Promise.all(all.map((d) => store.getDevice(d.deviceId, d.product))), 'records as stored');
      const first = await store.listDeviceChanges(null, 2);
      assert.deepEqual(first.devices.map((d) => d.deviceId), ['a', 'a']);
      assert.deepEqual((await store.listDeviceChanges(first.next, 100)).devices.map((d) => d.deviceId), ['b', 'c'], 'the next page starts after the last record');
      const three = await store.listDeviceChanges(null, 3);
      assert.deepEqual((await store.listDeviceChanges(three.next, 100)).devices.map((d) => d.deviceId), ['c']);
      assert.deepEqual(await store.listDeviceChanges(end, 100), { devices: [], next: end, heldBy: [], bindings: [] }, 'an empty page keeps the cursor');
      assert.deepEqual((await store.listDeviceChanges(null, 0)).devices, []);
    });

    it('listDeviceChanges: a write that changes nothing does not reappear; one that changes does', async () => {
      await store.recordSightings([sighting('dev-1', 10), sighting('dev-2', 10)]);
      const { next } = await store.listDeviceChanges(null, 10);
      await store.recordSightings([sighting('dev-1', 5, { source: 'https://old.example' }), sighting('dev-2', 10)]);
      assert.deepEqual(await store.mergeDevices([device('dev-1', { firstSeenAt: at(10), lastSeenAt: at(9) })]), []);
      assert.deepEqual((await store.listDeviceChanges(next, 10)).devices, []);
      await store.recordSightings([sighting('dev-2', 11)]);
      assert.deepEqual((await store.listDeviceChanges(next, 10)).devices.map((d) => d.deviceId), ['dev-2']);
    });

    it('listDeviceChanges refuses a cursor this store did not make', async () => {
      for (const bad of ['not-a-cursor', '', '1.5', `${'9'.repeat(40)}`]) {
        await assert.rejects(store.listDeviceChanges(bad, 10), InvalidCursorError, JSON.stringify(bad));
      }
    });

    it('listDeviceChanges pages through more changes of one write than one page holds', async () => {
      const ids = Array.from({ length: 25 }, (_, i) => `dev-${String(i).padStart(2, '0')}`);
      await store.mergeDevices(ids.map((id) => device(id)));
      const pages: string[] = [];
      let page = await store.listDeviceChanges(null, 10);
      while (page.devices.length > 0) {
        pages.push(...page.devices.map((d) => d.deviceId));
        page = await store.listDeviceChanges(page.next, 10);
        // A change made between two pages comes after the pages already read.
        if (pages.length === 10) await store.recordSightings([sighting('dev-00', 50)]);
      }
      assert.deepEqual(pages.slice(0, 25).sort(), ids);
      assert.deepEqual(pages.slice(25), ['dev-00']);
    });

    it('mergeDevices adds unknown devices and merges known ones by the rule', async () => {
      await store.recordReport({ ...report('applied', '2.0.0', 10), source: 'https://primary.example' });
      await store.recordSightings([sighting('dev-1', 20, { source: 'https://primary.example' })]);
      await store.recordReport(report('applied', '1.0.0', 10, 'dev-2'));
      await store.recordReport(report('applied', '1.0.0', 10, 'dev-3'));
      const before = Date.now();
      const changed = await store.mergeDevices([
        // Lower version with a later report: the version stays (it never goes backwards), but the
        // later sighting brings lastSeen, channel and source, and the earlier first sighting.
        device('dev-1', { version: '1.9.0', lastReportAt: at(30), firstSeenAt: at(0), lastSeenAt: at(25), channel: 'beta' }),
        // Higher version, even though its report is older.
        device('dev-2', { version: '1.1.0', lastReportAt: at(5), lastSeenAt: at(5) }),
        // Equal version, later report; a pre-release of a higher version beats the release below it.
        device('dev-3', { version: '1.0.0', lastReportAt: at(12), lastSeenAt: at(12), lastEvent: 'downloading' }),
        device('dev-4', { version: '2.0.0-rc.1', lastReportAt: at(3), firstSeenAt: at(2), lastSeenAt: at(3), product: 'tool' }),
      ]);
      assert.deepEqual(changed.map((d) => `${d.deviceId}/${d.product}`).sort(), ['dev-1/app', 'dev-2/app', 'dev-3/app', 'dev-4/tool']);
      for (const d of changed) {
        assert.ok(d.updatedAt.getTime() >= before, 'updatedAt is the write time, not the incoming one');
        assert.deepEqual(await store.getDevice(d.deviceId, d.product), d, 'returned as stored');
      }
      assert.deepEqual(content(await store.getDevice('dev-1', 'app')), {
        deviceId: 'dev-1', product: 'app', channel: 'beta', version: '2.0.0', firstSeenAt: at(0), lastSeenAt: at(25),
        lastReportAt: at(10), source: 'https://m1.example', lastEvent: 'applied',
      });
      const d2 = await store.getDevice('dev-2', 'app');
      assert.deepEqual([d2?.version, d2?.lastReportAt, d2?.lastSeenAt, d2?.source], ['1.1.0', at(5), at(10), 'https://primary.example']);
      const d3 = await store.getDevice('dev-3', 'app');
      assert.deepEqual([d3?.version, d3?.lastReportAt, d3?.source, d3?.lastEvent], ['1.0.0', at(12), 'https://m1.example', 'downloading'], 'the latest event comes with its report');
      assert.deepEqual(content(await store.getDevice('dev-4', 'tool')), content(device('dev-4', {
        version: '2.0.0-rc.1', lastReportAt: at(3), firstSeenAt: at(2), lastSeenAt: at(3), product: 'tool',
      })));
      assert.equal(await store.getDevice('dev-4', 'app'), undefined);
      // Merging what is already there, or anything older, changes nothing and writes nothing.
      const snapshot = await store.listDevices();
      assert.deepEqual(await store.mergeDevices(snapshot), []);
      assert.deepEqual(await store.mergeDevices([
        device('dev-1', { version: '0.1.0', lastReportAt: at(99), lastSeenAt: at(1), firstSeenAt: at(1) }),
        device('dev-2', { version: null, lastSeenAt: at(2) }),
      ]), []);
      assert.deepEqual(await store.listDevices(), snapshot, 'no row rewritten, no updatedAt moved');
      // No report history is invented by a merge.
      assert.deepEqual(await store.listReports('dev-4', 'tool'), []);
    });

    it('mergeDevices reports a device given twice in one batch once, as finally stored', async () => {
      const changed = await store.mergeDevices([
        device('dev-1', { version: '1.0.0', lastReportAt: at(1) }),
        device('dev-1', { version: '2.0.0', lastReportAt: at(2) }),
        device('dev-1', { version: '1.5.0', lastReportAt: at(3) }),
      ]);
      assert.equal(changed.length, 1);
      assert.equal(changed[0]!.version, '2.0.0');
      assert.deepEqual(await store.getDevice('dev-1', 'app'), changed[0]);
    });

    it('mergeDevices fromUpstream: a row that becomes the incoming record keeps its change time, so it is not pulled back', async () => {
      await store.recordReport(report('applied', '1.0.0', 10, 'dev-1'));
      const mine = (await store.getDevice('dev-1', 'app'))!;
      const { next: afterMine } = await store.listDeviceChanges(null, 10);
      // The primary's newer record wins outright: the mirror stores it without a new change time.
      const [won] = await store.mergeDevices([device('dev-1', { version: '2.0.0', lastReportAt: at(20), lastSeenAt: at(20) })], { fromUpstream: true });
      assert.equal(won!.version, '2.0.0');
      assert.equal(won!.updatedAt.getTime(), mine.updatedAt.getTime());
      const [fresh] = await store.mergeDevices([device('dev-new', { version: '1.0.0', lastReportAt: at(5) })], { fromUpstream: true });
      assert.equal(fresh!.updatedAt.getTime(), 0, 'a device first learnt from upstream is not a local change');
      assert.deepEqual((await store.listDeviceChanges(afterMine, 10)).devices.map((d) => d.deviceId), []);
      // A merge the mirror's own data changes (a later sighting here) is a local change: stamped now.
      await store.recordSightings([sighting('dev-1', 50)]);
      const [mixed] = await store.mergeDevices([device('dev-1', { version: '3.0.0', lastReportAt: at(30), lastSeenAt: at(30) })], { fromUpstream: true });
      assert.ok(mixed!.updatedAt.getTime() > mine.updatedAt.getTime());
      assert.equal(mixed!.lastSeenAt.getTime(), at(50).getTime());
      assert.deepEqual((await store.listDeviceChanges(afterMine, 10)).devices.map((d) => d.deviceId), ['dev-1']);
    });

    it('mergeDevices heldBy: a row written as exactly the mirror\'s record is listed as held by that mirror until any other write changes it', async () => {
      const held = async () => {
        const page = await store.listDeviceChanges(null, 100);
        return Object.fromEntries(page.devices.map((d, i) => [d.deviceId, page.heldBy[i]]));
      };
      await store.recordReport(report('applied', '1.0.0', 10, 'dev-mine'));
      // dev-a and dev-b are new here: written as the mirror sent them. dev-mine merges with a
      // record of its own (the result is neither), so it is not held.
      await store.mergeDevices([
        device('dev-a', { version: '1.0.0', lastReportAt: at(5) }),
        device('dev-b', { version: '1.0.0', lastReportAt: at(5) }),
        device('dev-mine', { version: null, lastSeenAt: at(20) }),
      ], { heldBy: 'store-m1' });
      assert.deepEqual(await held(), { 'dev-mine': null, 'dev-a': 'store-m1', 'dev-b': 'store-m1' });
      // Another mirror's higher version wins outright: now that mirror holds it.
      await store.mergeDevices([device('dev-a', { version: '2.0.0', lastReportAt: at(6) })], { heldBy: 'store-m2' });
      assert.equal((await held())['dev-a'], 'store-m2');
      // Any local write moves the row and clears the mark: a sighting, a report, a touch, a merge without heldBy.
      await store.recordSightings([sighting('dev-b', 30)]);
      assert.equal((await held())['dev-b'], null);
      await store.mergeDevices([device('dev-c', { version: '1.0.0', lastReportAt: at(5) })], { heldBy: 'store-m1' });
      await store.recordReport(report('applied', '1.0.0', 40, 'dev-c'));
      assert.equal((await held())['dev-c'], null);
      await store.mergeDevices([device('dev-d', { version: '1.0.0', lastReportAt: at(5) })], { heldBy: 'store-m1' });
      assert.equal(await store.touchDevice('dev-d', 'app'), true);
      assert.equal((await held())['dev-d'], null);
      await store.mergeDevices([device('dev-e', { version: '1.0.0', lastReportAt: at(5) })], { heldBy: 'store-m1' });
      await store.mergeDevices([device('dev-e', { version: '1.1.0', lastReportAt: at(7) })]);
      assert.equal((await held())['dev-e'], null);
      // A merge that changes nothing keeps the mark; fromUpstream never marks.
      await store.mergeDevices([device('dev-f', { version: '1.0.0', lastReportAt: at(5) })], { heldBy: 'store-m1' });
      await store.mergeDevices([device('dev-f', { version: '1.0.0', lastReportAt: at(5) })]);
      assert.equal((await held())['dev-f'], 'store-m1');
      await store.mergeDevices([device('dev-g', { version: '1.0.0', lastReportAt: at(5) })], { heldBy: 'store-m1', fromUpstream: true });
      assert.equal((await held())['dev-g'], null);
    });

    it('listDeviceChanges: each record comes with the key and status the device is bound to (null: none)', async () => {
      await store.mergeDevices([device('dev-a'), device('dev-b')]);
      assert.equal(await store.addIdentity({
        deviceId: 'dev-b', product: 'app', channel: 'stable', publicKey: 'b'.repeat(64), keyId: 'kb', status: 'pending', pendingKey: null, createdAt: at(1), updatedAt: at(1),
      }), true);
      const page = await store.listDeviceChanges(null, 10);
      assert.deepEqual(page.devices.map((d) => d.deviceId), ['dev-a', 'dev-b']);
      assert.deepEqual(page.bindings, [null, { publicKey: 'b'.repeat(64), keyId: 'kb', status: 'pending' }]);
    });

    // Speed is measured in bench/reconcile.ts, not asserted here.
    it('mergeDevices takes 10,000 records in one call', async () => {
      const batch = Array.from({ length: 10_000 }, (_, i) => device(`dev-${i}`, { version: '1.0.0', lastReportAt: at(1) }));
      assert.equal((await store.mergeDevices(batch)).length, 10_000);
      assert.deepEqual(await store.mergeDevices(batch), []);
      const newer = batch.map((d) => ({ ...d, version: '1.1.0', lastReportAt: at(2) }));
      assert.equal((await store.mergeDevices(newer)).length, 10_000);
      assert.equal(await store.countDevices(), 10_000);
      assert.deepEqual(await store.countVersions(), { '1.1.0': 10_000 });
    });

    it('mergeDevices of a batch with an invalid version writes nothing', async () => {
      await store.recordReport(report('applied', '1.0.0', 1));
      await assert.rejects(store.mergeDevices([
        device('dev-2', { version: '1.0.0' }),
        device('dev-1', { version: 'not-a-version', lastReportAt: at(2) }),
      ]));
      assert.equal(await store.getDevice('dev-2', 'app'), undefined, 'the whole batch is one transaction');
    });

    it('mirrors: upsert adds or refreshes announcedAt, update records a sync, list is by url', async () => {
      assert.deepEqual(await store.listMirrors(), []);
      await store.upsertMirror('https://m2.example', at(1));
      await store.upsertMirror('https://m1.example', at(2));
      const fresh = { state: 'pending', approvedAt: null, cursor: null, pushCursor: null, storeId: null, lastSyncAt: null, lastAttemptAt: null, pulled: 0, pushed: 0, error: null, skipped: 0, skippedWhy: null };
      assert.deepEqual(await store.listMirrors(), [
        { url: 'https://m1.example', announcedAt: at(2), ...fresh },
        { url: 'https://m2.example', announcedAt: at(1), ...fresh },
      ]);
      await store.updateMirror('https://m1.example', { cursor: 'mirror-cursor-3', pushCursor: '4', lastSyncAt: at(4), lastAttemptAt: at(4), pulled: 12, pushed: 7 });
      await store.updateMirror('https://m1.example', { lastAttemptAt: at(5), error: 'connect ECONNREFUSED' });
      await store.updateMirror('https://m1.example', {});
      await store.updateMirror('https://unknown.example', { pulled: 1 });
      // Announcing again keeps the sync state.
      await store.upsertMirror('https://m1.example', at(6));
      const m1 = { url: 'https://m1.example', announcedAt: at(6), state: 'pending', approvedAt: null, cursor: 'mirror-cursor-3', pushCursor: '4', storeId: null, lastSyncAt: at(4), lastAttemptAt: at(5), pulled: 12, pushed: 7, error: 'connect ECONNREFUSED', skipped: 0, skippedWhy: null };
      assert.deepEqual(await store.listMirrors(), [m1, { url: 'https://m2.example', announcedAt: at(1), ...fresh }]);
      await store.updateMirror('https://m1.example', { error: null, cursor: null });
      assert.deepEqual((await store.listMirrors())[0], { ...m1, error: null, cursor: null });
    });

    it('mirrors: a new one is pending; approve marks it approved once (upsert keeps it, unknown is false); removed and re-announced it is pending again', async () => {
      assert.equal(await store.upsertMirror('https://m1.example', at(1)), 'pending');
      assert.equal(await store.approveMirror('https://unknown.example', at(2)), false);
      assert.deepEqual(await store.listMirrors(), [{ url: 'https://m1.example', announcedAt: at(1), state: 'pending', approvedAt: null, cursor: null, pushCursor: null, storeId: null, lastSyncAt: null, lastAttemptAt: null, pulled: 0, pushed: 0, error: null, skipped: 0, skippedWhy: null }]);
      assert.equal(await store.approveMirror('https://m1.example', at(2)), true);
      assert.equal(await store.approveMirror('https://m1.example', at(3)), true);
      assert.equal(await store.upsertMirror('https://m1.example', at(4), 'c'.repeat(32)), 'approved');
      await store.updateMirror('https://m1.example', { skipped: 3, skippedWhy: '3 version not released on app/stable' });
      let [m] = await store.listMirrors();
      assert.deepEqual([m!.state, m!.approvedAt, m!.announcedAt, m!.skipped, m!.skippedWhy], ['approved', at(2), at(4), 3, '3 version not released on app/stable']);
      assert.equal(await store.removeMirror('https://m1.example'), true);
      assert.equal(await store.upsertMirror('https://m1.example', at(5)), 'pending');
      [m] = await store.listMirrors();
      assert.deepEqual([m!.state, m!.approvedAt, m!.skipped], ['pending', null, 0]);
    });

    it('mirrors: a new store id resets both cursors (the mirror lost its store); the same or none keeps them', async () => {
      await store.upsertMirror('https://m1.example', at(1), 'a'.repeat(32));
      await store.updateMirror('https://m1.example', { cursor: 'c2', pushCursor: '3', pulled: 5 });
      await store.upsertMirror('https://m1.example', at(4), 'a'.repeat(32));
      await store.upsertMirror('https://m1.example', at(5));
      let [m] = await store.listMirrors();
      assert.deepEqual([m!.cursor, m!.pushCursor, m!.announcedAt, m!.storeId], ['c2', '3', at(5), 'a'.repeat(32)], 'an announce without a store id keeps the one known');
      await store.upsertMirror('https://m1.example', at(6), 'b'.repeat(32));
      [m] = await store.listMirrors();
      assert.deepEqual([m!.cursor, m!.pushCursor, m!.pulled, m!.announcedAt, m!.storeId], [null, null, 5, at(6), 'b'.repeat(32)]);
    });

    it('change times and mirrors survive close and reopen', async () => {
      await store.recordSightings([sighting('dev-1', 1)]);
      const [merged] = await store.mergeDevices([device('dev-2', { version: '1.0.0', lastReportAt: at(2) })]);
      await store.upsertMirror('https://m1.example', at(1));
      await store.approveMirror('https://m1.example', at(2));
      const devices = await store.listDeviceChanges(null, 10);
      await store.updateMirror('https://m1.example', { cursor: 'from-the-mirror', pushCursor: devices.next, pulled: 1, skipped: 2, skippedWhy: '2 bad' });
      const mirrors = await store.listMirrors();
      await store.close();
      const again = await reopen();
      assert.deepEqual(await again.listDeviceChanges(null, 10), devices);
      assert.deepEqual(await again.listMirrors(), mirrors);
      // The write clock goes on after the newest stored change.
      await again.recordSightings([sighting('dev-1', 2)]);
      assert.ok((await again.getDevice('dev-1', 'app'))!.updatedAt > merged!.updatedAt);
      assert.deepEqual((await again.listDeviceChanges(devices.next, 10)).devices.map((d) => d.deviceId), ['dev-1'], 'and so does the change feed');
    });

    it('yankRelease marks a release yanked once (a second yank keeps the first time); listReleases keeps it', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'root', 1)]);
      await store.commitRelease(release('1.0.0'), []);
      await store.commitRelease(release('1.1.0'), []);
      assert.equal(await store.yankRelease('app', 'stable', '9.9.9', at(6)), undefined, 'no such release');
      assert.equal(await store.yankRelease('app', 'beta', '1.1.0', at(6)), undefined, 'the version on another channel');
      assert.deepEqual(await store.yankRelease('app', 'stable', '1.1.0', at(6)), { ...release('1.1.0'), yankedAt: at(6) });
      assert.deepEqual((await store.yankRelease('app', 'stable', '1.1.0', at(9)))?.yankedAt, at(6));
      assert.deepEqual(await store.listReleases('app'), [release('1.0.0'), { ...release('1.1.0'), yankedAt: at(6) }]);
      await store.close();
      assert.deepEqual((await (await reopen()).getRelease('app', 'stable', '1.1.0'))?.yankedAt, at(6), 'survives reopen');
    });

    it('removeDevice removes the record and its history, only of that product; a later sighting enrols it anew', async () => {
      await store.recordReport(report('applied', '1.0.0', 2));
      await store.recordSightings([sighting('dev-1', 3, { product: 'other' }), sighting('dev-2', 3)]);
      assert.equal(await store.removeDevice('dev-1', 'app'), true);
      assert.equal(await store.removeDevice('dev-1', 'app'), false, 'gone already');
      assert.equal(await store.getDevice('dev-1', 'app'), undefined);
      assert.deepEqual(await store.listReports('dev-1', 'app'), []);
      assert.ok(await store.getDevice('dev-1', 'other'), 'the same id under another product stays');
      assert.ok(await store.getDevice('dev-2', 'app'));
      await store.recordSightings([sighting('dev-1', 10)]);
      const back = await store.getDevice('dev-1', 'app');
      assert.equal(back?.version, null);
      assert.deepEqual(back?.firstSeenAt, at(10));
    });

    it('removeMirror forgets a mirror and its cursors; an announce adds it anew', async () => {
      await store.upsertMirror('https://m1.example', at(1));
      await store.upsertMirror('https://m2.example', at(1));
      await store.updateMirror('https://m1.example', { cursor: 'c', pulled: 3 });
      assert.equal(await store.removeMirror('https://m1.example'), true);
      assert.equal(await store.removeMirror('https://m1.example'), false);
      assert.deepEqual((await store.listMirrors()).map((m) => m.url), ['https://m2.example']);
      await store.upsertMirror('https://m1.example', at(5));
      const m1 = (await store.listMirrors()).find((m) => m.url === 'https://m1.example');
      assert.equal(m1?.cursor, null);
      assert.equal(m1?.pulled, 0);
    });

    it('countChannelVersions counts per product, channel and version', async () => {
      await store.recordReport(report('applied', '1.0.0', 2, 'dev-1'));
      await store.recordReport(report('applied', '1.0.0', 2, 'dev-2'));
      await store.recordSightings([sighting('dev-3', 3, { channel: 'beta' }), sighting('dev-1', 3, { product: 'other' })]);
      assert.deepEqual(await store.countChannelVersions(), [
        { product: 'app', channel: 'beta', version: null, devices: 1 },
        { product: 'app', channel: 'stable', version: '1.0.0', devices: 2 },
        { product: 'other', channel: 'stable', version: null, devices: 1 },
      ]);
      assert.deepEqual(await store.countChannelVersions({ product: 'other' }), [{ product: 'other', channel: 'stable', version: null, devices: 1 }]);
    });

    it('version snapshots: stored whole, listed since a time per product, old ones deleted past the retention', async () => {
      assert.equal(await store.latestVersionSnapshotAt(), null);
      const row = (product: string, channel: string, version: string | null, devices: number) => ({ product, channel, version, devices });
      await store.addVersionSnapshot(at(10), [row('app', 'stable', '1.0.0', 3), row('app', 'stable', null, 1), row('other', 'beta', '2.0.0', 5)], at(0));
      await store.addVersionSnapshot(at(20), [row('app', 'stable', '1.0.0', 1), row('app', 'stable', '1.1.0', 2)], at(0));
      await store.addVersionSnapshot(at(25), [], at(0));
      assert.deepEqual(await store.latestVersionSnapshotAt(), at(20));
      assert.deepEqual(await store.listVersionSnapshots({ since: at(0) }, 100), [
        { at: at(10), ...row('app', 'stable', null, 1) },
        { at: at(10), ...row('app', 'stable', '1.0.0', 3) },
        { at: at(10), ...row('other', 'beta', '2.0.0', 5) },
        { at: at(20), ...row('app', 'stable', '1.0.0', 1) },
        { at: at(20), ...row('app', 'stable', '1.1.0', 2) },
      ].sort((a, b) => a.at.getTime() - b.at.getTime() || (a.product + a.channel + (a.version ?? '')).localeCompare(b.product + b.channel + (b.version ?? ''))));
      assert.deepEqual(await store.listVersionSnapshots({ product: 'other', since: at(0) }, 100), [{ at: at(10), ...row('other', 'beta', '2.0.0', 5) }]);
      assert.deepEqual((await store.listVersionSnapshots({ since: at(11) }, 100)).map((r) => r.version), ['1.0.0', '1.1.0']);
      assert.equal((await store.listVersionSnapshots({ since: at(0) }, 2)).length, 2);
      // The next snapshot deletes those taken before its retention bound.
      await store.addVersionSnapshot(at(30), [row('app', 'stable', '1.1.0', 3)], at(15));
      assert.deepEqual((await store.listVersionSnapshots({ since: at(0) }, 100)).map((r) => r.at.getTime()), [at(20), at(20), at(30)].map((d) => d.getTime()));
    });

    it('putIdentities adds new identities and replaces existing ones in one call, the later of two for one device winning', async () => {
      const id = (deviceId: string, keyId: string, fields: Partial<DeviceIdentityRecord> = {}): DeviceIdentityRecord => ({
        deviceId, product: 'app', channel: 'stable', publicKey: keyId.repeat(64).slice(0, 64), keyId, status: 'accepted',
        pendingKey: null, createdAt: at(1), updatedAt: at(1), ...fields,
      });
      assert.equal(await store.addIdentity(id('dev-1', 'a', { pendingKey: { publicKey: 'c'.repeat(64), keyId: 'c', at: at(2) } })), true);
      await store.putIdentities([]);
      await store.putIdentities([
        id('dev-1', 'b', { status: 'pending', updatedAt: at(3) }),
        id('dev-2', 'd'),
        id('dev-3', 'e'),
        id('dev-3', 'f', { status: 'rejected', updatedAt: at(4) }),
      ]);
      assert.deepEqual(await store.getIdentities([{ deviceId: 'dev-1', product: 'app' }, { deviceId: 'dev-2', product: 'app' }, { deviceId: 'dev-3', product: 'app' }, { deviceId: 'dev-4', product: 'app' }]), [
        id('dev-1', 'b', { status: 'pending', updatedAt: at(3) }),
        id('dev-2', 'd'),
        id('dev-3', 'f', { status: 'rejected', updatedAt: at(4) }),
        undefined,
      ]);
      assert.equal(await store.countIdentities('app'), 3);
      const many = Array.from({ length: 10_000 }, (_, i) => id(`m-${i}`, 'a'));
      await store.putIdentities(many);
      assert.equal(await store.countIdentities('app'), 10_003);
    });

    it('addIdentities adds only the devices not bound yet, in one call, and says which; getDevices and getPreauthorizations read a batch in order', async () => {
      const id = (deviceId: string, keyId: string, fields: Partial<DeviceIdentityRecord> = {}): DeviceIdentityRecord => ({
        deviceId, product: 'app', channel: 'stable', publicKey: keyId.repeat(64).slice(0, 64), keyId, status: 'accepted',
        pendingKey: null, createdAt: at(1), updatedAt: at(1), ...fields,
      });
      assert.deepEqual(await store.addIdentities([]), []);
      // dev-1 was bound first (a concurrent /v1/auth): the batch must not replace it.
      assert.equal(await store.addIdentity(id('dev-1', 'a')), true);
      assert.deepEqual(await store.addIdentities([
        id('dev-1', 'b', { status: 'pending' }),
        id('dev-2', 'c', { status: 'pending', createdAt: at(2), updatedAt: at(2) }),
        id('dev-3', 'd'),
        id('dev-3', 'e'),
        id('dev-2', 'f', { product: 'other' }),
      ]), [false, true, true, false, true]);
      const keys = ['dev-1', 'dev-2', 'dev-3', 'dev-4'].map((deviceId) => ({ deviceId, product: 'app' }));
      assert.deepEqual(await store.getIdentities(keys), [
        id('dev-1', 'a'), id('dev-2', 'c', { status: 'pending', createdAt: at(2), updatedAt: at(2) }), id('dev-3', 'd'), undefined,
      ], 'the existing binding and the first of two for one device kept');
      assert.equal(await store.countIdentities('app'), 3);
      assert.equal(await store.countIdentities('other'), 1);

      await store.recordSightings([sighting('dev-3', 5), sighting('dev-1', 6, { product: 'other' })]);
      const devices = await store.getDevices([...keys, { deviceId: 'dev-1', product: 'other' }]);
      assert.deepEqual(devices.map((d) => d && [d.deviceId, d.product, d.lastSeenAt.getTime()]), [undefined, undefined, ['dev-3', 'app', at(5).getTime()], undefined, ['dev-1', 'other', at(6).getTime()]]);
      assert.deepEqual(await store.getDevices([]), []);

      await store.putPreauthorization({ deviceId: 'dev-4', product: 'app', publicKey: null, createdAt: at(3) });
      await store.putPreauthorization({ deviceId: 'dev-2', product: 'app', publicKey: 'f'.repeat(64), createdAt: at(4) });
      assert.deepEqual(await store.getPreauthorizations([...keys, { deviceId: 'dev-4', product: 'other' }]), [
        undefined, { deviceId: 'dev-2', product: 'app', publicKey: 'f'.repeat(64), createdAt: at(4) }, undefined,
        { deviceId: 'dev-4', product: 'app', publicKey: null, createdAt: at(3) }, undefined,
      ]);
      assert.deepEqual(await store.getPreauthorizations([]), []);

      const many = Array.from({ length: 10_000 }, (_, i) => id(`m-${i}`, 'a'));
      assert.equal((await store.addIdentities(many)).filter(Boolean).length, 10_000);
      assert.equal((await store.addIdentities(many)).filter(Boolean).length, 0, 'a second time adds nothing');
      assert.equal(await store.countIdentities('app'), 10_003);
    });

    it('data survives close and reopen', async () => {
      await store.createProduct({ name: 'app', createdAt: at(1) }, [meta('app', 'root', 1)]);
      await store.commitRelease(release('1.0.0'), []);
      await store.recordReport(report('applied', '1.0.0', 2));
      await store.close();
      const again = await reopen();
      assert.deepEqual(await again.getProduct('app'), { name: 'app', createdAt: at(1), admission: 'auto' });
      assert.deepEqual(await again.getRelease('app', 'stable', '1.0.0'), release('1.0.0'));
      assert.equal((await again.getDevice('dev-1', 'app'))?.version, '1.0.0');
    });
  });
}
