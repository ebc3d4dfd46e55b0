import type { DeviceBinding, DeviceIdentityRecord, DeviceRecord } from '../../store/store.js';
import type { CompactDeviceSync, DeviceSync, DeviceView } from '../../protocol/wire.js';
import { PUBLIC_KEY_RE } from '../../protocol/device-auth.js';

/** A device as the admin API lists it (`patchwire devices --json`). */
export function toDeviceView(d: DeviceRecord): DeviceView {
  return {
    deviceId: d.deviceId, product: d.product, channel: d.channel, version: d.version,
    firstSeenAt: d.firstSeenAt.toISOString(), lastSeenAt: d.lastSeenAt.toISOString(),
    lastReportAt: d.lastReportAt ? d.lastReportAt.toISOString() : null, source: d.source, lastEvent: d.lastEvent ?? null,
  };
}

/**
 * The binding a record carries to another server: an agent's Ed25519 key (what the mirror
 * protocol defines, and what a mirror authenticates devices with), else none. A Mender device's
 * RSA key (DER in hex) and a hawkBit device's token-bound identity (no key) stay on this server:
 * mirrors serve neither API, and a receiver refuses a record whose key is not an Ed25519 key, so
 * sending them would drop those devices from every mirror's registry.
 */
function shared(id: DeviceBinding | null | undefined): DeviceBinding | null {
  return id && PUBLIC_KEY_RE.test(id.publicKey) ? id : null;
}

/** A device as a primary and its mirrors exchange it, with the key it is bound to here; the receiver ignores updatedAt. */
export function toDeviceSync(d: DeviceRecord, binding?: DeviceBinding | null): DeviceSync {
  const id = shared(binding);
  return { ...toDeviceView(d), updatedAt: d.updatedAt.toISOString(), keyId: id?.keyId ?? null, publicKey: id?.publicKey ?? null, status: id?.status ?? null };
}

/** toDeviceSync in format 2 (wire.ts CompactDeviceSync): an array, times in milliseconds, no updatedAt or keyId. */
export function toCompactSync(d: DeviceRecord, binding?: DeviceBinding | null): CompactDeviceSync {
  const id = shared(binding);
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
