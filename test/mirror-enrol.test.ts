/**
 * The primary enrolling the new devices of a mirror's page as one batch (MirrorIdentity.admit,
 * DeviceIdentityService.enrolFromMirror; docs/security.md "Mirrors"), in process over a real
 * SQLite file: the race with a concurrent POST /v1/auth of the same MAC (forced between the batch's
 * read pass and its insert, and run for real at the same time), the admission policy, a
 * preauthorisation and the per-product device cap inside one page, and the log lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createServices, type Services } from '../src/server/services/index.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { DeviceIdentityRecord, DeviceRecord, Store } from '../src/store/store.js';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { loadOrCreateOnlineKeys } from '../src/tuf/repository.js';
import { systemClock } from '../src/server/clock.js';
import { generateKeyPair } from '../src/tuf/keys.js';
import { createInitialMetadata } from '../src/tuf/publisher.js';
import { MirrorIdentity } from '../src/server/mirror/mirror-identity.js';
import { SkipTally } from '../src/server/mirror/record-rules.js';
import type { SyncedDevice } from '../src/server/mirror/device-sync.js';
import { generateDeviceKey, type DeviceKey } from '../src/agent/device-key.js';
import { keyIdOf } from '../src/protocol/device-auth.js';
import { authBody } from './helpers/device-session.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';

const MIRROR = 'http://127.0.0.1:9';
const suite = Cleanup.forSuite();

interface Primary {
  store: SqliteStore;
  services: Services;
  identities: MirrorIdentity;
  warnings: string[];
  /** Runs once, inside the next addIdentities call, before the batch's insert. */
  beforeInsert?: () => Promise<void>;
}

