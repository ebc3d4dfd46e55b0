import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Owner } from './cleanup.js';

export interface SeenRequest {
  method: string;
  url: string;
  authorization?: string;
}

/** What the peer answers one request with (it may write the response itself and return true). */
export type PeerHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

/**
 * A hand-written HTTP server on 127.0.0.1 that plays a peer (a hostile "mirror", a webhook, a
 * redirect target): it records every request it receives and answers with whatever `handler` the
 * test sets. Closed with its owner.
 */
export class HostilePeer {
  readonly seen: SeenRequest[] = [];
  handler: PeerHandler = (_req, res) => void res.writeHead(404).end();
  url = '';
  private server!: Server;

  static async start(owner: Owner): Promise<HostilePeer> {
    const p = new HostilePeer();
    p.server = createServer((req, res) => {
      p.seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
      let body = '';
      req.on('data', (d: Buffer) => { if (body.length < 1024 ** 2) body += d.toString(); });
      req.on('end', () => {
        Promise.resolve(p.handler(req, res, body)).catch((err: Error) => {
          if (!res.headersSent) res.writeHead(500);
          res.end(String(err.message));
        });
      });
    });
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', () => r()));
    p.url = `http://127.0.0.1:${(p.server.address() as { port: number }).port}`;
    owner.after(() => new Promise<void>((r) => {
      p.server.closeAllConnections();
      p.server.close(() => r());
    }));
    return p;
  }

  /** Requests seen since index `from` whose path starts with `prefix`. */
  since(from: number, prefix = ''): SeenRequest[] {
    return this.seen.slice(from).filter((r) => r.url.startsWith(prefix));
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * Streams a JSON-looking body of up to `maxBytes` (in 1 MiB chunks, respecting backpressure)
 * until the reader hangs up; resolves with the bytes written.
 */
export async function streamHuge(res: ServerResponse, maxBytes: number): Promise<number> {
  res.writeHead(200, { 'content-type': 'application/json' });
  const record = '{"deviceId":"aa:bb:cc:dd:ee:ff","product":"acme","channel":"stable","version":"1.0.0"},';
  const chunk = Buffer.from(record.repeat(Math.floor(1024 ** 2 / record.length)));
  let written = 0;
  let closed = false;
  res.on('close', () => { closed = true; });
  res.write('{"records":[');
  while (!closed && written < maxBytes) {
    written += chunk.length;
    if (!res.write(chunk)) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r); });
  }
  res.end('{}],"next":null}');
  return written;
}
