// The Store contract for device identity (migration 0006 in SQLite): key bindings, admission
// policy and preauthorisations. Run from store-contract.test.ts over every implementation.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceIdentityRecord, Store } from '../../src/store/store.js';
import { at, type StoreHarness } from './store-contract.js';

const identity = (deviceId: string, fields: Partial<DeviceIdentityRecord> = {}): DeviceIdentityRecord => ({
  deviceId, product: 'app', channel: 'stable', publicKey: 'a'.repeat(64), keyId: 'k1', status: 'accepted', pendingKey: null,
  createdAt: at(1), updatedAt: at(1), ...fields,
});

export function identityContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
  describe(`Store contract, device identity: ${name}`, () => {
    let harness: StoreHarness;
    let store: Store;
    beforeEach(async () => {
      harness = await makeHarness();
      store = await harness.open();
      await store.migrate();
      await store.createProduct({ name: 'app', createdAt: at(0) }, []);
    });
    afterEach(async () => {
      await store.close();
      await harness.cleanup();
    });

    it('addIdentity adds once: a second add for the same MAC and product keeps the first key', async () => {
      assert.equal(await store.addIdentity(identity('dev-1')), true);
      assert.equal(await store.addIdentity(identity('dev-1', { keyId: 'k2', publicKey: 'b'.repeat(64) })), false);
      assert.deepEqual(await store.getIdentity('dev-1', 'app'), identity('dev-1'));
      assert.equal(await store.getIdentity('dev-1', 'other'), undefined, 'per product');
      assert.equal(await store.countIdentities('app'), 1);
    });

    it('updateIdentity replaces status and keys; a pending key round-trips; listIdentities filters conflicts', async () => {
      await store.addIdentity(identity('dev-1'));
      await store.addIdentity(identity('dev-2'));
      const pending = { publicKey: 'c'.repeat(64), keyId: 'k3', at: at(7) };
      assert.equal(await store.updateIdentity(identity('dev-1', { pendingKey: pending, updatedAt: at(7) })), true);
      assert.equal(await store.updateIdentity(identity('dev-9')), false, 'no such identity');
      assert.deepEqual((await store.getIdentity('dev-1', 'app'))?.pendingKey, pending);
      assert.deepEqual((await store.listIdentities({ conflicts: true })).map((i) => i.deviceId), ['dev-1']);
      assert.deepEqual((await store.listIdentities({ product: 'app' })).map((i) => i.deviceId), ['dev-1', 'dev-2']);
      await store.updateIdentity(identity('dev-2', { status: 'rejected' }));
      assert.equal((await store.getIdentity('dev-2', 'app'))?.status, 'rejected');
    });

    it('countIdentityConflicts counts identities with a pending key, of every product', async () => {
      assert.equal(await store.countIdentityConflicts(), 0);
      await store.createProduct({ name: 'other', createdAt: at(0) }, []);
      const pending = (n: number) => ({ publicKey: String(n).repeat(64), keyId: `p${n}`, at: at(7) });
      await store.putIdentities([identity('dev-1'), identity('dev-2', { pendingKey: pending(2) }), identity('dev-3', { product: 'other', pendingKey: pending(3) })]);
      assert.equal(await store.countIdentityConflicts(), 2);
      await store.updateIdentity(identity('dev-2'));
      assert.equal(await store.countIdentityConflicts(), 1, 'a resolved conflict no longer counts');
    });

    it('getIdentities reads many in their order, undefined where there is none', async () => {
      await store.addIdentity(identity('dev-1'));
      await store.addIdentity(identity('dev-2', { keyId: 'k2' }));
      const got = await store.getIdentities([{ deviceId: 'dev-2', product: 'app' }, { deviceId: 'dev-9', product: 'app' }, { deviceId: 'dev-1', product: 'app' }, { deviceId: 'dev-1', product: 'other' }]);
      assert.deepEqual(got, [identity('dev-2', { keyId: 'k2' }), undefined, identity('dev-1'), undefined]);
      assert.deepEqual(await store.getIdentities([]), []);
    });

    it('getIdentities of a batch larger than one read (12,001 keys, known ones across its chunks, one repeated) keeps every key in its place', async () => {
      const known = [0, 4999, 5000, 5001, 9999, 10000, 12000];
      await store.putIdentities(known.map((n) => identity(`dev-${n}`, { keyId: `k${n}` })));
      const keys = Array.from({ length: 12_001 }, (_, n) => ({ deviceId: `dev-${n === 7 ? 5000 : n}`, product: 'app' }));
      const got = await store.getIdentities(keys);
      assert.equal(got.length, keys.length);
      const found = got.flatMap((g, n) => (g ? [[n, g.keyId]] : []));
      assert.deepEqual(found, [[0, 'k0'], [7, 'k5000'], [4999, 'k4999'], [5000, 'k5000'], [5001, 'k5001'], [9999, 'k9999'], [10000, 'k10000'], [12000, 'k12000']]);
    });

    it('removeDevice removes the identity too (true even without a device record)', async () => {
      await store.addIdentity(identity('dev-1'));
      assert.equal(await store.removeDevice('dev-1', 'app'), true);
      assert.equal(await store.getIdentity('dev-1', 'app'), undefined);
      assert.equal(await store.removeDevice('dev-1', 'app'), false);
    });

    it('touchDevice moves a record to the end of the change feed, its fields unchanged; false without a record', async () => {
      await store.recordSightings([
        { deviceId: 'dev-1', product: 'app', channel: 'stable', seenAt: at(2), source: 's' },
        { deviceId: 'dev-2', product: 'app', channel: 'stable', seenAt: at(3), source: 's' },
      ]);
      const { devices: before, next } = await store.listDeviceChanges(null, 10);
      assert.deepEqual(before.map((d) => d.deviceId), ['dev-1', 'dev-2']);
      assert.equal(await store.touchDevice('dev-1', 'app'), true);
      const after = await store.listDeviceChanges(next, 10);
      assert.deepEqual(after.devices.map((d) => d.deviceId), ['dev-1'], 'only the touched record comes after the old cursor');
      const { updatedAt: _a, ...was } = before[0]!;
      const { updatedAt: _b, ...now } = after.devices[0]!;
      assert.deepEqual(now, was);
      assert.equal(await store.touchDevice('dev-9', 'app'), false);
      assert.deepEqual((await store.listDeviceChanges(after.next, 10)).devices, [], 'an unknown device moves nothing');
    });

    it('admission defaults to auto, survives a reopen when set; preauthorisations are replaced', async () => {
      assert.equal((await store.getProduct('app'))?.admission, 'auto');
      assert.equal(await store.setAdmission('app', 'approve'), true);
      assert.equal(await store.setAdmission('nope', 'approve'), false);
      await store.putPreauthorization({ deviceId: 'dev-1', product: 'app', publicKey: null, createdAt: at(2) });
      await store.putPreauthorization({ deviceId: 'dev-1', product: 'app', publicKey: 'd'.repeat(64), createdAt: at(3) });
      await store.close();
      store = await harness.open();
      assert.equal((await store.listProducts())[0]?.admission, 'approve');
      assert.deepEqual(await store.getPreauthorization('dev-1', 'app'), { deviceId: 'dev-1', product: 'app', publicKey: 'd'.repeat(64), createdAt: at(3) });
      assert.equal(await store.getPreauthorization('dev-2', 'app'), undefined);
    });
  });
}
