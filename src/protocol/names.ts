/** Product and channel names: lower-case letters, digits, `-`, `_`, `.`; 1 to 64 characters. */
export const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function isName(v: unknown): v is string {
  return typeof v === 'string' && NAME_RE.test(v);
}

export const DEFAULT_CHANNEL = 'stable';
