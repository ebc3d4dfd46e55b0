import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError } from '../api-error.js';

/**
 * The Content-Security-Policy of every dashboard file: scripts, styles and requests only from
 * this server, no inline script, no framing (docs/security.md, "The dashboard").
 */
export const DASHBOARD_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

/** dist/web of this package, where `npm run build` bundles the dashboard (scripts/prepare.mjs). */
export function dashboardDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'dist', 'web');
}

/**
 * Serves the dashboard: `/` is its one page (views are `#/...` routes of the page), `/assets/*`
 * its bundled script and styles, read into memory once (a few hundred KB). Nothing here needs a
 * session: the page signs in through /v1/dashboard/session and reads the admin API.
 */
export async function dashboardPages(app: FastifyInstance, opts: { dir?: string }): Promise<void> {
  const dir = opts.dir ?? dashboardDir();
  const files = new Map<string, { type: string; body: Buffer }>();
  if (existsSync(join(dir, 'index.html'))) {
    files.set('/', { type: TYPES['.html']!, body: readFileSync(join(dir, 'index.html')) });
    for (const f of readdirSync(join(dir, 'assets'))) {
      const ext = f.slice(f.lastIndexOf('.'));
      if (TYPES[ext]) files.set(`/assets/${f}`, { type: TYPES[ext], body: readFileSync(join(dir, 'assets', f)) });
    }
  }
  const send = (reply: FastifyReply, path: string) => {
    const file = files.get(path);
    if (!file) {
      if (files.size === 0) throw new ApiError('PW_NOT_FOUND', 'the dashboard is not built in this installation: run `npm run build`, then restart the server');
      throw new ApiError('PW_NOT_FOUND', `no dashboard file ${path}`);
    }
    return reply
      .header('content-type', file.type)
      .header('content-security-policy', DASHBOARD_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cache-control', 'no-cache')
      .send(file.body);
  };
  app.get('/', async (_req, reply) => send(reply, '/'));
  app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => send(reply, `/assets/${req.params.file}`));
}
