import { compareVersions } from '../protocol/version.js';

/**
 * The fields of a device record that consolidation merges. Times are milliseconds since the epoch.
 */
export interface MergeableDevice {
  version: string | null;
  lastReportAt: number | null;
  firstSeenAt: number;
  lastSeenAt: number;
  channel: string;
  source: string;
  /** The latest report's event (null: none known); follows the latest report time. */
  lastEvent: string | null;
}

const cmp = (a: number | string | null, b: number | string | null): number => (a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1);

/**
 * Orders (version, lastReportAt, lastEvent): by semver precedence (null < any version), then by
 * report time, then by the version string, then by the event name. Versions that differ only in build metadata (a rebuild) have
 * equal precedence, so they are an equal version and the later report decides; the string order
 * is only the last tie-break that keeps the order total (equal precedence and equal report time).
 */
function compareApplied(a: MergeableDevice, b: MergeableDevice): number {
  if (a.version === b.version) return cmp(a.lastReportAt, b.lastReportAt) || cmp(a.lastEvent, b.lastEvent);
  if (a.version === null) return -1;
  if (b.version === null) return 1;
  return compareVersions(a.version, b.version) || cmp(a.lastReportAt, b.lastReportAt) || cmp(a.version, b.version);
}

/**
 * Merges two records of the same device (docs/design.md section 2, consolidation): the highest applied
 * version wins, then the latest report time; last-seen, channel and source come from the latest
 * sighting (ties broken by source, then channel); first-seen is the earliest. Each part is the
 * maximum (or minimum) of a total order, so the merge is commutative, associative and idempotent:
 * any order of syncs, repeated or reordered, converges, and a version never goes backwards.
 */
export function mergeDevice<T extends MergeableDevice>(a: T, b: T): T {
  const applied = compareApplied(a, b);
  const seen = cmp(a.lastSeenAt, b.lastSeenAt) || cmp(a.source, b.source) || cmp(a.channel, b.channel);
  const va = applied >= 0 ? a : b;
  const sa = seen >= 0 ? a : b;
  return {
    ...a,
    version: va.version,
    lastReportAt: va.lastReportAt,
    lastSeenAt: sa.lastSeenAt,
    source: sa.source,
    channel: sa.channel,
    firstSeenAt: Math.min(a.firstSeenAt, b.firstSeenAt),
    // The latest report's event travels with the report time it belongs to.
    lastEvent: va.lastEvent,
  };
}

/** True when merging `incoming` into `current` changes nothing. */
export function sameMerged(a: MergeableDevice, b: MergeableDevice): boolean {
  return a.version === b.version && a.lastReportAt === b.lastReportAt && a.firstSeenAt === b.firstSeenAt
    && a.lastSeenAt === b.lastSeenAt && a.channel === b.channel && a.source === b.source && a.lastEvent === b.lastEvent;
}
