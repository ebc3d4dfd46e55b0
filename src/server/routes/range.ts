/**
 * Parses a single `Range: bytes=...` header (RFC 9110) against a length. Returns undefined to
 * send the whole body (no header, a malformed one, several ranges, or an If-Range that does not
 * match the ETag), 'unsatisfiable' for a range that starts past the end.
 */
export function parseRange(
  header: string | string[] | undefined,
  length: number,
  ifRange: string | string[] | undefined,
  etag: string,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (typeof header !== 'string') return undefined;
  if (ifRange !== undefined && ifRange !== etag) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(m[1]);
  if (start >= length) return 'unsatisfiable';
  const end = m[2] === '' ? length - 1 : Math.min(Number(m[2]), length - 1);
  if (end < start) return undefined;
  return { start, end };
}
