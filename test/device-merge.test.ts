// The consolidation merge (docs/design.md section 2): property tests of the pure mergeDevice(), then a
// simulation of a primary and three mirrors exchanging records over a channel that duplicates
// and reorders messages, first with in-memory servers (200 seeds), then once in lockstep with four
// real SqliteStore files to show that Store.mergeDevices behaves like the pure function.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mergeDevice, sameMerged, type MergeableDevice } from '../src/store/device-merge.js';
import { compareVersions } from '../src/protocol/version.js';
import type { DeviceRecord } from '../src/store/store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { prng as mulberry32 } from './helpers/prng.js';

/** mulberry32: a small seeded PRNG, so every failure is reproducible from its seed. */
function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  const next = mulberry32(seed);
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)]!, chance: (p) => next() < p };
}

/** In precedence order; the three 1.0.0 variants have equal precedence (build metadata only). */
const VERSIONS = [
  '0.9.0', '1.0.0-alpha.1', '1.0.0-alpha.2', '1.0.0-beta', '1.0.0-rc.1', '1.0.0', '1.0.0+build.9', '1.0.0+build.10',
  '1.1.0', '2.0.0-rc.1', '2.0.0',
] as const;
const SOURCES = ['https://primary.example', 'https://m1.example', 'https://m2.example', 'https://m3.example'];
const CHANNELS = ['stable', 'beta'];

/** null is lower than any version. */
const precedence = (a: string | null, b: string | null): number =>
  a === b ? 0 : a === null ? -1 : b === null ? 1 : compareVersions(a, b);

type Rng = ReturnType<typeof prng>;

/** A random record from small domains, so that ties in every field are frequent. */
function randomRecord(r: Rng): MergeableDevice {
  const firstSeenAt = r.int(5);
  const lastSeenAt = firstSeenAt + r.int(5);
  return {
    version: r.chance(0.15) ? null : r.pick(VERSIONS),
    lastReportAt: r.chance(0.2) ? null : r.int(6),
    firstSeenAt,
    lastSeenAt,
    channel: r.pick(CHANNELS),
    source: r.pick(SOURCES.slice(0, 3)),
    lastEvent: r.chance(0.3) ? null : r.pick(['applied', 'failed', 'downloading']),
  };
}

