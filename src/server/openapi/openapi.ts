import type { FastifyInstance, FastifySchema } from 'fastify';
import swagger from '@fastify/swagger';
import { ADMIN_PREFIX, API_PREFIX, MIRROR_PREFIX, ROUTES } from '../../protocol/urls.js';
import { DOC_SCHEMAS, OPERATIONS, operationKey } from './operations.js';

/** Where the document is served. */
export const OPENAPI_PATH = `${API_PREFIX}/openapi.json`;

const DEVICE_TOKEN_ROUTES = new Set([ROUTES.check, ROUTES.report, ROUTES.events].map((r) => `${API_PREFIX}${r}`));

/**
 * A route's path as the document writes it: `:name` as `{name}`, and the one wildcard (the rest
 * of a target's path, slashes included) as `{path}`.
 */
export function documentedPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{path}');
}

/** The section of the document a route is listed under, and the token it needs. */
function surface(url: string): { tag: string; security?: Array<Record<string, string[]>> } {
  if (url.startsWith(`${ADMIN_PREFIX}/`)) return { tag: 'admin', security: [{ adminToken: [] }] };
  if (url.startsWith(`${MIRROR_PREFIX}/`)) return { tag: 'mirror', security: [{ mirrorToken: [] }] };
  if (DEVICE_TOKEN_ROUTES.has(url)) return { tag: 'device', security: [{ deviceToken: [] }] };
  // Open unless the server was started with --metrics-token ({}: no token also allowed).
  if (url === '/metrics') return { tag: 'operations', security: [{ metricsToken: [] }, {}] };
  if (url.startsWith(`${API_PREFIX}/products/`) && /\/(tuf|targets)\//.test(url)) return { tag: 'repository' };
  if (url.startsWith(`${API_PREFIX}/`) && url !== OPENAPI_PATH) return { tag: 'device' };
  return { tag: 'operations' };
}

/**
 * Registers the OpenAPI 3 document generator (@fastify/swagger) on the root instance: it records
 * every route registered after it, with the route's own schemas (body, querystring, response),
 * the summary of OPERATIONS, its surface's tag and token. Call before the API plugins; then
 * `serveOpenApi` once they are registered.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'patchwire API',
        version: 'v1',
        description: 'Signed (TUF) patch delivery: the device, repository, admin and mirror surfaces of a patchwire server. docs/protocol.md describes every field and rule.',
      },
      tags: [
        { name: 'device', description: 'What devices (the agent) call' },
        { name: 'repository', description: 'Each product\'s TUF repository: metadata by version, targets by content hash' },
        { name: 'admin', description: 'The operator\'s surface (admin token)' },
        { name: 'mirror', description: 'Between a primary and its mirrors (mirror token)' },
        { name: 'operations', description: 'Health, metrics and this document' },
      ],
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token (printed on first start, or PATCHWIRE_TOKEN)' },
          mirrorToken: { type: 'http', scheme: 'bearer', description: 'The mirror token (PATCHWIRE_MIRROR_TOKEN of the primary, --upstream-token of the mirror)' },
          deviceToken: { type: 'http', scheme: 'bearer', description: 'A device token from POST /v1/auth' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'serve --metrics-token (or PATCHWIRE_METRICS_TOKEN), when set' },
        },
      },
    },
    // HEAD of a GET route is fastify's own, answered like the GET: listed only where the route
    // itself says so (config.swagger.exposeHeadRoute).
    exposeHeadRoutes: false,
    transform: ({ schema, url, route }) => {
      const key = operationKey(String(route.method), url);
      const { tag, security } = surface(url);
      // A copy: the route's own schema object is what fastify validates with.
      const documented: FastifySchema = { ...DOC_SCHEMAS[key], ...schema, tags: [tag] };
      const summary = OPERATIONS[key];
      if (summary) documented.summary = summary;
      if (security) documented.security = security;
      return { schema: documented, url: documentedPath(url) };
    },
  });
}

/** GET /v1/openapi.json: the document, made once all routes are known (fastify is ready then). */
export function serveOpenApi(app: FastifyInstance): void {
  app.get(OPENAPI_PATH, async (_req, reply) => reply.header('cache-control', 'no-cache').send(app.swagger()));
}
