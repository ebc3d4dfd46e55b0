import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A man in the middle on 127.0.0.1: forwards every request to `upstream` and lets a test rewrite
 * the answer (a hijacked server, a tampering network). `rewrite` gets the path and the upstream
 * body and returns the body to send, or undefined to pass it through.
 */
export interface Proxy {
  url: string;
  close(): Promise<void>;
}

export type Rewrite = (path: string, body: Buffer, status: number) => Buffer | undefined | Promise<Buffer | undefined>;

export async function startProxy(upstream: string, rewrite: Rewrite): Promise<Proxy> {
  const server: Server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const up = await fetch(upstream + req.url, { method: req.method, headers, body });
      const upBody = Buffer.from(await up.arrayBuffer());
      const out = (await rewrite(req.url ?? '/', upBody, up.status)) ?? upBody;
      const outHeaders: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive'].includes(k)) outHeaders[k] = v;
      });
      res.writeHead(up.status, { ...outHeaders, 'content-length': String(out.length) });
      res.end(req.method === 'HEAD' ? undefined : out);
    } catch (err) {
      res.writeHead(502).end(String(err));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
