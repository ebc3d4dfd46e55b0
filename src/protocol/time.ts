const ISO_RE = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)$/;

/**
 * Parses an ISO-8601 date-time with a zone (`2026-12-01T09:00:00Z`, `...+01:00`). Returns undefined
 * for anything else, including dates that do not exist: `Date` would roll 2030-02-30 over into
 * March, so the parts are checked against the calendar.
 */
export function parseIsoDateTime(text: unknown): Date | undefined {
  if (typeof text !== 'string') return undefined;
  const m = ISO_RE.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const probe = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d
    || probe.getUTCHours() !== h || probe.getUTCMinutes() !== mi || probe.getUTCSeconds() !== s) return undefined;
  const date = new Date(text.trim());
  return Number.isNaN(date.getTime()) ? undefined : date;
}
