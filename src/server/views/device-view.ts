import type { DeviceRecord } from '../../store/store.js';
import type { DeviceSync, DeviceView } from '../../protocol/wire.js';

/** A device as the admin API lists it (`patchwire devices --json`). */
export function toDeviceView(d: DeviceRecord): DeviceView {
  return {
    deviceId: d.deviceId, product: d.product, channel: d.channel, version: d.version,
    firstSeenAt: d.firstSeenAt.toISOString(), lastSeenAt: d.lastSeenAt.toISOString(),
    lastReportAt: d.lastReportAt ? d.lastReportAt.toISOString() : null, source: d.source,
  };
}

/** A device as a primary and its mirrors exchange it; the receiver ignores updatedAt. */
export function toDeviceSync(d: DeviceRecord): DeviceSync {
  return { ...toDeviceView(d), updatedAt: d.updatedAt.toISOString() };
}
