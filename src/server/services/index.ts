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
import { StatusService } from './status.js';

export interface ServicesOptions {
  store: Store;
  artifacts: ArtifactStore;
  keys: OnlineKeyPairs;
  clock: Clock;
  /** This server's URL, recorded as the `source` of the devices it hears from. */
  publicUrl: () => string;
  expiry: ExpiryPolicy;
  sightingFlushMs: number;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export type Services = ReturnType<typeof wire> & { load(): Promise<void>; close(): Promise<void> };

function wire(o: ServicesOptions) {
  const { store, artifacts, clock } = o;
  const tuf = new TufMetadataService(store, o.keys, o.expiry, clock);
  const products = new ProductService(store, tuf, o.keys, clock);
  const releases = new ReleaseService(store, artifacts, tuf, products, clock);
  const schedules = new ScheduleService(store, products, clock);
  const moved = new MovedService(store, artifacts, tuf, products, releases, clock);
  const sightings = new SightingBatcher(store, {
    intervalMs: o.sightingFlushMs,
    maxBatch: 5000,
    onError: (err) => o.log.error({ err }, 'writing device sightings failed; will retry'),
  });
  const devices = new DeviceService(store, products, releases, schedules, moved, sightings, o.publicUrl, clock);
  const status = new StatusService(store, releases, schedules, sightings, clock, (msg, alarm: AlarmView) => o.log.warn({ alarm }, msg));
  return { store, artifacts, tuf, products, releases, schedules, moved, sightings, devices, status };
}

/** Wires the domain services (one per aggregate) over a store and an artifact store. */
export function createServices(o: ServicesOptions): Services {
  const s = wire(o);
  return {
    ...s,
    async load() {
      await s.products.load();
      await Promise.all([s.releases.load(), s.schedules.load()]);
      await s.moved.load();
      s.sightings.start();
    },
    async close() {
      await s.sightings.stop();
    },
  };
}
