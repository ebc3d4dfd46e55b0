import type { Store } from '../../store/store.js';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import type { AlarmView } from '../../protocol/wire.js';
import type { Clock } from '../clock.js';
import { TufMetadataService, type ExpiryPolicy, type OnlineKeyPairs } from './tuf-metadata.js';
import { ProductService } from './products.js';
import { ReleaseService } from './releases.js';
import { ScheduleService } from './schedules.js';
import { MovedService } from './moved.js';
import { SightingBatcher } from './sighting-batcher.js';
import { DeviceService } from './devices.js';
import { CheckAnswerSigner } from './check-answer.js';
import { InstallIdWatch } from './install-id-watch.js';
import { StatusService } from './status.js';
import { FleetHistory, type FleetHistoryOptions } from './fleet-history.js';
import { Consolidation } from '../mirror/consolidation.js';
import { Replicator } from '../mirror/replicator.js';
import { MirrorService } from '../mirror/mirror-service.js';
import { postAlarm } from './alarm-webhook.js';
import { PULL_LIMITS } from '../mirror/limits.js';
import { DeltaService, type ComputeDelta, type DeltaOptions } from './deltas.js';
import { DeviceIdentityService } from './device-identity.js';
import { DeviceAdmissionService } from './device-admission.js';
import { MirrorIdentity } from '../mirror/mirror-identity.js';
import { DeviceTokens } from '../device-token.js';
import { RateLimiter } from '../rate-limit.js';
import { CatalogSync } from './catalog-sync.js';
import { PushHub, PUSH_DEFAULTS, type PushOptions } from './push-hub.js';
import type { FleetSources } from '../metrics/fleet-snapshot.js';
import { RolloutService } from './rollouts.js';
import { MenderService } from '../compat/mender/mender-service.js';
import { HawkbitService } from '../compat/hawkbit/hawkbit-service.js';

/** Device auth defaults (docs/security.md, "Device identity"). */
export const DEVICE_AUTH_DEFAULTS = {
  tokenTtlMs: 3600_000,
  skewMs: 5 * 60_000,
  enrolLimit: { limit: 600, windowMs: 60_000 },
  maxDevices: 1_000_000,
};
export type DeviceAuthOptions = typeof DEVICE_AUTH_DEFAULTS;

export interface ServicesOptions {
  store: Store;
  artifacts: ArtifactStore;
  /** null on a mirror, which never signs. */
  keys: OnlineKeyPairs | null;
  clock: Clock;
  /** This server's URL, recorded as the `source` of the devices it hears from. */
  publicUrl: () => string;
  expiry: ExpiryPolicy;
  sightingFlushMs: number;
  log: Log;
  /** On a primary: the mirror token it sends to its mirrors (consolidation is off without it). */
  mirrorToken?: string;
  /** On a primary: mirror URLs approved when they announce (`--mirror-allow`). */
  mirrorAllow?: string[];
  /** TEST HOOK: records per page asked of mirrors (default PULL_LIMITS.pageRecords). */
  mirrorPageRecords?: number;
  /** On a mirror: the primary to replicate from, and the mirror token. */
  upstream?: { url: string; token: string };
  /** POSTed a JSON `{ alarm, message }` when an alarm is raised. */
  alarmWebhook?: string;
  /** Distinct devices whose `delta-failed` reports withdraw a delta (default DEFAULT_DELTA_FAIL_THRESHOLD). */
  deltaFailThreshold?: number;
  /** Delta engine and policy; without `computeDelta` no deltas are made (devices get full archives). */
  deltas?: DeltaOptions & { computeDelta?: ComputeDelta };
  /** Device tokens, enrolment limits (DEVICE_AUTH_DEFAULTS when absent). */
  deviceAuth?: Partial<DeviceAuthOptions>;
  /** On a shared database: the periodic full reload of the caches (`serve --cache-reload`, default 30 s). */
  cacheReloadMs?: number;
  /** Event streams (PUSH_DEFAULTS when absent). */
  push?: Partial<PushOptions>;
  /** The dashboard's fleet snapshots (FLEET_HISTORY_DEFAULTS when absent). */
  fleetHistory?: Partial<FleetHistoryOptions>;
  /** Issue 12: the hawkBit DDI devices' poll interval in seconds (`serve --hawkbit-interval`, default 1 h). */
  hawkbitIntervalSeconds?: number;
}

