import type { IncomingMessage } from 'node:http';
import { MAX_JSON_BYTES } from './http-json.js';

/**
 * A fetch for the agent's small JSON POSTs (`/v1/auth`, `/v1/check`, `/v1/report`) over
 * node:http(s). fetch's client (undici: its WebAssembly HTTP parser, Response, Headers) is loaded
 * on first use and was most of what a `patchwire check` process spent after Node's own start
 * (bench/README.md, issue 13); an up-to-date check sends nothing else. Every other request (the
 * GETs of downloads and deltas) goes to `fallback()` (the global fetch, looked up only then), and
 * so does a POST answered with a redirect: it is sent again through fetch, which follows it as it
 * always did. What fetch would do is kept: a failed connection rejects with TypeError "fetch
 * failed" (the cause says why), an abort with the signal's reason, a broken body on reading it.
 * The answer is read whole, at most MAX_JSON_BYTES + 1 bytes (readLimited refuses more).
 */
export function lightFetch(fallback: () => typeof fetch = () => globalThis.fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : undefined;
    const light = url !== undefined && (url.startsWith('http:') || url.startsWith('https:'))
      && init?.method === 'POST' && typeof init.body === 'string' && isPlainHeaders(init.headers);
    if (!light) return fallback()(input, init);
    const res = await post(url, init.body as string, (init.headers ?? {}) as Record<string, string>, init.signal ?? undefined);
    if (res.status >= 300 && res.status < 400 && res.headers.get('location') !== null) return fallback()(input, init);
    return res as unknown as Response;
  }) as typeof fetch;
}

function isPlainHeaders(h: unknown): boolean {
  return h === undefined || (typeof h === 'object' && h !== null && Object.getPrototypeOf(h) === Object.prototype);
}

async function post(url: string, body: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<LightResponse> {
  signal?.throwIfAborted();
  const { request } = url.startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: err }));
    };
    let req;
    try {
      req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, signal });
    } catch (err) {
      return fail(err);
    }
    req.once('error', fail);
    req.once('response', (res: IncomingMessage) => {
      if (settled) return void res.destroy();
      settled = true;
      const chunks: Buffer[] = [];
      let total = 0;
      let broken: unknown;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve(new LightResponse(res, Buffer.concat(chunks), broken, signal));
      };
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        total += chunk.length;
        // Enough to tell readLimited it is too much; the rest is never read (finished first: the
        // destroy says "aborted", which is not what happened to this answer).
        if (total > MAX_JSON_BYTES) {
          finish();
          res.removeAllListeners('data');
          res.destroy();
        }
      });
      res.once('end', finish);
      res.once('error', (err) => {
        broken = err;
        finish();
      });
      res.once('aborted', () => {
        broken ??= new Error('the connection closed before the answer was complete');
        finish();
      });
    });
    req.end(body);
  });
}

/**
 * The part of fetch's Response that the agent reads from a JSON answer (http-json.ts,
 * auth-fetch.ts): status, headers.get, body as an async iterable, text, json, arrayBuffer, clone.
 * A body cut off by the peer throws on reading, as fetch's does ("terminated", the cause says why).
 */
class LightResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null; has(name: string): boolean };
  readonly redirected = false;
  readonly type = 'basic';
  readonly url: string;
  #bytes: Buffer;
  #broken: unknown;
  #signal: AbortSignal | undefined;
  #used = false;

  constructor(res: IncomingMessage | LightResponse, bytes: Buffer, broken: unknown, signal: AbortSignal | undefined) {
    if (res instanceof LightResponse) {
      this.status = res.status;
      this.statusText = res.statusText;
      this.headers = res.headers;
      this.url = res.url;
    } else {
      this.status = res.statusCode ?? 0;
      this.statusText = res.statusMessage ?? '';
      const h = res.headers;
      const get = (name: string): string | null => {
        const v = h[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      };
      this.headers = { get, has: (name) => get(name) !== null };
      this.url = '';
    }
    this.ok = this.status >= 200 && this.status < 300;
    this.#bytes = bytes;
    this.#broken = broken;
    this.#signal = signal;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  get body(): AsyncIterable<Uint8Array> {
    const take = () => this.#take();
    return {
      async *[Symbol.asyncIterator]() {
        const bytes = take();
        if (bytes.length > 0) yield bytes;
      },
    };
  }

  #take(): Buffer {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    if (this.#signal?.aborted) throw this.#signal.reason;
    if (this.#broken !== undefined) throw new TypeError('terminated', { cause: this.#broken });
    return this.#bytes;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return this.#take().toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  clone(): LightResponse {
    if (this.#used) throw new TypeError('Response.clone: Body has already been consumed.');
    return new LightResponse(this, this.#bytes, this.#broken, this.#signal);
  }
}