describe('mergeDevice properties (2,000 random cases each)', () => {
  const CASES = 2_000;
  const show = (...xs: MergeableDevice[]): string => JSON.stringify(xs);

  it('is commutative', () => {
    const r = prng(1);
    for (let i = 0; i < CASES; i++) {
      const a = randomRecord(r), b = randomRecord(r);
      assert.ok(sameMerged(mergeDevice(a, b), mergeDevice(b, a)), show(a, b));
    }
  });

  it('is associative', () => {
    const r = prng(2);
    for (let i = 0; i < CASES; i++) {
      const a = randomRecord(r), b = randomRecord(r), c = randomRecord(r);
      assert.ok(sameMerged(mergeDevice(mergeDevice(a, b), c), mergeDevice(a, mergeDevice(b, c))), show(a, b, c));
    }
  });

  it('is idempotent, also when a record arrives again after merging', () => {
    const r = prng(3);
    for (let i = 0; i < CASES; i++) {
      const a = randomRecord(r), b = randomRecord(r);
      assert.ok(sameMerged(mergeDevice(a, a), a), show(a));
      const ab = mergeDevice(a, b);
      assert.ok(sameMerged(mergeDevice(ab, b), ab), show(a, b));
      assert.ok(sameMerged(mergeDevice(ab, a), ab), show(a, b));
    }
  });

  it('never yields a version lower than either input, nor a later firstSeen or earlier lastSeen', () => {
    const r = prng(4);
    for (let i = 0; i < CASES; i++) {
      const a = randomRecord(r), b = randomRecord(r);
      const m = mergeDevice(a, b);
      assert.ok(precedence(m.version, a.version) >= 0 && precedence(m.version, b.version) >= 0, show(a, b, m));
      assert.ok(m.version === a.version || m.version === b.version, show(a, b, m));
      assert.equal(m.firstSeenAt, Math.min(a.firstSeenAt, b.firstSeenAt));
      assert.equal(m.lastSeenAt, Math.max(a.lastSeenAt, b.lastSeenAt));
    }
  });

  it('keeps version and report time, and lastSeen, channel and source, together as pairs from one input', () => {
    const r = prng(5);
    for (let i = 0; i < CASES; i++) {
      const a = randomRecord(r), b = randomRecord(r);
      const m = mergeDevice(a, b);
      assert.ok([a, b].some((x) => x.version === m.version && x.lastReportAt === m.lastReportAt), show(a, b, m));
      assert.ok([a, b].some((x) => x.lastSeenAt === m.lastSeenAt && x.channel === m.channel && x.source === m.source), show(a, b, m));
      // The latest report's event travels with its report (time and version).
      assert.ok([a, b].some((x) => x.version === m.version && x.lastReportAt === m.lastReportAt && x.lastEvent === m.lastEvent), show(a, b, m));
    }
  });

  it('the rule by example: higher version wins over a later report; equal version -> later report', () => {
    const base: MergeableDevice = { version: null, lastReportAt: null, firstSeenAt: 1, lastSeenAt: 1, channel: 'stable', source: 's', lastEvent: null };
    const newer = { ...base, version: '2.0.0', lastReportAt: 10 };
    const olderButLater = { ...base, version: '1.9.0', lastReportAt: 20 };
    assert.equal(mergeDevice(newer, olderButLater).version, '2.0.0');
    assert.equal(mergeDevice(olderButLater, newer).lastReportAt, 10);
    assert.equal(mergeDevice({ ...newer, lastReportAt: 30 }, newer).lastReportAt, 30);
    // A release over a pre-release of it, a pre-release over the previous release.
    assert.equal(mergeDevice({ ...base, version: '2.0.0-rc.1' }, { ...base, version: '2.0.0' }).version, '2.0.0');
    assert.equal(mergeDevice({ ...base, version: '2.0.0-rc.1' }, { ...base, version: '1.9.0' }).version, '2.0.0-rc.1');
    // Equal precedence (a rebuild: build metadata only) is an equal version: the later report wins,
    // whatever the string order of the build metadata ('build.9' sorts after 'build.10').
    const rebuilt = mergeDevice({ ...base, version: '1.0.0+build.9', lastReportAt: 5 }, { ...base, version: '1.0.0+build.10', lastReportAt: 6 });
    assert.equal(rebuilt.version, '1.0.0+build.10');
    assert.equal(mergeDevice({ ...base, version: null, lastReportAt: 50 }, { ...base, version: '0.1.0', lastReportAt: 1 }).version, '0.1.0');
  });
});

// ---------------------------------------------------------------------------------------------
// Simulation: 1 primary + 3 mirrors.

interface Rec extends MergeableDevice { deviceId: string; product: string }
const keyOf = (d: { deviceId: string; product: string }): string => `${d.product}/${d.deviceId}`;
const byKey = (a: Rec, b: Rec): number => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0);

type LocalEvent =
  | { kind: 'sighting'; deviceId: string; product: string; channel: string; at: number; source: string }
  | { kind: 'report'; deviceId: string; product: string; channel: string; at: number; source: string; event: 'applied' | 'failed'; version: string };

/** One server as the simulation sees it: local writes from devices, a snapshot, and a merge. */
interface SimServer {
  apply(e: LocalEvent): Promise<void>;
  /** All records, sorted by key. */
  snapshot(): Promise<Rec[]>;
  /** Merges records from another server; returns the keys that changed. */
  merge(records: Rec[]): Promise<string[]>;
}

/** The store's semantics of recordSightings / recordReport and mergeDevices, over a Map. */
class MemoryServer implements SimServer {
  readonly records = new Map<string, Rec>();

