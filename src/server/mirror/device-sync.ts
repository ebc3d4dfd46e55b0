import type { DeviceRecord } from '../../store/store.js';
import type { DeviceSync, DeviceSyncPage } from '../../protocol/wire.js';
import { isVersion } from '../../protocol/version.js';
import { normaliseMac } from '../../protocol/mac.js';
import { isName } from '../../protocol/names.js';
import { ApiError } from '../api-error.js';

export type { DeviceSyncPage };

function time(v: unknown, field: string, i: number): Date {
  const d = typeof v === 'string' ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new ApiError('PW_BAD_REQUEST', `records[${i}].${field} is not an ISO-8601 time`);
  return d;
}

/**
 * Validates device records received from another server (a mirror's pull answer, or the
 * primary's push) before they are merged: every field, so a bad record changes nothing.
 */
export function fromSync(raw: unknown, i: number): DeviceRecord {
  const r = raw as Partial<Record<keyof DeviceSync, unknown>>;
  if (!r || typeof r !== 'object') throw new ApiError('PW_BAD_REQUEST', `records[${i}] is not an object`);
  const deviceId = normaliseMac(r.deviceId);
  if (!deviceId) throw new ApiError('PW_BAD_REQUEST', `records[${i}].deviceId is not a MAC address`);
  if (!isName(r.product) || !isName(r.channel)) throw new ApiError('PW_BAD_REQUEST', `records[${i}] has an invalid product or channel`);
  if (r.version !== null && !isVersion(r.version)) throw new ApiError('PW_BAD_REQUEST', `records[${i}].version is not semver or null`);
  if (typeof r.source !== 'string' || r.source.length > 512) throw new ApiError('PW_BAD_REQUEST', `records[${i}].source must be a URL string`);
  return {
    deviceId, product: r.product, channel: r.channel, version: r.version as string | null,
    firstSeenAt: time(r.firstSeenAt, 'firstSeenAt', i), lastSeenAt: time(r.lastSeenAt, 'lastSeenAt', i),
    lastReportAt: r.lastReportAt === null ? null : time(r.lastReportAt, 'lastReportAt', i),
    source: r.source, updatedAt: new Date(0),
  };
}
