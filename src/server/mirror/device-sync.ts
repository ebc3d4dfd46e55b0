import type { DeviceRecord } from '../../store/store.js';
import { COMPACT_FIELDS, isReportEvent, type DeviceSync, type DeviceSyncPage } from '../../protocol/wire.js';
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

/** An ISO-8601 time of a format-1 record, in milliseconds, or why it is refused. */
function isoTime(v: unknown, field: string, now: number): number | Refusal {
  const ms = typeof v === 'string' && v.length <= 40 ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(ms)) return { kind: `${field} not a time`, text: `${field} is not an ISO-8601 time` };
  return inRange(ms, field, now);
}

/** A time of a format-2 record (milliseconds since the epoch, a whole number), or why it is refused. */
function msTime(v: unknown, field: string, now: number): number | Refusal {
  if (!Number.isSafeInteger(v)) return { kind: `${field} not a time`, text: `${field} is not a whole number of milliseconds since the epoch` };
  return inRange(v as number, field, now);
}

function inRange(ms: number, field: string, now: number): number | Refusal {
  if (ms > now + CLOCK_SKEW_MS) return { kind: `${field} in the future`, text: `${field} ${isoText(ms)} is in the future (more than 5 minutes ahead of this server)` };
  if (ms < OLDEST_TIME) return { kind: `${field} before 2000`, text: `${field} ${isoText(ms)} is before 2000-01-01` };
  return ms;
}

/** A time in a refusal: ISO-8601 when a Date can hold it, else the number given. */
const isoText = (ms: number): string => (Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`);

const refused = (v: unknown): v is Refusal => typeof v === 'object' && v !== null && 'kind' in v;

/** The fields of one received record, whichever format carried them (times not yet read). */
interface RawFields {
  deviceId: unknown; product: unknown; channel: unknown; version: unknown; source: unknown;
  firstSeenAt: unknown; lastSeenAt: unknown; lastReportAt: unknown; lastEvent: unknown;
}

/** The checks of fromSync on the fields of either format; `time` reads a time of that format. */
function checked(r: RawFields, nowMs: number, time: (v: unknown, field: string, now: number) => number | Refusal): DeviceRecord | Refusal {
  const deviceId = normaliseMac(r.deviceId);
  if (!deviceId) return { kind: 'bad MAC', text: `deviceId ${JSON.stringify(r.deviceId)?.slice(0, 40)} is not a MAC address` };
  if (!isName(r.product) || !isName(r.channel)) return { kind: 'bad product or channel name', text: 'product or channel is not a valid name' };
  if (r.version !== null && !isVersion(r.version)) return { kind: 'bad version', text: 'version is not semver or null' };
  if (typeof r.source !== 'string' || r.source.length > 512) return { kind: 'bad source', text: 'source is not a URL string of at most 512 characters' };
  const firstSeenAt = time(r.firstSeenAt, 'firstSeenAt', nowMs);
  if (refused(firstSeenAt)) return firstSeenAt;
  const lastSeenAt = time(r.lastSeenAt, 'lastSeenAt', nowMs);
  if (refused(lastSeenAt)) return lastSeenAt;
  const lastReportAt = r.lastReportAt === null ? null : time(r.lastReportAt, 'lastReportAt', nowMs);
  if (refused(lastReportAt)) return lastReportAt;
  // Issue 11: the latest report's event; absent from older servers (then none is known), and an
  // event this server does not know is not merged either.
  const lastEvent = isReportEvent(r.lastEvent) ? r.lastEvent : null;
  return {
    deviceId, product: r.product, channel: r.channel, version: r.version as string | null,
    firstSeenAt: new Date(firstSeenAt), lastSeenAt: new Date(lastSeenAt), lastReportAt: lastReportAt === null ? null : new Date(lastReportAt),
    source: r.source, updatedAt: EPOCH,
    ...(lastEvent !== null ? { lastEvent } : {}),
  };
}

/** The ignored updatedAt of every received record (one Date, never changed: mergeDevices ignores it). */
const EPOCH = new Date(0);

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
  return checked(r as RawFields, now.getTime(), isoTime);
}

export { refused as isRefusal };

/** A received record with the identity the sender has it bound to (null: none; status null: not said). */
export interface SyncedDevice {
  record: DeviceRecord;
  /** keyId: derived from publicKey on first use (SyncedKey). */
  key: { readonly publicKey: string; readonly keyId: string } | null;
  status: DeviceStatus | null;
}

const STATUSES = new Set<unknown>(['accepted', 'pending', 'rejected']);

/**
 * A received key: its id is derived from the key (never taken from the peer) when first asked for,
 * so a record whose key the receiver has bound already (compared by the key itself) costs no hash.
 */
export class SyncedKey {
  #keyId: string | undefined;
  constructor(readonly publicKey: string) {}
  get keyId(): string {
    return (this.#keyId ??= keyIdOf(this.publicKey));
  }
}

function keyAndStatus(record: DeviceRecord, publicKey: unknown, status: unknown): SyncedDevice | Refusal {
  if (publicKey !== undefined && publicKey !== null && (typeof publicKey !== 'string' || !PUBLIC_KEY_RE.test(publicKey))) {
    return { kind: 'bad key', text: 'publicKey is not 64 lower-case hex digits or null' };
  }
  if (status !== undefined && status !== null && !STATUSES.has(status)) return { kind: 'bad status', text: 'status is not accepted, pending, rejected or null' };
  const key = typeof publicKey === 'string' ? new SyncedKey(publicKey) : null;
  return { record, key, status: (status as DeviceStatus | undefined) ?? null };
}

/** fromSync, and the record's key (its id derived from the key, never taken from the peer) and status. */
export function syncedFromSync(raw: unknown, now: Date): SyncedDevice | Refusal {
  const record = fromSync(raw, now);
  if (refused(record)) return record;
  const r = raw as Partial<Record<keyof DeviceSync, unknown>>;
  return keyAndStatus(record, r.publicKey, r.status);
}

/**
 * syncedFromSync for a record of format 2 (wire.ts CompactDeviceSync: an array of exactly
 * COMPACT_FIELDS.length values, times in milliseconds): the same checks, the same refusals.
 */
export function syncedFromCompact(raw: unknown, now: Date): SyncedDevice | Refusal {
  if (!Array.isArray(raw) || raw.length !== COMPACT_FIELDS.length) {
    return { kind: 'not a record array', text: `a format-2 record is not an array of ${COMPACT_FIELDS.length} values (${COMPACT_FIELDS.join(', ')})` };
  }
  const [deviceId, product, channel, version, firstSeenAt, lastSeenAt, lastReportAt, source, lastEvent, publicKey, status] = raw as unknown[];
  const record = checked({ deviceId, product, channel, version, source, firstSeenAt, lastSeenAt, lastReportAt, lastEvent }, now.getTime(), msTime);
  if (refused(record)) return record;
  return keyAndStatus(record, publicKey, status);
}
