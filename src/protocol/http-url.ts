/** Why a text is not an acceptable http(s) URL. */
export type HttpUrlProblem = 'not-a-url' | 'not-http' | 'credentials' | 'query-or-fragment' | 'path';

export interface HttpUrlRules {
  /** Allow a query or fragment (a webhook may carry a token in one); default refused. */
  query?: boolean;
  /** False: `http(s)://host[:port]` only, as a server's own address; default a path is allowed. */
  path?: boolean;
}

export type ParsedHttpUrl =
  | { ok: true; url: URL; base: string }
  | { ok: false; problem: HttpUrlProblem };

/** Longer addresses are refused rather than stored in state files and notices. */
const MAX_URL_LENGTH = 2048;

/**
 * The one check of an http(s) URL that a user, a file or a signed notice gives: at most 2048
 * characters, http or https with a host, no credentials (fetch refuses them), and unless allowed
 * no query or fragment, since paths are appended to it. `base` is the normalised href without
 * trailing slashes, so that `${base}/v1/check` is well formed.
 */
export function parseHttpUrl(text: unknown, rules: HttpUrlRules = {}): ParsedHttpUrl {
  if (typeof text !== 'string' || text.length > MAX_URL_LENGTH) return { ok: false, problem: 'not-a-url' };
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return { ok: false, problem: 'not-a-url' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, problem: 'not-http' };
  if (!url.hostname) return { ok: false, problem: 'not-a-url' };
  if (url.username || url.password) return { ok: false, problem: 'credentials' };
  // URL drops an empty `?` or `#`, so look at the raw text too.
  if (!rules.query && (text.includes('?') || text.includes('#'))) return { ok: false, problem: 'query-or-fragment' };
  if (rules.path === false && url.pathname !== '/') return { ok: false, problem: 'path' };
  return { ok: true, url, base: url.href.replace(/\/+$/, '') };
}

/** A server's base URL (parseHttpUrl's `base`), or undefined when the text is not one. */
export function normaliseServerUrl(text: unknown): string | undefined {
  const parsed = parseHttpUrl(text);
  return parsed.ok ? parsed.base : undefined;
}
