/**
 * URL of a signed target on a server that serves consistent snapshots: target `stable/1.2.0.tar.gz`
 * with sha256 H is at `{server}/v1/products/{product}/targets/stable/H.1.2.0.tar.gz`.
 */
export function targetUrl(server: string, product: string, targetPath: string, sha256: string): string {
  const parts = targetPath.split('/');
  const base = parts.pop()!;
  const segments = [...parts, `${sha256}.${base}`].map(encodeURIComponent);
  return `${server}/v1/products/${encodeURIComponent(product)}/targets/${segments.join('/')}`;
}
