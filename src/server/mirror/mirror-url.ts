import { parseHttpUrl, type HttpUrlProblem } from '../../protocol/http-url.js';
import { ApiError } from '../api-error.js';

/** Longest mirror URL accepted (the announce schema refuses longer ones too). */
export const MAX_MIRROR_URL = 512;

const WHY: Record<HttpUrlProblem, string> = {
  'not-a-url': 'is not a URL',
  'not-http': 'is not http or https',
  credentials: 'carries a user name or password',
  'query-or-fragment': 'has a query or a fragment',
  path: 'has a path',
};

/**
 * A mirror's address as announced, or given to `mirrors approve|remove` and `--mirror-allow`:
 * `http(s)://host[:port]` only (as its --public-url), no credentials, no path, query or fragment,
 * at most 512 characters; normalised (lower-case host, no default port, no trailing slash) so
 * that one mirror has one URL. Loopback addresses are allowed: approval is the gate, not the
 * address. PW_BAD_MIRROR_URL otherwise.
 */
export function mirrorUrl(text: unknown): string {
  const shown = typeof text === 'string' ? `'${text.slice(0, 100)}'` : 'the mirror URL';
  if (typeof text === 'string' && text.length > MAX_MIRROR_URL) {
    throw new ApiError('PW_BAD_MIRROR_URL', `${shown}... is longer than ${MAX_MIRROR_URL} characters; give the mirror's --public-url, http(s)://host[:port]`);
  }
  const parsed = parseHttpUrl(text, { path: false });
  if (!parsed.ok) throw new ApiError('PW_BAD_MIRROR_URL', `${shown} ${WHY[parsed.problem]}; a mirror is announced as its --public-url, http(s)://host[:port]`);
  return parsed.base;
}
