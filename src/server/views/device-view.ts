import type { DeviceBinding, DeviceIdentityRecord, DeviceRecord } from '../../store/store.js';
import type { CompactDeviceSync, DeviceSync, DeviceView } from '../../protocol/wire.js';

/** A device as the admin API lists it (`patchwire devices --json`). */
export function toDeviceView(d: DeviceRecord): DeviceView {
  return {
    deviceId: d.deviceId, product: d.product, channel: d.channel, version: d.version,
    firstSeenAt: d.firstSeenAt.toISOString(), lastSeenAt: d.lastSeenAt.toISOString(),
    lastReportAt: d.lastReportAt ? d.lastReportAt.toISOString() : null, source: d.source, lastEvent: d.lastEvent ?? null,
  };
}

/** A device as a primary and its mirrors exchange it, with the key it is bound to here; the receiver ignores updatedAt. */
export function toDeviceSync(d: DeviceRecord, id?: DeviceBinding | null): DeviceSync {
  return { ...toDeviceView(d), updatedAt: d.updatedAt.toISOString(), keyId: id?.keyId ?? null, publicKey: id?.publicKey ?? null, status: id?.status ?? null };
}

/** toDeviceSync in format 2 (wire.ts CompactDeviceSync): an array, times in milliseconds, no updatedAt or keyId. */
export function toCompactSync(d: DeviceRecord, id?: DeviceBinding | null): CompactDeviceSync {
  return [
    d.deviceId, d.product, d.channel, d.version, d.firstSeenAt.getTime(), d.lastSeenAt.getTime(), d.lastReportAt ? d.lastReportAt.getTime() : null,
    d.source, d.lastEvent ?? null, id?.publicKey ?? null, id?.status ?? null,
  ];
}

/**
 * The admin listing: each device with its admission status and key ids (null: it has not
 * authenticated since device keys exist), then the devices that authenticated but never checked
 * (pending ones), in the order of the store (product, device id).
 */
export function withIdentities(rows: DeviceRecord[], ids: DeviceIdentityRecord[]): DeviceView[] {
  const byKey = new Map(ids.map((i) => [`${i.product}\n${i.deviceId}`, i]));
  const ident = (i: DeviceIdentityRecord | undefined) => ({ status: i?.status ?? null, keyId: i?.keyId ?? null, pendingKeyId: i?.pendingKey?.keyId ?? null });
  const out = rows.map((d) => {
    const k = `${d.product}\n${d.deviceId}`;
    const i = byKey.get(k);
    byKey.delete(k);
    return { ...toDeviceView(d), ...ident(i) };
  });
  for (const i of byKey.values()) {
    out.push({
      deviceId: i.deviceId, product: i.product, channel: i.channel, version: null, firstSeenAt: i.createdAt.toISOString(),
      lastSeenAt: i.updatedAt.toISOString(), lastReportAt: null, source: '', lastEvent: null, ...ident(i),
    });
  }
  return out;
}
