import { errorText } from '../util/error-text.js';
import { BadResponseError, NetworkError, ServerError } from './errors.js';

/** Largest JSON answer the agent reads (endless-data protection for the API). */
export const MAX_JSON_BYTES = 1024 * 1024;
/** A check or report that takes longer than this is abandoned; the next attempt retries. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * POSTs a JSON body and returns the parsed JSON answer. Throws NetworkError when no answer
 * arrives, ServerError for an HTTP error status (with the server's code and message), and
 * BadResponseError for an answer that is not JSON or is too large. An abort rethrows as is.
 */
export async function postJson(fetchFn: typeof fetch, url: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
  const res = await postJsonRaw(fetchFn, url, body, signal);
  return parseJsonAnswer(res, url, await readLimited(res, url, signal));
}

/** POSTs JSON and returns the response, unread; throws NetworkError as postJson does. */
export async function postJsonRaw(fetchFn: typeof fetch, url: string, body: unknown, signal?: AbortSignal, headers: Record<string, string> = {}): Promise<Response> {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (err) {
    // An abort, or the device session's own refusal (auth-fetch.ts), is not a network failure.
    if (signal?.aborted || err instanceof ServerError) throw err;
    const why = timeout.aborted ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : errorText(err, { cause: true });
    throw new NetworkError(`cannot reach the server at ${url} (${why}): check the address and the network; the agent retries later`, url, { cause: err });
  }
  return res;
}

/** The parsed JSON of an answer read as `text`; ServerError for an error status. */
export function parseJsonAnswer(res: Pick<Response, 'ok' | 'status' | 'statusText'>, url: string, text: string): unknown {
  if (!res.ok) {
    let code: string | undefined;
    let message = text.slice(0, 300);
    try {
      const e = JSON.parse(text) as { code?: unknown; message?: unknown };
      if (typeof e.code === 'string') code = e.code;
      if (typeof e.message === 'string') message = e.message;
    } catch {
      // Not our JSON error body (a proxy's page, say): show its start.
    }
    throw new ServerError(`the server at ${url} answered ${res.status}${code ? ` ${code}` : ''}: ${message || res.statusText}`, url, res.status, code);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BadResponseError(`the server at ${url} answered with something that is not JSON: check that --server points at a patchwire server`, url, { cause: err });
  }
}

export async function readLimited(res: Response, url: string, signal?: AbortSignal): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > MAX_JSON_BYTES) {
        throw new BadResponseError(`the server at ${url} sent more than ${MAX_JSON_BYTES} bytes for a JSON answer: refusing it`, url);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof BadResponseError || signal?.aborted) throw err;
    throw new NetworkError(`the connection to ${url} broke while reading the answer (${errorText(err, { cause: true })}): the agent retries later`, url, { cause: err });
  }
  return Buffer.concat(chunks).toString('utf8');
}
