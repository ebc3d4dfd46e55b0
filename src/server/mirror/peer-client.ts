import { Readable } from 'node:stream';
import { BodyTooLargeError, readBounded, sizeText } from './bounded-body.js';

/** Thrown when another patchwire server (the primary or a mirror) cannot be reached or answers with an error. */
export class PeerError extends Error {
  override name = 'PeerError';
  constructor(message: string, readonly url: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface PeerRequest {
  method?: string;
  /** The mirror token (sent as a Bearer token). */
  token?: string;
  body?: unknown;
  /** The body already serialised as JSON (one page pushed to several mirrors is serialised once); instead of `body`. */
  json?: string;
  timeoutMs?: number;
  /** Largest answer read into memory (peerJson, peerText; default 16 MiB); a longer one is an error. */
  maxBytes?: number;
  /**
   * Follow one redirect to an http(s) URL, sending it nothing but the GET (no token): for artifact
   * downloads from a primary started with `--store-redirect` (a presigned S3 URL). Only for
   * requests whose answer is verified by hash before anything of it is kept.
   */
  followStoreRedirect?: boolean;
}

const DEFAULT_MAX_BYTES = 16 * 1024 ** 2;
/** Of an error answer only the start is read (its message). */
const ERROR_BODY_BYTES = 64 * 1024;

/** Why a redirect between servers is refused (the alarm webhook has its own message). */
export const NO_REDIRECTS = 'patchwire never follows redirects between servers: announce a mirror at its final URL (its --public-url), give --upstream as the primary\'s final URL';

async function send(url: string, req: PeerRequest): Promise<Response> {
  const headers: Record<string, string> = {};
  if (req.token) headers.authorization = `Bearer ${req.token}`;
  const payload = req.json ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const method = req.method ?? 'GET';
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: payload,
      signal: AbortSignal.timeout(req.timeoutMs ?? 30_000),
      // A redirect would send the mirror token (and the registry) wherever the peer points.
      redirect: 'manual',
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw new PeerError(`cannot reach ${url}: ${cause?.message ?? (err as Error).message}`, url, undefined, { cause: err });
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => {});
    if (req.followStoreRedirect && method === 'GET' && !req.token) {
      const target = redirectTarget(url, res.headers.get('location'));
      if (target) return send(target, { timeoutMs: req.timeoutMs, maxBytes: req.maxBytes });
    }
    const location = (res.headers.get('location') ?? '(no Location)').slice(0, 300);
    throw new PeerError(`${method} ${url} answered ${res.status}, a redirect to ${location}; ${NO_REDIRECTS}`, url, res.status);
  }
  if (!res.ok) {
    const text = (await readBounded(res.body, ERROR_BODY_BYTES).catch(() => Buffer.alloc(0))).toString('utf8');
    let message = text.slice(0, 300);
    try {
      message = String((JSON.parse(text) as { message?: string }).message ?? message).slice(0, 300);
    } catch {
      // not JSON: keep the text
    }
    throw new PeerError(`${method} ${url} answered ${res.status}: ${message}`, url, res.status);
  }
  return res;
}

/** An absolute http(s) Location (relative ones resolved against `from`), or undefined. */
function redirectTarget(from: string, location: string | null): string | undefined {
  if (!location) return undefined;
  try {
    const url = new URL(location, from);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

async function body(url: string, res: Response, max: number): Promise<Buffer> {
  try {
    return await readBounded(res.body, max);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new PeerError(`${url} answered more than ${sizeText(max)}; refused, nothing of it was used`, url, res.status, { cause: err });
    throw new PeerError(`reading the answer of ${url} failed: ${(err as Error).message}`, url, res.status, { cause: err });
  }
}

/** A JSON request to another patchwire server; the answer is read up to `maxBytes`. */
export async function peerJson<T>(url: string, req: PeerRequest = {}): Promise<T> {
  const res = await send(url, req);
  const bytes = await body(url, res, req.maxBytes ?? DEFAULT_MAX_BYTES);
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new PeerError(`${url} answered with a body that is not JSON`, url, res.status, { cause: err });
  }
}

/** The exact bytes of a metadata file, up to `maxBytes`. */
export async function peerText(url: string, req: PeerRequest = {}): Promise<string> {
  const res = await send(url, req);
  return (await body(url, res, req.maxBytes ?? DEFAULT_MAX_BYTES)).toString('utf8');
}

/** A download as a stream (artifacts are hashed and bounded while staged, so nothing unverified is kept). */
export async function peerStream(url: string, req: PeerRequest = {}): Promise<Readable> {
  const res = await send(url, { timeoutMs: 600_000, ...req });
  if (!res.body) throw new PeerError(`${url} answered without a body`, url, res.status);
  return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
}
