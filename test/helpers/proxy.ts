import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A man in the middle on 127.0.0.1 between an agent and a real server: a hijacked server, a
 * tampering or breaking network. Every request is forwarded to `upstream` (request headers such
 * as `Range` included) and recorded in `seen`; the current `attack` decides what the client gets:
 * - undefined: the upstream answer as is (status, headers, body);
 * - `{ status?, body? }`: a replaced status and/or body;
 * - `{ cutAfter: n }`: the upstream headers (with the full content-length), the first n bytes of
 *   the body, then the connection breaks (a download cut mid-way);
 * - `{ endless: true }`: the upstream body followed by junk that never ends (chunked encoding)
 *   until the client hangs up; `endless.sent` tells how much junk was pushed;
 * - `{ throttle: bytesPerSecond }`: the upstream answer as is, sent slowly (a long download).
 */
export interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The request body as the client sent it (empty for a GET). */
  body: Buffer;
  /** The status the upstream answered. */
  upstreamStatus?: number;
}

export interface Upstream {
  status: number;
  headers: Headers;
  body: Buffer;
}

export type Action = undefined | { status?: number; body?: Buffer } | { cutAfter: number } | { endless: true } | { throttle: number };
export type Attack = (req: Seen, up: Upstream) => Action | Promise<Action>;

export interface Proxy {
  url: string;
  seen: Seen[];
  attack: Attack | undefined;
  /** Bytes of junk sent by the last `endless` answer, and whether its client hung up. */
  endless: { sent: number; clientClosed: boolean };
  close(): Promise<void>;
}

/** Junk beyond this is not sent even if the client keeps reading (keeps a broken agent from hanging the test). */
const ENDLESS_CAP = 256 * 1024 * 1024;
const HOP_BY_HOP = ['connection', 'keep-alive'];

export async function startProxy(upstream: string, attack?: Attack): Promise<Proxy> {
  const proxy: Proxy = {
    url: '',
    seen: [],
    attack,
    endless: { sent: 0, clientClosed: false },
    close: async () => {},
  };
  const server: Server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const seen: Seen = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      proxy.seen.push(seen);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string' && !['host', 'content-length', 'transfer-encoding', ...HOP_BY_HOP].includes(k)) headers[k] = v;
      }
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const up = await fetch(upstream + seen.path, { method: seen.method, headers, body });
      const upBody = Buffer.from(await up.arrayBuffer());
      seen.upstreamStatus = up.status;
      const action = proxy.attack ? await proxy.attack(seen, { status: up.status, headers: up.headers, body: upBody }) : undefined;
      const outHeaders: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (!['content-length', 'content-encoding', 'transfer-encoding', ...HOP_BY_HOP].includes(k)) outHeaders[k] = v;
      });
      if (action && 'cutAfter' in action) {
        res.writeHead(up.status, { ...outHeaders, 'content-length': String(upBody.length) });
        // Break the connection once the bytes are handed to the kernel: they still reach the
        // client, followed by the end of the connection before the promised length.
        res.write(upBody.subarray(0, action.cutAfter), () => res.destroy());
        return;
      }
      if (action && 'endless' in action) {
        proxy.endless = { sent: 0, clientClosed: false };
        const state = proxy.endless;
        res.on('close', () => (state.clientClosed = true));
        res.writeHead(up.status, outHeaders);
        res.write(upBody);
        const junk = Buffer.alloc(64 * 1024, 0x41);
        while (!res.destroyed && !state.clientClosed && state.sent < ENDLESS_CAP) {
          const ok = res.write(junk);
          state.sent += junk.length;
          if (!ok) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r); });
        }
        if (!res.destroyed) res.end();
        return;
      }
      if (action && 'throttle' in action) {
        res.writeHead(up.status, { ...outHeaders, 'content-length': String(upBody.length) });
        // 20 slices a second; stops when the client hangs up.
        const slice = Math.max(1, Math.floor(action.throttle / 20));
        for (let at = 0; at < upBody.length && !res.destroyed; at += slice) {
          res.write(upBody.subarray(at, at + slice));
          await new Promise((r) => setTimeout(r, 50));
        }
        if (!res.destroyed) res.end();
        return;
      }
      const status = action?.status ?? up.status;
      const out = action?.body ?? upBody;
      res.writeHead(status, { ...outHeaders, 'content-length': String(out.length) });
      res.end(seen.method === 'HEAD' ? undefined : out);
    } catch (err) {
      if (!res.headersSent) res.writeHead(502).end(`${String(err)}${err instanceof Error && err.cause ? `: ${String(err.cause)}` : ''}`);
      else res.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return proxy;
}