/** `serve --cache-reload` default: the fallback when a change notification was missed. */
export const DEFAULT_CACHE_RELOAD_MS = 30_000;

export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export type Services = ReturnType<typeof wire> & { load(): Promise<void>; close(): Promise<void> };

function wire(o: ServicesOptions) {
  const { store, artifacts, clock } = o;
  const catalog = new CatalogSync(store.coordination, { reloadIntervalMs: o.cacheReloadMs ?? DEFAULT_CACHE_RELOAD_MS, log: o.log, now: () => clock().getTime() });
  const tuf = new TufMetadataService(store, o.keys, o.expiry, clock, catalog);
  const products = new ProductService(store, tuf, o.keys, clock, catalog);
  const releases = new ReleaseService(store, artifacts, tuf, products, clock, catalog, (obj, msg) => o.log.warn(obj, msg));
  const schedules = new ScheduleService(store, products, clock, catalog);
  const rollouts = new RolloutService(store, products, releases, clock, catalog, {
    alarm: (msg, alarm) => raiseAlarm(o, msg, alarm),
    scheduleSpread: (p, c) => schedules.get(p, c)?.spreadSeconds ?? null,
  });
  const push = new PushHub(store.coordination, releases, schedules, clock, { ...PUSH_DEFAULTS, ...o.push }, (obj, msg) => o.log.warn(obj, msg));
  push.offeredTo = (d, p, c, v) => rollouts.offers(d, p, c, v);
  const moved = new MovedService(store, artifacts, tuf, products, releases, clock, catalog);
  const sightings = new SightingBatcher(store, {
    intervalMs: o.sightingFlushMs,
    maxBatch: 5000,
    onError: (err) => o.log.error({ err }, 'writing device sightings failed; will retry'),
  });
  const deltas = o.deltas?.computeDelta && o.keys
    ? new DeltaService(store, artifacts, tuf, o.keys, releases, o.deltas.computeDelta, o.deltas, clock, o.log, catalog)
    // A mirror computes none (it holds no deltas key): it offers the deltas it copied from its primary (issue 13).
    : o.deltas && o.upstream ? new DeltaService(store, artifacts, tuf, null, releases, mirrorComputesNoDelta, o.deltas, clock, o.log, catalog)
      : undefined;
  if (deltas && o.keys) releases.onPublish((r) => void deltas.schedule(r));
  const devices = new DeviceService(store, products, releases, schedules, moved, sightings, o.publicUrl, clock, deltas, {
    watch: new InstallIdWatch(), warn: (obj, msg) => o.log.warn(obj, msg),
  }, new CheckAnswerSigner(tuf, o.keys?.timestamp ?? null), o.deltaFailThreshold, { rollouts, halts: !o.upstream });
  const auth = { ...DEVICE_AUTH_DEFAULTS, ...o.deviceAuth };
  const tokens = new DeviceTokens();
  const identity = new DeviceIdentityService(store, products, tokens, (p, c) => devices.requireChannel(p, c), clock, {
    tokenTtlMs: auth.tokenTtlMs, skewMs: auth.skewMs, maxDevices: auth.maxDevices,
    enrolLimiter: new RateLimiter({ ...auth.enrolLimit, now: () => clock().getTime() }),
    alarm: (msg, alarm) => raiseAlarm(o, msg, alarm),
    warn: (obj, msg) => o.log.warn(obj, msg),
    enrolled: (s) => sightings.add({ ...s, source: o.publicUrl() }),
  });
  const admission = new DeviceAdmissionService(store, products, identity, clock, catalog, (r) => push.revoked(r.deviceId, r.product, r.keyId, r.at));
  const status = new StatusService(store, releases, schedules, sightings, clock, (msg, alarm) => raiseAlarm(o, msg, alarm), admission, rollouts);
  const fleetHistory = new FleetHistory(store, clock, o.fleetHistory);
  // The Mender device API (compat/mender): its devices are this registry's, checked by `devices`.
  const mender = new MenderService({
    store: { artifacts }, tokens, identity, devices, products, releases, sightings, publicUrl: o.publicUrl, source: o.publicUrl, now: clock,
    warn: (obj, msg) => o.log.warn(obj, msg), tokenTtlMs: auth.tokenTtlMs,
  });
  const reload = async () => {
    await products.load();
    // Rollouts before releases, not beside them: a check between the two loads would otherwise
    // see a new staged release without its rollout, and offer it to every device.
    await rollouts.load();
    await Promise.all([releases.load(), schedules.load(), moved.load()]);
  };
  const identities = new MirrorIdentity(store, identity, clock);
  const mirror = new MirrorService(store, products, tuf, sightings, clock, identities, new Set(o.mirrorAllow));
  const limits = o.mirrorPageRecords ? { ...PULL_LIMITS, pageRecords: o.mirrorPageRecords } : PULL_LIMITS;
  const consolidation = o.mirrorToken
    ? new Consolidation({ store, sightings, status, token: o.mirrorToken, now: clock, log: o.log, limits, identities })
    : undefined;
  const replicator = o.upstream
    // After a replication pass the event streams hear of releases it brought.
    ? new Replicator({
      store, artifacts, upstream: o.upstream.url, token: o.upstream.token, publicUrl: o.publicUrl, log: o.log, deltas: deltas !== undefined,
      reload: async () => {
        await reload();
        await deltas?.load(products.list());
        await push.resync();
      },
    })
    : undefined;
  // One product's caches read again; everything read again (catalog-sync.ts).
  const reloadProduct = async (p: string) => {
    // Another process published, moved or re-signed: its timestamp record is read anew.
    tuf.forgetTimestamp(p);
    if (!(await products.loadProduct(p))) return;
    await rollouts.loadProduct(p); // before its releases, as in reload()
    await Promise.all([releases.loadProduct(p), schedules.loadProduct(p), moved.loadProduct(p)]);
    await deltas?.loadProduct(p);
  };
  const reloadAll = async () => {
    await products.load();
    for (const p of products.list()) await reloadProduct(p);
  };
  // What GET /metrics reads from the store at scrape time (metrics/fleet-snapshot.ts).
  // Issue 12: the hawkBit DDI (a primary's surface: a mirror holds no DDI tokens).
  const hawkbit = o.upstream ? undefined : new HawkbitService(store, artifacts, products, devices, identity, admission, clock,
    (s) => sightings.add({ ...s, source: o.publicUrl() }), o.hawkbitIntervalSeconds);
  const fleet: FleetSources = { store, flushSightings: () => sightings.flush(), alarms: () => status.alarms() };
  return { tuf, products, releases, schedules, rollouts, moved, sightings, devices, status, mirror, consolidation, replicator, reload, deltas, identity, admission, tokens, catalog, reloadProduct, reloadAll, push, fleet, clock, fleetHistory, mender, hawkbit, publicUrl: o.publicUrl };
}

