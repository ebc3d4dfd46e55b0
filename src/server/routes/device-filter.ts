import { normaliseMacPrefix } from '../../protocol/mac.js';
import { isVersion } from '../../protocol/version.js';
import { isReportEvent, REPORT_EVENTS } from '../../protocol/wire.js';
import type { DeviceFilter } from '../../store/store.js';
import { ApiError } from '../api-error.js';

/** The longest `staleSeconds` taken: 100 years (a larger one could only mean "every device"). */
export const MAX_STALE_SECONDS = 100 * 365 * 86_400;

export interface DeviceFilterQuery {
  product?: string;
  version?: string;
  status?: string;
  staleSeconds?: string;
  q?: string;
}

/**
 * The filters of GET /v1/admin/devices (docs/protocol.md): `version` a semver version or `none`
 * (nothing applied), `status` a report event or `none` (never reported), `staleSeconds` devices
 * not seen within that many seconds of `now`, `q` the start of a MAC address. A bad value is
 * PW_BAD_REQUEST saying what is wrong; `product` is checked by the caller.
 */
export function parseDeviceFilter(query: DeviceFilterQuery, now: Date): DeviceFilter {
  const filter: DeviceFilter = {};
  if (query.product !== undefined) filter.product = query.product;
  if (query.version !== undefined) {
    if (query.version !== 'none' && !isVersion(query.version)) {
      throw new ApiError('PW_BAD_REQUEST', `version '${String(query.version).slice(0, 64)}' is not a semver version such as 1.2.3 (or \`none\`: devices with nothing applied)`);
    }
    filter.version = query.version === 'none' ? null : query.version;
  }
  if (query.status !== undefined) {
    if (query.status !== 'none' && !isReportEvent(query.status)) {
      throw new ApiError('PW_BAD_REQUEST', `status '${String(query.status).slice(0, 64)}' is not a report event: use one of ${REPORT_EVENTS.join(', ')}, or none (never reported)`);
    }
    filter.lastEvent = query.status === 'none' ? null : query.status;
  }
  if (query.staleSeconds !== undefined) {
    const n = Number(query.staleSeconds);
    if (!/^\d+$/.test(query.staleSeconds) || !Number.isSafeInteger(n) || n < 1 || n > MAX_STALE_SECONDS) {
      throw new ApiError('PW_BAD_REQUEST', `staleSeconds '${query.staleSeconds.slice(0, 32)}' must be a whole number of seconds from 1 to ${MAX_STALE_SECONDS} (100 years)`);
    }
    filter.seenBefore = new Date(now.getTime() - n * 1000);
  }
  if (query.q !== undefined) {
    const prefix = normaliseMacPrefix(query.q);
    if (prefix === undefined) {
      throw new ApiError('PW_BAD_REQUEST', `q '${query.q.slice(0, 32)}' is not the start of a MAC address: give 1 to 12 hex digits, with : or - between pairs or none (e.g. aa:bb:c)`);
    }
    filter.idPrefix = prefix;
  }
  return filter;
}
