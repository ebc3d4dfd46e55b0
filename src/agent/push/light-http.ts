import type { IncomingMessage } from 'node:http';
import { errorText } from '../../util/error-text.js';
import { NetworkError } from '../errors.js';
import { parseJsonAnswer } from '../http-json.js';

/**
 * HTTP for the waiting agent, on node:http(s) rather than fetch: the agent holds its event
 * stream for hours, and fetch's client would stay resident (~15 MB, bench/README.md "idle
 * memory"). Only what push needs: open a GET and hand back the response, POST a small JSON body.
 */

/** Most bytes of a JSON answer (the auth's token) or an error body read here. */
const MAX_BODY_BYTES = 64 * 1024;
/** An answer's headers must come within this. */
const HEADERS_TIMEOUT_MS = 30_000;

export interface LightRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** Sends the request and resolves with the response once its headers arrived; NetworkError when none does. */
export async function openRequest(url: string, r: LightRequest): Promise<IncomingMessage> {
  // node:https (and TLS with it) only for an https server: ~1.4 MB of the waiting agent's RSS otherwise.
  const { request } = url.startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const fail = (err: unknown) => reject(r.signal.aborted ? r.signal.reason : new NetworkError(`cannot reach the server at ${url} (${errorText(err, { cause: true })})`, url, { cause: err }));
    let req;
    try {
      req = request(url, { method: r.method, headers: r.headers, signal: r.signal });
    } catch (err) {
      return fail(err);
    }
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${HEADERS_TIMEOUT_MS / 1000} s`)), HEADERS_TIMEOUT_MS);
    req.once('response', (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    req.end(r.body);
  });
}

/** The body of a response as text, at most MAX_BODY_BYTES (more is cut off: error bodies are only shown). */
export async function readSmall(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) {
      res.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY_BYTES);
}

/** The `ok`/`status` view of a response that parseJsonAnswer reads. */
export function statusOf(res: IncomingMessage): { ok: boolean; status: number; statusText: string } {
  const status = res.statusCode ?? 0;
  return { ok: status >= 200 && status < 300, status, statusText: res.statusMessage ?? '' };
}

/** POSTs JSON and answers the parsed JSON (ServerError for an error status, as postJson); NetworkError past 30 s. */
export async function postJsonLight(url: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
  const controller = new AbortController();
  const stop = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', stop, { once: true });
  const timer = setTimeout(() => controller.abort(new NetworkError(`cannot reach the server at ${url} (no answer within ${HEADERS_TIMEOUT_MS / 1000} s)`, url)), HEADERS_TIMEOUT_MS);
  try {
    const res = await openRequest(url, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body), signal: controller.signal,
    });
    return parseJsonAnswer(statusOf(res), url, await readSmall(res));
  } catch (err) {
    if (controller.signal.aborted && !signal?.aborted) throw controller.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
}
