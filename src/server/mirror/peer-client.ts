import { Readable } from 'node:stream';

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
  timeoutMs?: number;
}

async function send(url: string, req: PeerRequest): Promise<Response> {
  const headers: Record<string, string> = {};
  if (req.token) headers.authorization = `Bearer ${req.token}`;
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method ?? 'GET',
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: AbortSignal.timeout(req.timeoutMs ?? 30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw new PeerError(`cannot reach ${url}: ${cause?.message ?? (err as Error).message}`, url, undefined, { cause: err });
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON: keep the text
    }
    throw new PeerError(`${req.method ?? 'GET'} ${url} answered ${res.status}: ${message}`, url, res.status);
  }
  return res;
}

/** A JSON request to another patchwire server. */
export async function peerJson<T>(url: string, req: PeerRequest = {}): Promise<T> {
  const res = await send(url, req);
  try {
    return (await res.json()) as T;
  } catch (err) {
    throw new PeerError(`${url} answered with a body that is not JSON`, url, res.status, { cause: err });
  }
}

/** The exact bytes of a metadata file. */
export async function peerText(url: string, req: PeerRequest = {}): Promise<string> {
  return (await send(url, req)).text();
}

/** A download as a stream (artifacts are hashed while staged, so nothing unverified is kept). */
export async function peerStream(url: string, req: PeerRequest = {}): Promise<Readable> {
  const res = await send(url, { timeoutMs: 600_000, ...req });
  if (!res.body) throw new PeerError(`${url} answered without a body`, url, res.status);
  return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
}
