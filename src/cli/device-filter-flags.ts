import { parseDuration } from '../protocol/duration.js';
import { normaliseMacPrefix } from '../protocol/mac.js';
import { isVersion } from '../protocol/version.js';
import { isReportEvent, REPORT_EVENTS } from '../protocol/wire.js';
import { CliError } from './cli-error.js';
import type { DeviceListFilter } from './device-pages.js';

export interface DeviceFilterFlags {
  product?: string;
  version?: string;
  status?: string;
  stale?: string;
  mac?: string;
}

/** The `devices` filter flags as the query of GET /v1/admin/devices; bad input is a CliError (exit 2) saying what to give. */
export function deviceFilterOf(o: DeviceFilterFlags): DeviceListFilter {
  const f: DeviceListFilter = {};
  if (o.product !== undefined) f.product = o.product;
  if (o.version !== undefined) {
    if (o.version !== 'none' && !isVersion(o.version)) throw new CliError(`--version '${o.version}' is not a semver version such as 1.2.3 (or none: devices with nothing applied)`);
    f.version = o.version;
  }
  if (o.status !== undefined) {
    if (o.status !== 'none' && !isReportEvent(o.status)) throw new CliError(`--status '${o.status}' is not a report event: use one of ${REPORT_EVENTS.join(', ')}, or none (never reported)`);
    f.status = o.status;
  }
  if (o.stale !== undefined) {
    const seconds = parseDuration(o.stale);
    if (seconds === undefined || seconds < 1) throw new CliError(`--stale '${o.stale}' is not a duration such as 7d, 12h or 1h30m`);
    f.staleSeconds = seconds;
  }
  if (o.mac !== undefined) {
    const prefix = normaliseMacPrefix(o.mac);
    if (prefix === undefined) throw new CliError(`--mac '${o.mac}' is not the start of a MAC address: give 1 to 12 hex digits, e.g. aa:bb:c`);
    f.q = prefix;
  }
  return f;
}
