/**
 * Normalises a server base URL: http or https, no credentials, query or fragment; trailing
 * slashes removed so that `${server}/v1/check` is well formed. Returns undefined when invalid.
 */
export function normaliseServerUrl(text: unknown): string | undefined {
  if (typeof text !== 'string' || text.length > 2048) return undefined;
  // URL drops an empty `?` or `#`, so look at the raw text too.
  if (text.includes('?') || text.includes('#')) return undefined;
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || !url.hostname) return undefined;
  return url.href.replace(/\/+$/, '');
}