  async apply(e: LocalEvent): Promise<void> {
    const k = keyOf(e);
    const ex = this.records.get(k);
    if (e.kind === 'sighting') {
      if (!ex) {
        this.records.set(k, { deviceId: e.deviceId, product: e.product, version: null, lastReportAt: null, firstSeenAt: e.at, lastSeenAt: e.at, channel: e.channel, source: e.source, lastEvent: null });
      } else {
        const newer = e.at >= ex.lastSeenAt;
        this.records.set(k, { ...ex, channel: newer ? e.channel : ex.channel, source: newer ? e.source : ex.source, lastSeenAt: Math.max(ex.lastSeenAt, e.at) });
      }
      return;
    }
    const setsVersion = e.event === 'applied';
    if (!ex) {
      this.records.set(k, { deviceId: e.deviceId, product: e.product, version: setsVersion ? e.version : null, lastReportAt: e.at, firstSeenAt: e.at, lastSeenAt: e.at, channel: e.channel, source: e.source, lastEvent: e.event });
    } else {
      this.records.set(k, { ...ex, channel: e.channel, source: e.source, lastSeenAt: Math.max(ex.lastSeenAt, e.at), lastReportAt: e.at, version: setsVersion ? e.version : ex.version, lastEvent: e.event });
    }
  }

  async snapshot(): Promise<Rec[]> {
    return [...this.records.values()].map((r) => ({ ...r })).sort(byKey);
  }

  async merge(records: Rec[]): Promise<string[]> {
    const changed: string[] = [];
    for (const incoming of records) {
      const k = keyOf(incoming);
      const ex = this.records.get(k);
      const merged = ex ? mergeDevice(ex, incoming) : { ...incoming };
      if (ex && sameMerged(ex, merged)) continue;
      this.records.set(k, merged);
      changed.push(k);
    }
    return [...new Set(changed)];
  }
}

const toRec = (d: DeviceRecord): Rec => ({
  deviceId: d.deviceId, product: d.product, version: d.version, channel: d.channel, source: d.source,
  firstSeenAt: d.firstSeenAt.getTime(), lastSeenAt: d.lastSeenAt.getTime(), lastReportAt: d.lastReportAt?.getTime() ?? null,
  lastEvent: d.lastEvent ?? null,
});
const fromRec = (r: Rec): DeviceRecord => ({
  deviceId: r.deviceId, product: r.product, version: r.version, channel: r.channel, source: r.source,
  firstSeenAt: new Date(r.firstSeenAt), lastSeenAt: new Date(r.lastSeenAt),
  lastReportAt: r.lastReportAt === null ? null : new Date(r.lastReportAt), updatedAt: new Date(0),
  lastEvent: r.lastEvent as DeviceRecord['lastEvent'],
});

/** A real SqliteStore behind the same interface. */
class StoreServer implements SimServer {
  constructor(readonly store: SqliteStore) {}

  async apply(e: LocalEvent): Promise<void> {
    if (e.kind === 'sighting') {
      await this.store.recordSightings([{ deviceId: e.deviceId, product: e.product, channel: e.channel, seenAt: new Date(e.at), source: e.source }]);
    } else {
      await this.store.recordReport({
        deviceId: e.deviceId, product: e.product, channel: e.channel, event: e.event, version: e.version,
        previousVersion: null, detail: e.event === 'failed' ? 'simulated' : null, at: new Date(e.at), source: e.source,
      });
    }
  }

  async snapshot(): Promise<Rec[]> {
    return (await this.store.listDevices()).map(toRec).sort(byKey);
  }

  async merge(records: Rec[]): Promise<string[]> {
    const before = Date.now();
    const changed = await this.store.mergeDevices(records.map(fromRec));
    for (const d of changed) assert.ok(d.updatedAt.getTime() >= before, 'a changed record carries its write time');
    return changed.map(keyOf);
  }
}

interface Message { from: number; to: number; records: Rec[] }

interface SimOptions {
  seed: number;
  steps: number;
  /** Compared with `servers` after every step (lockstep run of a second implementation). */
  shadow?: MemoryServer[];
}

/**
 * Runs one random history. Devices only move forward (an agent applies a release only when it is
 * higher), so no server may ever see a device's version go down; every local event is stamped with
 * a strictly increasing time.
 */