/** A primary's services over a real SQLite file; the store's addIdentities can be given a step to run first. */
async function primary(o: { maxDevices?: number; admission?: 'auto' | 'approve' } = {}): Promise<Primary> {
  const dir = await tempDir(suite, 'patchwire-mirror-enrol-');
  const store = await SqliteStore.open(join(dir, 'patchwire.db'));
  suite.after(() => store.close());
  await store.migrate();
  const p: Primary = { store, warnings: [] } as unknown as Primary;
  // The real store, with a hook that interleaves real work before the batch's insert.
  const hooked = new Proxy(store, {
    get(target, prop) {
      if (prop === 'addIdentities') {
        return async (ids: DeviceIdentityRecord[]) => {
          const step = p.beforeInsert;
          p.beforeInsert = undefined;
          await step?.();
          return target.addIdentities(ids);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Store;
  const services = createServices({
    store: hooked, artifacts: await DiskArtifactStore.open(join(dir, 'artifacts')), keys: await loadOrCreateOnlineKeys(dir),
    clock: systemClock, publicUrl: () => 'http://127.0.0.1:1', expiry: { snapshotSeconds: 7 * 86400, timestampSeconds: 86400 }, sightingFlushMs: 50,
    log: { info: () => {}, warn: (_obj, msg) => p.warnings.push(msg), error: () => {} },
    mirrorToken: 'mt', deviceAuth: { maxDevices: o.maxDevices ?? 1_000_000 },
  });
  await services.load();
  suite.after(() => services.close());
  const { root, targets } = createInitialMetadata({ publisher: generateKeyPair(), online: services.products.onlineKeys(), now: new Date() });
  await services.products.create('acme', root, targets, o.admission ?? 'auto');
  p.services = services;
  p.identities = new MirrorIdentity(hooked, services.identity, systemClock);
  return p;
}

const mac = (n: number) => `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;

/** A record as a mirror sends it, under `key`. */
function synced(deviceId: string, key: DeviceKey): SyncedDevice {
  const t = new Date(Date.now() - 60_000);
  const record: DeviceRecord = { deviceId, product: 'acme', channel: 'stable', version: null, firstSeenAt: t, lastSeenAt: t, lastReportAt: null, source: MIRROR, updatedAt: new Date(0) };
  return { record, key: { publicKey: key.publicKey, keyId: key.keyId }, status: 'accepted' };
}

test('a /v1/auth of the same MAC between the batch\'s read and its insert keeps its binding: the mirror\'s record under another key is an identity conflict, not merged; the rest of the page is enrolled', async () => {
  const p = await primary();
  const raced = mac(1);
  const deviceKey = generateDeviceKey();
  const mirrorKey = generateDeviceKey();
  let token: unknown;
  p.beforeInsert = async () => {
    token = (await p.services.identity.auth(authBody(raced, 'acme', 'stable', deviceKey), '127.0.0.1')).token;
  };
  const tally = new SkipTally();
  const merged = await p.identities.admit([synced(raced, mirrorKey), synced(mac(2), generateDeviceKey()), synced(mac(3), generateDeviceKey())], MIRROR, tally);

  assert.equal(typeof token, 'string', 'the device\'s own auth got its token');
  assert.equal(p.beforeInsert, undefined, 'the auth ran inside the batch, after its read pass');
  assert.deepEqual(merged.map((r) => r.deviceId), [mac(2), mac(3)]);
  assert.equal(tally.count, 1);
  assert.match(tally.summary() ?? '', /1 identity conflict .*bound to key .* not merged/);
  const [id] = await p.store.getIdentities([{ deviceId: raced, product: 'acme' }]);
  assert.equal(id?.keyId, deviceKey.keyId, 'bound to the key that authenticated first');
  assert.equal(id?.status, 'accepted');
  assert.equal(id?.pendingKey?.keyId, mirrorKey.keyId, 'the mirror\'s key waits for an operator');
  assert.ok(p.warnings.some((w) => w.startsWith(`identity-conflict: device ${raced} of acme presented key ${mirrorKey.keyId} at mirror ${MIRROR}`)), p.warnings.join('\n'));
  assert.ok(p.warnings.includes(`2 devices of acme enrolled from mirror ${MIRROR} (2 accepted, 0 pending)`), p.warnings.join('\n'));
  assert.equal(await p.store.countIdentities('acme'), 3);
});

test('auths and a reconcile page of the same 300 devices (one key each) at the same time: each device bound once to its key, accepted, every record merged', async () => {
  const p = await primary();
  const keys = Array.from({ length: 300 }, () => generateDeviceKey());
  const page = keys.map((k, i) => synced(mac(100 + i), k));
  const tally = new SkipTally();
  const [merged, auths] = await Promise.all([
    p.identities.admit(page, MIRROR, tally),
    Promise.all(keys.map((k, i) => p.services.identity.auth(authBody(mac(100 + i), 'acme', 'stable', k), '127.0.0.1'))),
  ]);
  assert.equal(tally.count, 0, tally.summary() ?? '');
  assert.equal(merged.length, 300);
  assert.ok(auths.every((a) => a.status === 'accepted'));
  const ids = await p.store.getIdentities(page.map((x) => x.record));
  assert.deepEqual(ids.map((id) => [id?.keyId, id?.status, id?.pendingKey]), keys.map((k) => [k.keyId, 'accepted', null]));
  assert.equal(await p.store.countIdentities('acme'), 300);
});

test('one page under `approve` with a preauthorisation and the device cap: preauthorised accepted, the others pending (listed, not merged), past the cap not enrolled; one MAC twice in the page enrols once', async () => {
  const p = await primary({ maxDevices: 4, admission: 'approve' });
  await p.services.identity.auth(authBody(mac(1), 'acme', 'stable'), '127.0.0.1').catch(() => {});
  assert.equal(await p.store.countIdentities('acme'), 1, 'one device enrolled (pending) before the page');
  await p.store.putPreauthorization({ deviceId: mac(2), product: 'acme', publicKey: null, createdAt: new Date() });
  await p.store.putPreauthorization({ deviceId: mac(3), product: 'acme', publicKey: generateDeviceKey().publicKey, createdAt: new Date() });
  const k4 = generateDeviceKey();
  const page = [synced(mac(2), generateDeviceKey()), synced(mac(3), generateDeviceKey()), synced(mac(4), k4), synced(mac(4), k4), synced(mac(5), generateDeviceKey()), synced(mac(6), generateDeviceKey())];
  const tally = new SkipTally();
  const merged = await p.identities.admit(page, MIRROR, tally);

  assert.deepEqual(merged.map((r) => r.deviceId), [mac(2)], 'only the preauthorised device is merged');
  const ids = await p.store.getIdentities([2, 3, 4, 5, 6].map((n) => ({ deviceId: mac(n), product: 'acme' })));
  assert.deepEqual(ids.map((id) => id?.status), ['accepted', 'pending', 'pending', undefined, undefined]);
  assert.equal(await p.store.countIdentities('acme'), 4, 'the cap holds');
  const why = tally.summary() ?? '';
  assert.match(why, /3 device pending/, why);
  assert.match(why, /2 not enrolled \(e\.g\. device 02:00:00:00:00:05 of acme: acme has 4 devices, the most this server admits \(serve --max-devices 4\)/, why);
  assert.ok(p.warnings.includes(`3 devices of acme enrolled from mirror ${MIRROR} (1 accepted, 2 pending)`), p.warnings.join('\n'));
  const listed = await p.store.getDevices([3, 4].map((n) => ({ deviceId: mac(n), product: 'acme' })));
  assert.deepEqual(listed.map((d) => d?.version), [null, null], 'a pending device is listed with no version, as after an auth');
});
