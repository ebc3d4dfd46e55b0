import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { installErrorHandler } from './error-handler.js';
import { deviceApi } from './routes/device-api.js';
import { menderApi } from './compat/mender/mender-api.js';
import { repositoryApi } from './routes/repository-api.js';
import { adminApi } from './routes/admin-api.js';
import { mirrorApi } from './routes/mirror-api.js';
import type { Services } from './services/index.js';
import type { RolloutView } from './metrics/rollout-metrics.js';
import type { TargetRedirect } from './routes/target-redirect.js';
import { AuthFailures } from './auth-failures.js';
import { SLOW_CLIENT_DEFAULTS, serverTimeouts, watchBodyRate, type SlowClientLimits } from './slow-clients.js';
import { ADMIN_PREFIX, API_PREFIX, MIRROR_PREFIX } from '../protocol/urls.js';
import { ServerMetrics, type ServerMetricsOptions } from './metrics/server-metrics.js';
import { installMetrics } from './metrics/metrics-api.js';
import { registerOpenApi, serveOpenApi } from './openapi/openapi.js';
import type { DashboardSessions } from './dashboard/dashboard-sessions.js';
import { sessionApi } from './dashboard/session-api.js';
import { dashboardPages } from './dashboard/dashboard-pages.js';
import { ddiApi } from './compat/hawkbit/ddi-api.js';

export interface AppOptions {
  services: Services;
  /** `--store-redirect`: downloads answer 302 to this URL instead of streaming (routes/target-redirect.ts). */
  targetRedirect?: TargetRedirect;
  /** sha256 of the admin token. */
  adminTokenHash: Buffer;
  /** sha256 of the mirror token; null: the mirror surface refuses every call. */
  mirrorTokenHash?: Buffer | null;
  role?: 'primary' | 'mirror';
  maxUploadBytes?: number;
  logger?: FastifyServerOptions['logger'];
  /** Timeouts and the connection limit (default: SLOW_CLIENT_DEFAULTS). */
  slowClients?: SlowClientLimits;
  /** Wrong admin, mirror and metrics tokens per address (default: AUTH_FAILURE_DEFAULTS). */
  authFailures?: AuthFailures;
  /** GET /metrics: sha256 of `--metrics-token` (absent or null: open), and what the metrics read. */
  metrics?: {
    tokenHash?: Buffer | null;
    processMetrics?: boolean;
    fleetCacheMs?: number;
    /** The staged rollouts to show (ServerMetricsOptions.rollouts): the lead wires the rollout service here. */
    rollouts?: ServerMetricsOptions['rollouts'];
  };
  /**
   * The web dashboard (`/`, /v1/dashboard/session) and session cookies on the admin API; absent:
   * neither (the admin API takes the Bearer token only). `https`: the public URL is https (Secure cookie).
   */
  dashboard?: { sessions: DashboardSessions; https: boolean; dir?: string };
}

export interface RouteInfo {
  method: string;
  url: string;
}

/**
 * Builds the server (no listen): tests call `app.inject()`, `serve` listens. Each API surface is a
 * plugin under `/v1`. `app.routeTable` lists every route, so a test can sweep the admin surface.
 */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance & { routeTable: RouteInfo[]; metrics: ServerMetrics }> {
  const slow = opts.slowClients ?? SLOW_CLIENT_DEFAULTS;
  const app = Fastify({
    logger: opts.logger ?? false,
    ...serverTimeouts(slow),
    bodyLimit: 1024 * 1024,
    // Bad input is refused, never coerced or stripped into something else.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    // One log line per request would dominate the log at fleet scale; errors and warnings are logged.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.server.maxConnections = slow.maxConnections;
  watchBodyRate(app, slow);
  const routeTable: RouteInfo[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routeTable.push({ method, url: r.url });
  });
  installErrorHandler(app);
  // Open event streams never end by themselves: end them first, or app.close would wait forever.
  app.addHook('preClose', async () => opts.services.push.close());
  const authFailures = opts.authFailures ?? new AuthFailures();
  const { services } = opts;
  const metrics = new ServerMetrics({
    fleet: services.fleet,
    clock: services.clock,
    processMetrics: opts.metrics?.processMetrics,
    fleetCacheMs: opts.metrics?.fleetCacheMs,
    rollouts: opts.metrics?.rollouts ?? rolloutViews(services),
  });
  // Both before the routes: the document generator and the timing hook see every route after them.
  await registerOpenApi(app);
  installMetrics(app, { metrics, tokenHash: opts.metrics?.tokenHash ?? null, authFailures });
  // JSON only: a JSON object sent as text/plain should hear "send application/json" (415), not a schema error.
  app.removeContentTypeParser('text/plain');
  app.get('/healthz', async () => ({ ok: true }));
  await app.register(deviceApi, { prefix: API_PREFIX, services: opts.services, metrics });
  // The Mender client's device API (docs/compat.md): its own URL space, as the client builds it.
  await app.register(menderApi, { prefix: '/api/devices', mender: opts.services.mender });
  await app.register(repositoryApi, { prefix: API_PREFIX, services: opts.services, redirect: opts.targetRedirect, metrics });
  // Issue 12: the hawkBit DDI for SWUpdate, at hawkBit's own paths (/{tenant}/controller/v1/{controllerId}).
  if (services.hawkbit) await app.register(ddiApi, { hawkbit: services.hawkbit, publicUrl: services.publicUrl });
  await app.register(mirrorApi, { prefix: MIRROR_PREFIX, services: opts.services, tokenHash: opts.mirrorTokenHash ?? null, role: opts.role ?? 'primary', authFailures });
  if (opts.dashboard) {
    await app.register(sessionApi, { prefix: `${API_PREFIX}/dashboard`, sessions: opts.dashboard.sessions, tokenHash: opts.adminTokenHash, authFailures, https: opts.dashboard.https });
    await app.register(dashboardPages, { dir: opts.dashboard.dir });
  }
  await app.register(adminApi, {
    prefix: ADMIN_PREFIX,
    services: opts.services,
    tokenHash: opts.adminTokenHash,
    sessions: opts.dashboard?.sessions,
    authFailures,
    readOnly: opts.role === 'mirror',
    maxUploadBytes: opts.maxUploadBytes ?? 1024 * 1024 * 1024,
  });
  serveOpenApi(app);
  app.decorate('routeTable', routeTable);
  app.decorate('metrics', metrics);
  return app as unknown as FastifyInstance & { routeTable: RouteInfo[]; metrics: ServerMetrics };
}

/**
 * Every product's current staged rollouts as the admin API shows them (GET /metrics). Counting
 * `offered` pages through the registry, so the views are reused for 30 s: scrapes every 15 s of a
 * large fleet do not each read it.
 */
function rolloutViews(services: Services): () => Promise<RolloutView[]> {
  let cached: { at: number; views: Promise<RolloutView[]> } | undefined;
  return () => {
    const now = services.clock().getTime();
    if (!cached || now - cached.at >= 30_000 || now < cached.at) {
      const views = Promise.all(services.products.list().flatMap((p) => services.rollouts.current(p).map((r) => services.rollouts.view(r))));
      cached = { at: now, views };
      views.catch(() => { cached = undefined; });
    }
    return cached.views;
  };
}
