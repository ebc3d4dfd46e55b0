import type { FastifyInstance } from 'fastify';
import { API_PREFIX, ROUTES } from '../../protocol/urls.js';
import { bearerAuth } from '../admin-auth.js';
import type { AuthFailures } from '../auth-failures.js';
import type { ServerMetrics } from './server-metrics.js';

/** Where Prometheus looks by default: outside /v1, as the convention has it. */
export const METRICS_PATH = '/metrics';

const CHECK_ROUTE = `${API_PREFIX}${ROUTES.check}`;
// An event stream lasts as long as the device stays connected: its "duration" is no latency.
const NOT_TIMED = new Set([`${API_PREFIX}${ROUTES.events}`]);

export interface MetricsApiOptions {
  metrics: ServerMetrics;
  /** sha256 of `--metrics-token`; null: /metrics is open (docs/security.md). */
  tokenHash: Buffer | null;
  authFailures: AuthFailures;
}

/**
 * Times every request by the route pattern it matched and serves GET /metrics. Call on the root
 * instance before the API plugins are registered, so the hook covers every route.
 */
export function installMetrics(app: FastifyInstance, o: MetricsApiOptions): void {
  app.addHook('onResponse', async (req, reply) => {
    // The pattern, never the URL: a label per product or file would grow without bound.
    const route = req.routeOptions.url ?? 'unmatched';
    if (NOT_TIMED.has(route)) return;
    o.metrics.requestDone(req.method, route, reply.statusCode, reply.elapsedTime / 1000, route === CHECK_ROUTE);
  });
  const auth = o.tokenHash
    ? bearerAuth(o.tokenHash, {
      code: 'PW_METRICS_TOKEN',
      missing: 'missing metrics token: send `Authorization: Bearer <token>` with the token the server was started with (serve --metrics-token or PATCHWIRE_METRICS_TOKEN)',
      wrong: 'wrong metrics token: use the token the server was started with (serve --metrics-token or PATCHWIRE_METRICS_TOKEN)',
      kind: 'metrics',
    }, o.authFailures)
    : undefined;
  app.get(METRICS_PATH, { ...(auth ? { onRequest: auth } : {}), exposeHeadRoute: false }, async (_req, reply) => {
    const { contentType, body } = await o.metrics.text();
    return reply.header('cache-control', 'no-store').type(contentType).send(body);
  });
}
