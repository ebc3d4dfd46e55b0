import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError } from '../api-error.js';
import type { Services } from '../services/index.js';
import { parseMetadataFileName, parseTargetFilePath, ROUTES } from '../../protocol/urls.js';
import { parseRange } from './range.js';

/**
 * Each product's TUF repository as devices and mirrors read it: metadata by version (consistent
 * snapshots) and targets by content hash. Everything but timestamp.json is immutable, so a CDN or
 * mirror may cache it forever.
 */
export async function repositoryApi(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { products, releases, tuf, store, artifacts } = opts.services;

  app.get<{ Params: { product: string; file: string } }>(ROUTES.metadata, async (req, reply) => {
    const { product, file } = req.params;
    products.require(product);
    const m = parseMetadataFileName(file);
    if (!m) throw new ApiError('PW_NOT_FOUND', `no metadata file '${file}'; ask for N.root.json, timestamp.json, N.snapshot.json or N.targets.json`);
    const { role, version } = m;
    if (role === 'timestamp') await tuf.refresh(product);
    const rec = await store.getMetadata(product, role, version);
    if (!rec) throw new ApiError('PW_NOT_FOUND', `${product} has no ${file}`);
    void reply.header('cache-control', version === undefined ? 'no-cache' : 'public, max-age=31536000, immutable');
    return reply.type('application/json').send(rec.json);
  });

  const target = async (req: { params: { product: string; '*': string }; headers: Record<string, string | string[] | undefined>; method: string }, reply: FastifyReply) => {
    const { product } = req.params;
    products.require(product);
    const sha256 = parseTargetFilePath(req.params['*']);
    if (!sha256 || !releases.serves(product, sha256)) throw new ApiError('PW_NOT_FOUND', `${product} has no target '${req.params['*']}'; targets are named <dir>/<sha256>.<name>`);
    const info = await artifacts.stat(sha256);
    if (!info) throw new ApiError('PW_NOT_FOUND', `the bytes of target ${sha256} are missing on this server`);
    const etag = `"${sha256}"`;
    void reply
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type('application/octet-stream');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    const range = parseRange(req.headers.range, info.length, req.headers['if-range'], etag);
    if (range === 'unsatisfiable') {
      void reply.header('content-range', `bytes */${info.length}`);
      throw new ApiError('PW_RANGE_NOT_SATISFIABLE', `range ${String(req.headers.range)} is outside the ${info.length} bytes of this target`);
    }
    if (range) {
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${info.length}`).header('content-length', range.end - range.start + 1);
      if (req.method === 'HEAD') return reply.send();
      return reply.send(await artifacts.read(sha256, range));
    }
    void reply.header('content-length', info.length);
    if (req.method === 'HEAD') return reply.send();
    return reply.send(await artifacts.read(sha256));
  };
  // HEAD first: fastify's automatic HEAD route would answer Content-Length 0.
  app.head(ROUTES.target, target as never);
  app.get(ROUTES.target, target as never);
}
