// The page's one way to the server: same-origin fetch, the session cookie sent by the browser,
// the CSRF token (held in memory only, never in storage or a URL) on every change.
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

let csrf = '';
let onSignedOut: () => void = () => {};

export function setCsrf(token: string): void {
  csrf = token;
}

export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

export async function api<T = any>(path: string, o: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = o.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-patchwire-csrf'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await res.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    // Not patchwire's answer (a proxy's error page, say): report the status.
    if (res.ok) throw new ApiFailure(res.status, 'PW_INTERNAL', `the server answered ${path} with something other than JSON`);
  }
  if (!res.ok) {
    if (res.status === 401 && !path.endsWith('/dashboard/session')) onSignedOut();
    throw new ApiFailure(res.status, data.code ?? 'PW_INTERNAL', data.message ?? `HTTP ${res.status}`);
  }
  return data as T;
}

export const q = (params: Record<string, string | number | undefined>): string => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v));
  const t = s.toString();
  return t ? `?${t}` : '';
};

export const enc = encodeURIComponent;
