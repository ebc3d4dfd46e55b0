import type { FastifyInstance, FastifyServerOptions } from 'fastify';

/**
 * Limits against slow clients and socket floods (docs/security.md, "Server under abuse"). A
 * socket costs a file descriptor and some memory, so a client must not hold one without sending:
 *
 * - headers: all of a request's headers within `headersTimeoutMs` (Node's headersTimeout);
 * - body: at least `minBodyRate` bytes/s, measured over each `bodyWindowMs`, until the body is
 *   complete. A rate, not a deadline: an operator's 1 GiB upload over a slow link takes as long as
 *   it takes, while a body trickled in byte by byte is cut within one window. Checked on the
 *   socket's byte count, so nothing listens on the body stream itself;
 * - idle keep-alive: a connection with no request in progress is closed after `idleTimeoutMs`;
 * - silence: a socket on which no byte moves either way for `socketTimeoutMs` (a client that
 *   stopped reading a download) is closed;
 * - at most `maxConnections` sockets at once; Node closes any further one at once.
 */
export interface SlowClientLimits {
  headersTimeoutMs: number;
  bodyWindowMs: number;
  minBodyRate: number;
  idleTimeoutMs: number;
  socketTimeoutMs: number;
  maxConnections: number;
}

export const SLOW_CLIENT_DEFAULTS: SlowClientLimits = {
  headersTimeoutMs: 20_000,
  bodyWindowMs: 30_000,
  minBodyRate: 1024,
  idleTimeoutMs: 5_000,
  socketTimeoutMs: 120_000,
  maxConnections: 4096,
};

/** Fastify's options for these limits (the body rate is a hook: see watchBodyRate). */
export function serverTimeouts(l: SlowClientLimits): Pick<FastifyServerOptions, 'connectionTimeout' | 'keepAliveTimeout' | 'requestTimeout'> & { http: object } {
  return {
    connectionTimeout: l.socketTimeoutMs,
    keepAliveTimeout: l.idleTimeoutMs,
    // No deadline for a whole request: an honest upload may be long. The body rate bounds it instead.
    requestTimeout: 0,
    // Node looks for sockets past their header deadline every connectionsCheckingInterval (30 s by
    // default): often enough that a short deadline holds.
    http: { headersTimeout: l.headersTimeoutMs, connectionsCheckingInterval: Math.min(5_000, Math.max(250, Math.floor(l.headersTimeoutMs / 4))) },
  };
}

/** Closes the socket of a request whose body arrives slower than `minBodyRate` over a window. */
export function watchBodyRate(app: FastifyInstance, l: SlowClientLimits): void {
  const perWindow = Math.ceil((l.minBodyRate * l.bodyWindowMs) / 1000);
  app.addHook('onRequest', async (req) => {
    const raw = req.raw;
    const h = raw.headers;
    const hasBody = (h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined;
    if (!hasBody || raw.complete) return;
    const socket = raw.socket;
    let seen = socket.bytesRead;
    const timer = setInterval(() => {
      if (raw.complete || socket.destroyed) return clearInterval(timer);
      const now = socket.bytesRead;
      if (now - seen < perWindow) {
        clearInterval(timer);
        req.log.debug({ url: req.url, bytes: now - seen }, 'closed a request whose body came slower than the minimum rate');
        socket.destroy();
        return;
      }
      seen = now;
    }, l.bodyWindowMs);
    timer.unref();
    const stop = () => {
      clearInterval(timer);
      socket.off('close', stop);
    };
    raw.once('end', stop);
    socket.once('close', stop);
  });
}
