import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../api-error.js';
import { parseRange } from '../../routes/range.js';
import { sendArtifact } from '../../routes/send-file.js';
import { MAX_AUTH_BODY } from './auth.js';
import { MENDER_STATUSES, parseDeploymentId, type MenderService, type MenderStatus } from './mender-service.js';

/** Bodies the client sends (inventory and status are small; a failure log may hold many lines). */
const MAX_BODY = 64 * 1024;
const MAX_LOG_BODY = 1024 * 1024;
const MAX_LOG_MESSAGES = 10_000;

/**
 * The Mender client's device API (docs/compat.md, "Mender"), registered under `/api/devices`:
 * the routes the Debian `mender-client` 3.4 calls. Bodies are read as bytes (the auth signature is
 * over the exact bytes, and the client's local proxy sends them chunked, without Content-Length:
 * the limits below are counted as they arrive).
 */
export async function menderApi(app: FastifyInstance, opts: { mender: MenderService }): Promise<void> {
  const { mender } = opts;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY }, (_req, body, done) => done(null, body));

  app.post('/v1/authentication/auth_requests', { bodyLimit: MAX_AUTH_BODY }, async (req, reply) => {
    const token = mender.auth(bodyOf(req), req.headers['x-men-signature']);
    return reply.type('application/jwt').send(token);
  });

  const inventory = async (req: FastifyRequest, reply: FastifyReply) => {
    const attrs = json(req);
    if (!Array.isArray(attrs) || attrs.length > 1000) throw new ApiError('PW_BAD_REQUEST', 'inventory attributes are a JSON array of at most 1000 {"name","value"}');
    const type = attrs.find((a: { name?: unknown }) => a && a.name === 'device_type') as { value?: unknown } | undefined;
    const product = productOf(type?.value);
    const claims = await mender.device(req.headers.authorization, product, req.ip);
    mender.inventory(claims, product);
    return reply.code(200).send();
  };
  app.put('/v1/inventory/device/attributes', inventory);
  app.patch('/v1/inventory/device/attributes', inventory);

  const next = async (req: FastifyRequest, reply: FastifyReply, provides: { artifact_name?: unknown; device_type?: unknown }) => {
    const product = productOf(provides.device_type);
    if (typeof provides.artifact_name !== 'string' || provides.artifact_name.length > 256) throw new ApiError('PW_BAD_REQUEST', 'artifact_name (the artifact the device runs) is missing or longer than 256 characters');
    const claims = await mender.device(req.headers.authorization, product, req.ip);
    const deployment = await mender.next(claims, product, provides.artifact_name);
    if (!deployment) return reply.code(204).send();
    return reply.code(200).send(deployment);
  };
  app.post('/v2/deployments/device/deployments/next', async (req, reply) => {
    const b = json(req) as { device_provides?: Record<string, unknown> } | null;
    if (!b || typeof b.device_provides !== 'object' || b.device_provides === null) throw new ApiError('PW_BAD_REQUEST', 'send {"device_provides":{"artifact_name","device_type"}}');
    return next(req, reply, b.device_provides);
  });
  app.post('/v1/deployments/device/deployments/next', async (req, reply) => next(req, reply, (json(req) ?? {}) as Record<string, unknown>));
  app.get<{ Querystring: { artifact_name?: string; device_type?: string } }>('/v1/deployments/device/deployments/next', async (req, reply) => next(req, reply, req.query));

  app.put<{ Params: { id: string } }>('/v1/deployments/device/deployments/:id/status', async (req, reply) => {
    const d = deployment(req.params.id);
    const b = json(req) as { status?: unknown } | null;
    const status = b?.status;
    if (!(MENDER_STATUSES as readonly unknown[]).includes(status)) throw new ApiError('PW_BAD_REQUEST', `status ${JSON.stringify(status ?? null)} is not one of ${MENDER_STATUSES.join(', ')}`);
    const claims = await mender.device(req.headers.authorization, d.product, req.ip);
    await mender.status(claims, d.product, d.version, status as MenderStatus);
    return reply.code(204).send();
  });

  app.put<{ Params: { id: string } }>('/v1/deployments/device/deployments/:id/log', { bodyLimit: MAX_LOG_BODY }, async (req, reply) => {
    const d = deployment(req.params.id);
    const b = json(req) as { messages?: unknown } | null;
    if (!b || !Array.isArray(b.messages) || b.messages.length > MAX_LOG_MESSAGES) throw new ApiError('PW_BAD_REQUEST', `the log is {"messages":[{"level","message","timestamp"}]} with at most ${MAX_LOG_MESSAGES} messages`);
    // Checked before the waiting failure is taken (a null here was a 500 that lost it: found by an attacker).
    const bad = (b.messages as unknown[]).findIndex((m) => typeof m !== 'object' || m === null || Array.isArray(m));
    if (bad >= 0) throw new ApiError('PW_BAD_REQUEST', `the log's message ${bad} is ${JSON.stringify(b.messages[bad]).slice(0, 40)}: each message is an object {"level","message","timestamp"}`);
    const claims = await mender.device(req.headers.authorization, d.product, req.ip);
    await mender.log(claims, d.product, d.version, b.messages as Array<{ level?: unknown; message?: unknown }>);
    return reply.code(204).send();
  });

  // The artifact download (the client sends no Authorization: the URL names the bytes by hash).
  const download = async (req: FastifyRequest<{ Params: { product: string; version: string; file: string } }>, reply: FastifyReply) => {
    const { product, version, file } = req.params;
    const sha256 = /^([0-9a-f]{64})\.mender$/.exec(file)?.[1];
    const built = sha256 ? await mender.served(product, version, sha256) : undefined;
    if (!sha256 || !built) throw new ApiError('PW_NOT_FOUND', `${product} has no Mender artifact ${version}/${file}; ask deployments/next for the current one`);
    const etag = `"${sha256}"`;
    void reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'public, max-age=31536000, immutable').type('application/octet-stream');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    const range = parseRange(req.headers.range, built.length, req.headers['if-range'], etag);
    if (range === 'unsatisfiable') {
      void reply.header('content-range', `bytes */${built.length}`);
      throw new ApiError('PW_RANGE_NOT_SATISFIABLE', `range ${String(req.headers.range)} is outside the ${built.length} bytes of this artifact`);
    }
    if (range) {
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${built.length}`).header('content-length', range.end - range.start + 1);
      if (req.method === 'HEAD') return reply.send();
      return sendArtifact(reply, await mender.read(sha256, range));
    }
    void reply.header('content-length', built.length);
    if (req.method === 'HEAD') return reply.send();
    return sendArtifact(reply, await mender.read(sha256));
  };
  app.head('/v1/download/:product/:version/:file', { config: { swagger: { exposeHeadRoute: true } } }, download as never);
  app.get('/v1/download/:product/:version/:file', download as never);
}

function bodyOf(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function json(req: FastifyRequest): unknown {
  const body = bodyOf(req);
  if (body.length === 0) return null;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError('PW_BAD_REQUEST', 'the body is not JSON');
  }
}

/** device_type names the product. */
function productOf(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw new ApiError('PW_BAD_REQUEST', 'device_type is missing: it names the patchwire product (set it in /var/lib/mender/device_type)');
  return v;
}

function deployment(id: string): { product: string; version: string } {
  const d = parseDeploymentId(id);
  if (!d) throw new ApiError('PW_NOT_FOUND', `no deployment ${id}: patchwire's deployment ids are <product>@<version>`);
  return d;
}
