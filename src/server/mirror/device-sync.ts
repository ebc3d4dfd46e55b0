import type { DeviceRecord } from '../../store/store.js';
import { isReportEvent, type DeviceSync, type DeviceSyncPage } from '../../protocol/wire.js';
import { isVersion } from '../../protocol/version.js';
import { normaliseMac } from '../../protocol/mac.js';
import { isName } from '../../protocol/names.js';
import { keyIdOf, PUBLIC_KEY_RE } from '../../protocol/device-auth.js';
import type { DeviceStatus } from '../../store/identity.js';

export type { DeviceSyncPage };

/** How far ahead of this server's clock a peer's time may be (clocks of two hosts differ a little). */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** No patchwire device was seen before this; an earlier time is garbage (or the epoch). */
export const OLDEST_TIME = Date.parse('2000-01-01T00:00:00Z');

/** A record refused: `kind` groups the reasons in a sync's summary, `text` is one example. */
export interface Refusal {
  kind: string;
  text: string;
}

function time(v: unknown, field: string, now: number): Date | Refusal {
  const d = typeof v === 'string' && v.length <= 40 ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) return { kind: `${field} not a time`, text: `${field} is not an ISO-8601 time` };
  if (d.getTime() > now + CLOCK_SKEW_MS) return { kind: `${field} in the future`, text: `${field} ${d.toISOString()} is in the future (more than 5 minutes ahead of this server)` };
  if (d.getTime() < OLDEST_TIME) return { kind: `${field} before 2000`, text: `${field} ${d.toISOString()} is before 2000-01-01` };
  return d;
}

const refused = (v: unknown): v is Refusal => typeof v === 'object' && v !== null && 'kind' in v;

/**
 * Validates the form of one device record received from another server (a mirror's pull answer,
 * or the primary's push) before it is merged: a MAC address, names, a semver version or null,
 * times that are ISO-8601, not more than CLOCK_SKEW_MS ahead of `now` and not before 2000, a
 * bounded source. Returns the record, or why it is refused. What the receiver holds (products,
 * channels, releases) is judged by RecordRules (record-rules.ts).
 */
export function fromSync(raw: unknown, now: Date): DeviceRecord | Refusal {
  const r = raw as Partial<Record<keyof DeviceSync, unknown>>;
  if (!r || typeof r !== 'object' || Array.isArray(r)) return { kind: 'not an object', text: 'a record is not an object' };
  const deviceId = normaliseMac(r.deviceId);
  if (!deviceId) return { kind: 'bad MAC', text: `deviceId ${JSON.stringify(r.deviceId)?.slice(0, 40)} is not a MAC address` };
  if (!isName(r.product) || !isName(r.channel)) return { kind: 'bad product or channel name', text: 'product or channel is not a valid name' };
  if (r.version !== null && !isVersion(r.version)) return { kind: 'bad version', text: 'version is not semver or null' };
  if (typeof r.source !== 'string' || r.source.length > 512) return { kind: 'bad source', text: 'source is not a URL string of at most 512 characters' };
  const ms = now.getTime();
  const firstSeenAt = time(r.firstSeenAt, 'firstSeenAt', ms);
  if (refused(firstSeenAt)) return firstSeenAt;
  const lastSeenAt = time(r.lastSeenAt, 'lastSeenAt', ms);
  if (refused(lastSeenAt)) return lastSeenAt;
  const lastReportAt = r.lastReportAt === null ? null : time(r.lastReportAt, 'lastReportAt', ms);
  if (refused(lastReportAt)) return lastReportAt;
  // Issue 11: the latest report's event; absent from older servers (then none is known), and an
  // event this server does not know is not merged either.
  const lastEvent = isReportEvent(r.lastEvent) ? r.lastEvent : null;
  return {
    deviceId, product: r.product, channel: r.channel, version: r.version as string | null,
    firstSeenAt, lastSeenAt, lastReportAt, source: r.source, updatedAt: new Date(0),
    ...(lastEvent !== null ? { lastEvent } : {}),
  };
}

export { refused as isRefusal };

/** A received record with the identity the sender has it bound to (null: none; status null: not said). */
export interface SyncedDevice {
  record: DeviceRecord;
  key: { publicKey: string; keyId: string } | null;
  status: DeviceStatus | null;
}

const STATUSES = new Set<unknown>(['accepted', 'pending', 'rejected']);

/** fromSync, and the record's key (its id recomputed from the key, never taken from the peer) and status. */
export function syncedFromSync(raw: unknown, now: Date): SyncedDevice | Refusal {
  const record = fromSync(raw, now);
  if (refused(record)) return record;
  const r = raw as Partial<Record<keyof DeviceSync, unknown>>;
  if (r.publicKey !== undefined && r.publicKey !== null && (typeof r.publicKey !== 'string' || !PUBLIC_KEY_RE.test(r.publicKey))) {
    return { kind: 'bad key', text: 'publicKey is not 64 lower-case hex digits or null' };
  }
  if (r.status !== undefined && r.status !== null && !STATUSES.has(r.status)) return { kind: 'bad status', text: 'status is not accepted, pending, rejected or null' };
  const key = typeof r.publicKey === 'string' ? { publicKey: r.publicKey, keyId: keyIdOf(r.publicKey) } : null;
  return { record, key, status: (r.status as DeviceStatus | undefined) ?? null };
}
