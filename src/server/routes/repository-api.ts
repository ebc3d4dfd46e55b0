import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError } from '../api-error.js';
import type { Services } from '../services/index.js';
import { parseMetadataFileName, parseTargetFilePath, ROUTES } from '../../protocol/urls.js';
import { parseRange } from './range.js';
import { sendRedirect, type TargetRedirect } from './target-redirect.js';
import { sendArtifact } from './send-file.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';

/**
 * Each product's TUF repository as devices and mirrors read it: metadata by version (consistent
 * snapshots) and targets by content hash. Everything but timestamp.json is immutable, so a CDN or
 * mirror may cache it forever.
 */
export async function repositoryApi(app: FastifyInstance, opts: { services: Services; redirect?: TargetRedirect; metrics: ServerMetrics }): Promise<void> {
  const { products, releases, tuf } = opts.services;

  app.get<{ Params: { product: string; file: string } }>(ROUTES.metadata, async (req, reply) => {
    const { product, file } = req.params;
    products.require(product);
    const m = parseMetadataFileName(file);
    if (!m) throw new ApiError('PW_NOT_FOUND', `no metadata file '${file}'; ask for N.root.json, timestamp.json, N.snapshot.json, N.targets.json or N.deltas.json`);
    const { role, version } = m;
    const json = await tuf.served(product, role, version);
    if (json === undefined) throw new ApiError('PW_NOT_FOUND', `${product} has no ${file}`);
    void reply.header('cache-control', version === undefined ? 'no-cache' : 'public, max-age=31536000, immutable');
    return reply.type('application/json').send(json);
  });

  const target = async (req: { params: { product: string; '*': string }; headers: Record<string, string | string[] | undefined>; method: string }, reply: FastifyReply) => {
    const { product } = req.params;
    products.require(product);
    const sha256 = parseTargetFilePath(req.params['*']);
    const info = sha256 ? await releases.servedTarget(product, sha256) : null;
    if (!sha256 || !info) throw new ApiError('PW_NOT_FOUND', `${product} has no target '${req.params['*']}'; targets are named <dir>/<sha256>.<name>`);
    const etag = `"${sha256}"`;
    void reply
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type('application/octet-stream');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    // --store-redirect: the store serves the bytes (a presigned GET signs no HEAD, so HEAD stays here).
    if (opts.redirect && req.method === 'GET') return sendRedirect(reply, await opts.redirect(sha256));
    const range = parseRange(req.headers.range, info.length, req.headers['if-range'], etag);
    if (range === 'unsatisfiable') {
      void reply.header('content-range', `bytes */${info.length}`);
      throw new ApiError('PW_RANGE_NOT_SATISFIABLE', `range ${String(req.headers.range)} is outside the ${info.length} bytes of this target`);
    }
    // Bytes as written to the connection, so a download cut short counts what it got.
    const written = (bytes: number) => opts.metrics.served(info.kind, bytes);
    if (range) {
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${info.length}`).header('content-length', range.end - range.start + 1);
      if (req.method === 'HEAD') return reply.send();
      return sendArtifact(reply, await info.read(range), written);
    }
    void reply.header('content-length', info.length);
    if (req.method === 'HEAD') return reply.send();
    return sendArtifact(reply, await info.read(), written);
  };
  // HEAD first: fastify's automatic HEAD route would answer Content-Length 0. A HEAD of its own,
  // so the OpenAPI document lists it (it leaves fastify's automatic ones out).
  app.head(ROUTES.target, { config: { swagger: { exposeHeadRoute: true } } }, target as never);
  app.get(ROUTES.target, target as never);
}
