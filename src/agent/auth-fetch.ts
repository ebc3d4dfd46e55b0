import { API_PREFIX, ROUTES } from '../protocol/urls.js';
import type { AuthResponse } from '../protocol/device-auth.js';
import { ensureDeviceKey, signAuthRequest, type DeviceKey } from './device-key.js';
import { DeviceAdmissionError, ServerError } from './errors.js';
import { postJson } from './http-json.js';
import { TokenCache } from './token-cache.js';

/** Re-authenticate when the cached token has less than this left. */
const RENEW_BEFORE_MS = 60_000;
const AUTHED_PATHS = [`${API_PREFIX}${ROUTES.check}`, `${API_PREFIX}${ROUTES.report}`];
/** Codes of a 401 that a fresh token cures (docs/errors.md). */
const TOKEN_CODES = new Set(['PW_DEVICE_TOKEN']);
const ADMISSION_CODES = new Set(['PW_DEVICE_PENDING', 'PW_DEVICE_REJECTED', 'PW_RATE_LIMITED', 'PW_DEVICE_LIMIT']);

export interface DeviceIdentity {
  /** The folder's `.patchwire/` (device key, token cache). */
  meta: string;
  deviceId: string;
  product: string;
  channel: string;
  installId?: string;
  now: () => Date;
}

/** POSTs JSON and answers the parsed reply (postJson over fetch, or the agent's light client). */
export type JsonPost = (url: string, body: unknown, signal?: AbortSignal) => Promise<unknown>;

/**
 * Authenticates the device with `server` (a signed POST /v1/auth) and caches the token. A refused
 * auth throws DeviceAdmissionError (pending, rejected, rate limited) or ServerError.
 */
export async function authenticateDevice(post: JsonPost, cache: TokenCache, id: DeviceIdentity, server: string, key: DeviceKey, signal?: AbortSignal | null): Promise<string> {
  const body = signAuthRequest(key, {
    deviceId: id.deviceId, product: id.product, channel: id.channel, ...(id.installId ? { installId: id.installId } : {}),
  }, id.now());
  let answer: AuthResponse;
  try {
    answer = (await post(`${server}${API_PREFIX}${ROUTES.auth}`, body, signal ?? undefined)) as AuthResponse;
  } catch (err) {
    if (err instanceof ServerError && err.code && ADMISSION_CODES.has(err.code)) throw new DeviceAdmissionError(err.message, err.url, err.statusCode, err.code);
    throw err;
  }
  if (typeof answer?.token !== 'string' || typeof answer.expiresAt !== 'string') {
    throw new ServerError(`the server at ${server} answered the device auth without a token: check that --server points at a patchwire server`, server, 200, undefined);
  }
  await cache.put(server, { token: answer.token, expiresAt: answer.expiresAt, keyId: answer.keyId });
  return answer.token;
}

/** The cached token for `server` while it has more than RENEW_BEFORE_MS left, else undefined. */
export async function cachedToken(cache: TokenCache, server: string, now: Date): Promise<string | undefined> {
  const t = await cache.get(server);
  return t && Date.parse(t.expiresAt) - now.getTime() > RENEW_BEFORE_MS ? t.token : undefined;
}

/**
 * A fetch that authenticates the device's checks and reports (docs/protocol.md, "POST /v1/auth"):
 * a POST to `<server>/v1/check` or `/v1/report` carries `Authorization: Bearer <token>`, the token
 * cached per server in `.patchwire/device-tokens.json`. The token is fetched when missing or near
 * expiry, and once per run (no loop) when the server answers 401 PW_DEVICE_TOKEN. Every other
 * request passes through untouched. A refused auth throws DeviceAdmissionError (pending, rejected,
 * rate limited) or ServerError.
 */
export function deviceAuthFetch(base: typeof fetch, id: DeviceIdentity): typeof fetch {
  const cache = new TokenCache(id.meta);
  let renewed = false;
  const post: JsonPost = (url, body, signal) => postJson(base, url, body, signal);
  const authenticate = async (server: string, signal?: AbortSignal | null): Promise<string> =>
    authenticateDevice(post, cache, id, server, await ensureDeviceKey(id.meta), signal);
  const tokenFor = async (server: string, signal?: AbortSignal | null): Promise<string> =>
    (await cachedToken(cache, server, id.now())) ?? authenticate(server, signal);

  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const path = AUTHED_PATHS.find((p) => new URL(url).pathname.endsWith(p));
    if (!path || (init?.method ?? 'GET') !== 'POST') return base(input, init);
    const server = url.slice(0, url.length - path.length);
    const send = (token: string) => base(input, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    const res = await send(await tokenFor(server, init?.signal));
    if (res.status !== 401 || renewed) return res;
    const code = await res.clone().json().then((b: { code?: unknown }) => b?.code, () => undefined);
    if (typeof code !== 'string' || !TOKEN_CODES.has(code)) return res;
    renewed = true;
    return send(await authenticate(server, init?.signal));
  }) as typeof fetch;
}