/** A mirror's DeltaService never computes (it has no keys, so computeFor returns before calling this). */
const mirrorComputesNoDelta: ComputeDelta = () => Promise.reject(new Error('a mirror computes no deltas; it copies its primary\'s'));

/** An alarm goes to the log at warn level and, when configured, to the webhook (best effort). */
function raiseAlarm(o: ServicesOptions, message: string, alarm: AlarmView): void {
  o.log.warn({ alarm }, message);
  if (o.alarmWebhook) postAlarm(o.alarmWebhook, alarm, message, (obj, msg) => o.log.warn(obj, msg));
}

/** Wires the domain services (one per aggregate) over a store and an artifact store. */
export function createServices(o: ServicesOptions): Services {
  const s = wire(o);
  const { store } = o;
  return {
    ...s,
    async load() {
      // A mirror follows its primary (replicator.ts), not the database's notifications.
      if (!o.upstream) await s.catalog.start({ reloadProduct: s.reloadProduct, reloadAll: s.reloadAll, revoke: (r) => s.admission.applyRevocation(r) });
      await s.tokens.load(store);
      await s.products.load();
      await Promise.all([s.releases.load(), s.schedules.load(), s.rollouts.load()]);
      await s.moved.load();
      await s.deltas?.load(s.products.list());
      s.catalog.ready();
      await s.push.start();
      s.sightings.start();
      s.status.runtime.start();
    },
    async close() {
      await s.push.close();
      s.mender.close();
      await s.catalog.close();
      await s.deltas?.close();
      await s.sightings.stop();
      s.status.runtime.stop();
    },
  };
}
