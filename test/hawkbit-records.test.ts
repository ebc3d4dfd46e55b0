// Store.hawkbit (issue 12, migration 0014_hawkbit) in SQLite and PostgreSQL: one kysely
// implementation, the same answers. The postgres run needs PostgreSQL on 127.0.0.1:5432.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import type { Store } from '../src/store/store.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { tempPgDatabase } from './helpers/postgres.js';

const suite = Cleanup.forSuite();

const stores: Array<[string, () => Promise<Store>]> = [
  ['sqlite', async () => SqliteStore.open(join(await tempDir(suite, 'patchwire-hb-'), 'patchwire.db'))],
  ['postgres', async () => PostgresStore.open(await tempPgDatabase(suite))],
];

for (const [name, open] of stores) {
  test(`${name}: .swu action ids are stable and unique; targets and gateway tokens round-trip`, async () => {
    const store = await open();
    suite.after(() => store.close());
    await store.migrate();
    const at = new Date('2026-01-02T03:04:05.000Z');
    const a = await store.hawkbit.putSwu({ product: 'acme', channel: 'stable', version: '1.0.0', sha256: 'a'.repeat(64), sha1: 'b'.repeat(40), length: 4096, createdAt: at });
    const b = await store.hawkbit.putSwu({ product: 'acme', channel: 'stable', version: '1.1.0', sha256: 'c'.repeat(64), sha1: 'd'.repeat(40), length: 5000, createdAt: at });
    assert.ok(Number.isSafeInteger(a.actionId) && a.actionId > 0 && a.actionId < 2 ** 31);
    assert.notEqual(a.actionId, b.actionId);
    const again = await store.hawkbit.putSwu({ product: 'acme', channel: 'stable', version: '1.0.0', sha256: 'e'.repeat(64), sha1: 'f'.repeat(40), length: 1, createdAt: at });
    assert.deepEqual(again, a, 'a release keeps its first .swu and action id');
    assert.deepEqual(await store.hawkbit.getSwuByAction('acme', b.actionId), b);
    assert.equal(await store.hawkbit.getSwuByAction('other', b.actionId), undefined, 'an action id belongs to its product');
    assert.deepEqual((await store.hawkbit.listSwu('acme')).map((s) => s.version), ['1.0.0', '1.1.0']);

    const t = { product: 'acme', deviceId: '02:00:00:00:00:01', tokenHash: '1'.repeat(64), channel: 'stable', configAt: null, attributes: null, failedAction: null, updatedAt: at };
    await store.hawkbit.putTarget(t);
    assert.deepEqual(await store.hawkbit.getTarget('acme', t.deviceId), t);
    const t2 = { ...t, configAt: at, attributes: { board: 'x' }, failedAction: b.actionId };
    await store.hawkbit.putTarget(t2);
    assert.deepEqual(await store.hawkbit.getTarget('acme', t.deviceId), t2);

    assert.equal(await store.hawkbit.getGatewayTokenHash('acme'), undefined);
    await store.hawkbit.putGatewayTokenHash('acme', '2'.repeat(64), at);
    await store.hawkbit.putGatewayTokenHash('acme', '3'.repeat(64), at);
    assert.equal(await store.hawkbit.getGatewayTokenHash('acme'), '3'.repeat(64), 'rotating replaces');
  });
}
