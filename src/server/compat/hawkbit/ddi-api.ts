import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../api-error.js';
import { parseRange } from '../../routes/range.js';
import { sendArtifact } from '../../routes/send-file.js';
import type { DdiTarget, FeedbackBody, HawkbitService } from './hawkbit-service.js';
import { sleepText } from './sleep-text.js';

/** The DDI paths (hawkBit's Direct Device Integration API v1, the part SWUpdate's suricatta uses). */
export const DDI_BASE = '/:tenant/controller/v1/:controllerId';
type Params = { tenant: string; controllerId: string };
type ActionParams = Params & { actionId: string };
/** A DDI body is small JSON: a feedback, a configData. */
const DDI_BODY_LIMIT = 64 * 1024;

function actionIdOf(raw: string): number {
  const n = Number(raw);
  if (!/^\d{1,10}$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n >= 2 ** 31) throw new ApiError('PW_NOT_FOUND', `no action '${raw.slice(0, 20)}': action ids are whole numbers`);
  return n;
}

/**
 * The hawkBit DDI surface for SWUpdate (issue 12; docs/compat.md, "hawkBit / SWUpdate"): the
 * tenant is the product, the controller id the device's MAC. Every route takes the device's
 * TargetToken or the product's GatewayToken, checked before anything is read or recorded.
 * Feedback answers 200 (SWUpdate abandons an update on a 204).
 */
export async function ddiApi(app: FastifyInstance, opts: { hawkbit: HawkbitService; publicUrl: () => string }): Promise<void> {
  const { hawkbit } = opts;
  const who = (req: FastifyRequest<{ Params: Params }>): Promise<DdiTarget> =>
    hawkbit.authenticate(req.headers.authorization, req.params.tenant, req.params.controllerId, req.ip);
  // Links name this server as configured (`--public-url`), never the Host header a client sent.
  const base = (t: DdiTarget) => `${opts.publicUrl()}/${encodeURIComponent(t.product)}/controller/v1/${encodeURIComponent(t.deviceId)}`;

  app.get<{ Params: Params }>(DDI_BASE, async (req) => {
    const t = await who(req);
    const { swu, sleepSeconds } = await hawkbit.poll(t);
    const links: Record<string, { href: string }> = {};
    if (swu) links.deploymentBase = { href: `${base(t)}/deploymentBase/${swu.actionId}?c=${swu.sha256.slice(0, 16)}` };
    // Once received, dropped: SWUpdate re-sends configData as long as the link is there, and installs nothing meanwhile.
    if (!t.record.configAt) links.configData = { href: `${base(t)}/configData` };
    return { config: { polling: { sleep: sleepText(sleepSeconds) } }, _links: links };
  });

  app.get<{ Params: ActionParams }>(`${DDI_BASE}/deploymentBase/:actionId`, async (req) => {
    const t = await who(req);
    const swu = await hawkbit.offeredAction(t, actionIdOf(req.params.actionId));
    const href = `${base(t)}/softwaremodules/${swu.actionId}/artifacts/${encodeURIComponent(swuFileName(t.product, swu.version))}`;
    return {
      id: String(swu.actionId),
      deployment: {
        download: 'forced',
        update: 'forced',
        chunks: [{
          part: 'os',
          version: swu.version,
          name: t.product,
          artifacts: [{
            filename: swuFileName(t.product, swu.version),
            hashes: { sha1: swu.sha1, sha256: swu.sha256 },
            size: swu.length,
            _links: { download: { href }, 'download-http': { href } },
          }],
        }],
      },
    };
  });

  app.post<{ Params: ActionParams; Body: FeedbackBody }>(`${DDI_BASE}/deploymentBase/:actionId/feedback`, { bodyLimit: DDI_BODY_LIMIT }, async (req, reply) => {
    const t = await who(req);
    await hawkbit.feedback(t, actionIdOf(req.params.actionId), req.body);
    return reply.code(200).send({});
  });

  app.put<{ Params: Params; Body: { data?: unknown } }>(`${DDI_BASE}/configData`, { bodyLimit: DDI_BODY_LIMIT }, async (req, reply) => {
    const t = await who(req);
    await hawkbit.configData(t, req.body);
    return reply.code(200).send({});
  });

  // patchwire never cancels an action (a yank or an aborted rollout stops offering it instead),
  // so the base poll never links here; a device that asks anyway hears so.
  app.get<{ Params: ActionParams }>(`${DDI_BASE}/cancelAction/:actionId`, async (req) => {
    await who(req);
    throw new ApiError('PW_NOT_FOUND', `action ${actionIdOf(req.params.actionId)} is not being cancelled: patchwire does not cancel actions`);
  });
  app.post<{ Params: ActionParams }>(`${DDI_BASE}/cancelAction/:actionId/feedback`, { bodyLimit: DDI_BODY_LIMIT }, async (req, reply) => {
    await who(req);
    actionIdOf(req.params.actionId);
    return reply.code(200).send({});
  });

  // The .swu, as any patchwire artifact: content-addressed ETag, Range, the token as on every DDI call.
  const download = async (req: FastifyRequest<{ Params: ActionParams & { file: string } }>, reply: FastifyReply) => {
    const t = await who(req);
    const swu = await hawkbit.offeredAction(t, actionIdOf(req.params.actionId));
    if (req.params.file !== swuFileName(t.product, swu.version)) throw new ApiError('PW_NOT_FOUND', `action ${swu.actionId} has no artifact '${req.params.file.slice(0, 100)}'`);
    const etag = `"${swu.sha256}"`;
    void reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'private, max-age=31536000, immutable').type('application/octet-stream');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    const range = parseRange(req.headers.range, swu.length, req.headers['if-range'], etag);
    if (range === 'unsatisfiable') {
      void reply.header('content-range', `bytes */${swu.length}`);
      throw new ApiError('PW_RANGE_NOT_SATISFIABLE', `range ${String(req.headers.range)} is outside the ${swu.length} bytes of this .swu`);
    }
    if (range) {
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${swu.length}`).header('content-length', range.end - range.start + 1);
      if (req.method === 'HEAD') return reply.send();
      return sendArtifact(reply, await hawkbit.read(swu, range));
    }
    void reply.header('content-length', swu.length);
    if (req.method === 'HEAD') return reply.send();
    return sendArtifact(reply, await hawkbit.read(swu));
  };
  const file = `${DDI_BASE}/softwaremodules/:actionId/artifacts/:file`;
  app.head(file, { config: { swagger: { exposeHeadRoute: true } } }, download as never);
  app.get(file, download as never);
}

/** The artifact's name: SWUpdate skips files that do not end in `.swu`. */
export function swuFileName(product: string, version: string): string {
  return `${product}-${version}.swu`;
}