async function simulate(servers: SimServer[], opts: SimOptions): Promise<void> {
  const r = prng(opts.seed);
  const devices = ['d1', 'd2', 'd3', 'd4', 'd5'].flatMap((deviceId) => ['app', 'tool'].map((product) => ({ deviceId, product })));
  /** What the devices really did: the truth the servers must converge on. */
  const truth = new Map<string, {
    version: string | null; firstAt: number; lastAt: number; channel: string; source: string; lastAppliedAt: number | null;
    /** A `failed` report came after the last `applied` one (see the version check at the end). */
    failedSinceApplied: boolean;
  }>();
  const inFlight: Message[] = [];
  const sent: Message[] = [];
  let clock = Date.UTC(2025, 0, 1);
  // Per server and key: the highest version and lastSeen observed so far.
  const seen = servers.map(() => new Map<string, { version: string | null; lastSeenAt: number; firstSeenAt: number }>());
  const where = (step: number | string): string => `seed ${opts.seed}, step ${step}`;

  const check = async (step: number | string): Promise<Rec[][]> => {
    const snaps = await Promise.all(servers.map((s) => s.snapshot()));
    snaps.forEach((snap, i) => {
      for (const rec of snap) {
        const prev = seen[i]!.get(keyOf(rec));
        if (prev) {
          assert.ok(precedence(rec.version, prev.version) >= 0,
            `${where(step)}: server ${i} moved ${keyOf(rec)} back from ${prev.version} to ${rec.version}`);
          assert.ok(rec.lastSeenAt >= prev.lastSeenAt, `${where(step)}: server ${i} moved lastSeenAt of ${keyOf(rec)} back`);
          assert.ok(rec.firstSeenAt <= prev.firstSeenAt, `${where(step)}: server ${i} moved firstSeenAt of ${keyOf(rec)} forward`);
        }
        seen[i]!.set(keyOf(rec), { version: rec.version, lastSeenAt: rec.lastSeenAt, firstSeenAt: rec.firstSeenAt });
      }
    });
    if (opts.shadow) {
      const shadows = await Promise.all(opts.shadow.map((s) => s.snapshot()));
      snaps.forEach((snap, i) => assert.deepEqual(snap, shadows[i], `${where(step)}: server ${i} differs from the pure model`));
    }
    return snaps;
  };

  const deliver = async (m: Message): Promise<void> => {
    const changed = await servers[m.to]!.merge(m.records);
    if (opts.shadow) {
      const expected = await opts.shadow[m.to]!.merge(m.records);
      assert.deepEqual([...changed].sort(), [...expected].sort(), 'mergeDevices returns the records that changed');
    }
  };
  const localEvent = async (e: LocalEvent, server: number): Promise<void> => {
    await servers[server]!.apply(e);
    await opts.shadow?.[server]!.apply(e);
  };
  const send = async (from: number, to: number, subset: boolean): Promise<Message> => {
    let records = await servers[from]!.snapshot();
    if (subset) records = records.filter(() => r.chance(0.5)); // an incremental pull sees only some
    if (r.chance(0.3)) records.reverse();
    const m = { from, to, records };
    sent.push(m);
    return m;
  };

  for (let step = 0; step < opts.steps; step++) {
    const roll = r.next();
    if (roll < 0.45) {
      // A device talks to a random server.
      const server = r.int(servers.length);
      const d = r.pick(devices);
      const k = keyOf(d);
      clock += 1 + r.int(3) * 1000;
      const t = truth.get(k) ?? { version: null, firstAt: clock, lastAt: clock, channel: '', source: '', lastAppliedAt: null, failedSinceApplied: false };
      const channel = r.chance(0.8) ? 'stable' : 'beta';
      const source = SOURCES[server]!;
      if (r.chance(0.6)) {
        await localEvent({ kind: 'sighting', ...d, channel, at: clock, source }, server);
      } else if (r.chance(0.8)) {
        // Applies an update: a version of at least the current precedence (a re-report or a rebuild included).
        const version = r.pick(VERSIONS.filter((v) => precedence(v, t.version) >= 0));
        await localEvent({ kind: 'report', ...d, channel, at: clock, source, event: 'applied', version }, server);
        t.version = version;
        t.lastAppliedAt = clock;
        t.failedSinceApplied = false;
      } else {
        await localEvent({ kind: 'report', ...d, channel, at: clock, source, event: 'failed', version: r.pick(VERSIONS) }, server);
        t.failedSinceApplied = true;
      }
      Object.assign(t, { lastAt: clock, channel, source });
      truth.set(k, t);
    } else if (roll < 0.7) {
      // A sync starts: pull a mirror into the primary, or push the primary to a mirror.
      const mirror = 1 + r.int(servers.length - 1);
      const m = r.chance(0.5) ? await send(mirror, 0, r.chance(0.4)) : await send(0, mirror, r.chance(0.4));
      inFlight.push(m);
    } else if (inFlight.length > 0) {
      // A message arrives, in any order; sometimes it stays in flight and arrives again.
      const i = r.int(inFlight.length);
      const m = inFlight[i]!;
      if (!r.chance(0.25)) inFlight.splice(i, 1);
      await deliver(m);
    }
    await check(step);
  }

  // Everything still in flight arrives (in random order, some twice), then one full sync round.
  while (inFlight.length > 0) {
    const m = inFlight.splice(r.int(inFlight.length), 1)[0]!;
    await deliver(m);
    if (r.chance(0.2)) await deliver(m);
    await check('drain');
  }
  for (let mirror = 1; mirror < servers.length; mirror++) await deliver(await send(mirror, 0, false));
  await check('final pull');
  for (let mirror = 1; mirror < servers.length; mirror++) await deliver(await send(0, mirror, false));
  const snaps = await check('final push');
  for (let i = 1; i < snaps.length; i++) assert.deepEqual(snaps[i], snaps[0], `${where('final')}: server ${i} differs from the primary`);

  // The converged record is what the devices really did.
  const primary = new Map(snaps[0]!.map((rec) => [keyOf(rec), rec]));
  assert.equal(primary.size, truth.size);
  for (const [k, t] of truth) {
    const rec = primary.get(k)!;
    assert.equal(precedence(rec.version, t.version), 0, `${where('final')}: ${k} converged on ${rec.version}, the device runs ${t.version}`);
    // Known limit of the record, not of the merge: a `failed` report moves lastReportAt without
    // touching the version, so a server still holding an older build of the same precedence
    // (1.0.0 vs 1.0.0+build.10) gets the later report time and wins the tie. Telling the two apart
    // would need the time of the last `applied` report as its own field.
    if (!t.failedSinceApplied) assert.equal(rec.version, t.version, `${where('final')}: ${k} converged on a version the device does not run`);
    assert.deepEqual([rec.firstSeenAt, rec.lastSeenAt, rec.channel, rec.source], [t.firstAt, t.lastAt, t.channel, t.source], `${where('final')}: ${k}`);
    if (t.lastAppliedAt !== null) assert.ok(rec.lastReportAt! >= t.lastAppliedAt, `${where('final')}: ${k} lastReportAt`);
  }

  // Stale copies of old messages arriving late change nothing any more.
  for (let i = 0; i < Math.min(20, sent.length); i++) {
    const m = r.pick(sent);
    assert.deepEqual(await servers[m.to]!.merge(m.records), [], `${where('replay')}: a stale message changed a converged server`);
  }
  const after = await check('replay');
  for (let i = 1; i < after.length; i++) assert.deepEqual(after[i], after[0]);
}

describe('consolidation simulation: 1 primary + 3 mirrors', () => {
  it('converges and never moves a version back, over 200 seeds (in-memory servers)', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      await simulate(Array.from({ length: 4 }, () => new MemoryServer()), { seed, steps: 300 });
    }
  });

  const suite = Cleanup.forSuite();

  it('SqliteStore.mergeDevices behaves like the pure merge (4 store files, lockstep with the in-memory model)', async () => {
    const dir = await tempDir(suite, 'patchwire-merge-sim-');
    const stores: SqliteStore[] = [];
    try {
      for (const name of ['primary', 'm1', 'm2', 'm3']) {
        const s = await SqliteStore.open(join(dir, `${name}.db`));
        await s.migrate();
        stores.push(s);
      }
      await simulate(stores.map((s) => new StoreServer(s)), {
        seed: 4242, steps: 150, shadow: Array.from({ length: 4 }, () => new MemoryServer()),
      });
    } finally {
      for (const s of stores) await s.close();
    }
  });
});
