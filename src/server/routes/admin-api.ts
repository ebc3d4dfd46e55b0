import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { DEFAULT_CHANNEL, isName } from '../../protocol/names.js';
import { normaliseMac } from '../../protocol/mac.js';
import { parseHttpUrl } from '../../protocol/http-url.js';
import { parseIsoDateTime } from '../../protocol/time.js';
import { DEVICE_PAGE } from '../../protocol/wire.js';
import { ApiError } from '../api-error.js';
import { adminAuth } from '../admin-auth.js';
import type { AuthFailures } from '../auth-failures.js';
import type { DashboardSessions } from '../dashboard/dashboard-sessions.js';
import type { Services } from '../services/index.js';
import type { StagedArtifact } from '../../artifacts/artifact-store.js';
import type { ReleaseService } from '../services/releases.js';
import { toProductDetail } from '../views/product-view.js';
import { toPublishedView, toReleaseListing, toYankView } from '../views/release-view.js';
import { toScheduleView } from '../views/schedule-view.js';
import { toMovedView } from '../views/moved-view.js';
import { mirrorUrl } from '../mirror/mirror-url.js';
import { deviceAdminApi } from './device-admin-api.js';
import { ddiAdminApi } from '../compat/hawkbit/ddi-admin-api.js';
import { parseDeviceFilter, type DeviceFilterQuery } from './device-filter.js';
import { createProductBody, movedBody, scheduleBody, yankBody } from './schemas.js';
import { RolloutService } from '../services/rollouts.js';
import { ROLLOUT_ACTIONS, type RolloutAction, type RolloutPlan } from '../../protocol/rollout.js';

export interface AdminApiOptions {
  services: Services;
  tokenHash: Buffer;
  authFailures?: AuthFailures;
  /** The dashboard's sessions: a session cookie (with its CSRF header for changes) stands for the token. */
  sessions?: DashboardSessions;
  maxUploadBytes: number;
  /** A mirror: reads only; changes go to the primary. */
  readOnly?: boolean;
}

/** The operator's surface. Every route here requires the admin token (one hook for all). */
export async function adminApi(app: FastifyInstance, opts: AdminApiOptions): Promise<void> {
  const { products, releases, schedules, moved, devices, status, tuf, mirror, rollouts } = opts.services;
  app.addHook('onRequest', adminAuth(opts.tokenHash, undefined, opts.authFailures, opts.sessions));
  if (opts.readOnly) {
    app.addHook('onRequest', async (req) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new ApiError('PW_MIRROR_READ_ONLY', 'this server is a mirror: publish, schedule, move and reconcile on the primary');
      }
    });
  }
  await app.register(multipart, { limits: { files: 2, fields: 4, fieldSize: 16 * 1024 * 1024, fileSize: opts.maxUploadBytes } });

  await app.register(deviceAdminApi, { services: opts.services });
  await app.register(ddiAdminApi, { hawkbit: opts.services.hawkbit });

  app.get('/online-keys', async () => products.onlineKeys());

  app.get('/products', async () => ({ products: products.list() }));

  app.post<{ Body: { product: string; root: unknown; targets: unknown; admission?: 'auto' | 'approve' } }>('/products', { schema: { body: createProductBody } }, async (req, reply) => {
    await products.create(req.body.product, req.body.root, req.body.targets, req.body.admission);
    return reply.code(201).send({ product: req.body.product });
  });

  app.get<{ Params: { product: string } }>('/products/:product', async (req) => {
    const { product } = req.params;
    products.require(product);
    return toProductDetail(product, await tuf.targetsJson(product), await releases.list(product), moved.get(product));
  });

  app.post<{ Params: { product: string } }>('/products/:product/releases', async (req, reply) => {
    const { product } = req.params;
    products.require(product);
    const { metadata, staged, swu } = await readUpload(req, opts, releases.stage.bind(releases));
    // Issue 12: a .swu for hawkBit devices rides along; checked before the release commits, stored after.
    let swuSha1: string | undefined;
    let handedOver = false;
    try {
      const rollout = metadata.rollout === undefined || metadata.rollout === null ? undefined : RolloutService.checkPlan(metadata.rollout);
      if (swu) {
        if (!opts.services.hawkbit) throw new ApiError('PW_BAD_REQUEST', 'this server has no hawkBit surface for a .swu: publish to the primary');
        swuSha1 = (await opts.services.hawkbit.inspect(swu, metadata.swu!)).sha1;
      }
      handedOver = true;
      const release = await releases.publish({ product, channel: metadata.channel ?? DEFAULT_CHANNEL, version: metadata.version, targets: metadata.targets, ...(rollout ? { rollout } : {}) }, staged);
      const attached = swu ? await opts.services.hawkbit!.attach(release, swu, swuSha1!) : undefined;
      return reply.code(201).send({ ...toPublishedView(release), ...(attached ? { swu: { actionId: attached.actionId, sha256: attached.sha256, length: attached.length } } : {}) });
    } catch (err) {
      // publish() discards the archive it was handed; before that it is ours to discard.
      if (!handedOver) await staged.discard().catch(() => {});
      await swu?.discard().catch(() => {});
      throw err;
    }
  });

  app.get<{ Params: { product: string }; Querystring: { channel?: string } }>('/products/:product/releases', async (req) => {
    const { product } = req.params;
    const { channel } = req.query;
    products.require(product);
    if (channel !== undefined && !isName(channel)) throw new ApiError('PW_BAD_REQUEST', `invalid channel '${channel}': use 1-64 of a-z 0-9 . _ -`);
    const list = await releases.list(product, channel);
    return { product, releases: list.map((r) => toReleaseListing(r, releases.latestOf(product, r.channel))) };
  });

  app.post<{ Params: { product: string }; Body: { channel?: string; version: string } }>(
    '/products/:product/yank', { schema: { body: yankBody } }, async (req) => {
      const { release, latest } = await releases.yank(req.params.product, req.body.channel ?? DEFAULT_CHANNEL, req.body.version);
      return toYankView(release, latest);
    });

  app.put<{ Params: { product: string }; Body: { channel?: string; at: string; spreadSeconds?: number } }>(
    '/products/:product/schedule', { schema: { body: scheduleBody } }, async (req) => {
      const at = parseIsoDateTime(req.body.at);
      if (!at) {
        throw new ApiError('PW_BAD_REQUEST', `'${req.body.at}' is not an ISO-8601 date-time such as 2026-12-01T09:00:00Z`);
      }
      return toScheduleView(await schedules.set(req.params.product, req.body.channel ?? DEFAULT_CHANNEL, at, req.body.spreadSeconds ?? 0));
    });

  app.post<{ Params: { product: string }; Body: { notice: string; targets: unknown } }>(
    '/products/:product/moved', { schema: { body: movedBody } }, async (req) => {
      return toMovedView(await moved.set(req.params.product, req.body.notice, req.body.targets));
    });

  // Staged rollouts (issue 11): the current rollout of each channel, and the operator's actions.
  app.get<{ Querystring: { product?: string; channel?: string } }>('/rollouts', async (req) => {
    const { product, channel } = req.query;
    if (product === undefined) throw new ApiError('PW_BAD_REQUEST', 'give the product: GET /v1/admin/rollouts?product=P[&channel=C]');
    products.require(product);
    if (channel !== undefined && !isName(channel)) throw new ApiError('PW_BAD_REQUEST', `invalid channel '${channel}': use 1-64 of a-z 0-9 . _ -`);
    await opts.services.sightings.flush();
    return { rollouts: await Promise.all(rollouts.current(product, channel).map((r) => rollouts.view(r))) };
  });

  app.post<{ Params: { product: string; action: string }; Body: unknown }>('/products/:product/rollout/:action', async (req) => {
    const { product, action } = req.params;
    if (!(ROLLOUT_ACTIONS as readonly string[]).includes(action)) {
      throw new ApiError('PW_BAD_REQUEST', `unknown rollout action '${action}': use one of ${ROLLOUT_ACTIONS.join(', ')}`);
    }
    const body = req.body ?? {};
    const channel = typeof body === 'object' && !Array.isArray(body) ? (body as { channel?: unknown }).channel ?? DEFAULT_CHANNEL : undefined;
    if (typeof channel !== 'string' || !isName(channel) || Object.keys(body as object).some((k) => k !== 'channel')) {
      throw new ApiError('PW_BAD_REQUEST', 'the body must be {"channel"?: "stable"} with a channel of 1-64 of a-z 0-9 . _ -');
    }
    return { rollout: await rollouts.view(await rollouts.act(product, channel, action as RolloutAction)) };
  });

  app.get<{ Querystring: DeviceFilterQuery & { after?: string; limit?: string } }>('/devices', async (req) => {
    const { product, after } = req.query;
    if (product !== undefined) products.require(product);
    const limit = Number(req.query.limit ?? DEVICE_PAGE.default);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new ApiError('PW_BAD_REQUEST', `limit must be a whole number of at least 1 (pages hold at most ${DEVICE_PAGE.max})`);
    if (after !== undefined && after.length > 1024) throw new ApiError('PW_BAD_REQUEST', 'after is longer than 1024 characters; pass the `next` of the previous page');
    const filter = parseDeviceFilter(req.query, devices.time());
    return devices.list(filter, after ?? null, Math.min(limit, DEVICE_PAGE.max));
  });

  // One device with its history, newest first (`patchwire devices show`).
  app.get<{ Params: { product: string; deviceId: string } }>('/products/:product/devices/:deviceId', async (req) => {
    const deviceId = normaliseMac(req.params.deviceId);
    if (!deviceId) throw new ApiError('PW_BAD_REQUEST', `'${req.params.deviceId.slice(0, 64)}' is not a MAC address such as aa:bb:cc:dd:ee:ff`);
    return devices.show(deviceId, req.params.product);
  });

  app.get<{ Params: { product: string; deviceId: string } }>('/products/:product/devices/:deviceId/reports', async (req) => {
    products.require(req.params.product);
    return devices.reports(req.params.deviceId, req.params.product);
  });

  app.delete<{ Params: { product: string; deviceId: string } }>('/products/:product/devices/:deviceId', async (req) => {
    const deviceId = normaliseMac(req.params.deviceId);
    if (!deviceId) throw new ApiError('PW_BAD_REQUEST', `'${req.params.deviceId}' is not a MAC address such as aa:bb:cc:dd:ee:ff`);
    await devices.remove(deviceId, req.params.product);
    opts.services.admission.removed(deviceId, req.params.product);
    return { product: req.params.product, deviceId, removed: true };
  });

  app.get('/mirrors', async () => ({ mirrors: await mirror.list() }));

  app.delete<{ Querystring: { url?: string } }>('/mirrors', async (req) => {
    // Not mirrorUrl(): a URL stored before announces were checked (with a path, say) can go too.
    const url = req.query.url === undefined ? undefined : parseHttpUrl(req.query.url);
    if (!url?.ok) throw new ApiError('PW_BAD_REQUEST', 'give the mirror as ?url=<the URL it announced>, e.g. ?url=http://mirror.example:8081');
    await mirror.remove(url.base);
    return { url: url.base, removed: true };
  });

  app.post<{ Querystring: { url?: string } }>('/mirrors/approve', async (req) => {
    if (req.query.url === undefined) throw new ApiError('PW_BAD_REQUEST', 'give the mirror as ?url=<the URL it announced>, e.g. ?url=http://mirror.example:8081');
    return { mirror: await mirror.approve(mirrorUrl(req.query.url)) };
  });

  app.post('/reconcile', async () => {
    if (!opts.services.consolidation) {
      throw new ApiError('PW_BAD_REQUEST', 'consolidation is off: start the primary with PATCHWIRE_MIRROR_TOKEN (or --mirror-token) so mirrors can join');
    }
    return opts.services.consolidation.reconcile();
  });

  // Reconcile as a job (mirror/reconcile-jobs.ts): the start answers at once, the caller polls.
  // POST /reconcile above stays for older CLIs; at a million records it outlives the socket limit.
  const reconcileJobs = () => {
    if (!opts.services.consolidation) {
      throw new ApiError('PW_BAD_REQUEST', 'consolidation is off: start the primary with PATCHWIRE_MIRROR_TOKEN (or --mirror-token) so mirrors can join');
    }
    return opts.services.consolidation.jobs;
  };
  app.post('/reconcile/jobs', async (_req, reply) => reply.code(202).send(await reconcileJobs().start()));
  app.get<{ Params: { id: string } }>('/reconcile/jobs/:id', { exposeHeadRoute: false }, async (req) => ({ job: await reconcileJobs().get(req.params.id) }));

  app.get<{ Querystring: { product?: string } }>('/status', async (req) => {
    if (req.query.product !== undefined) products.require(req.query.product);
    return status.status(req.query.product);
  });

  // The dashboard's chart: devices per version at each fleet snapshot (services/fleet-history.ts).
  app.get<{ Querystring: { product?: string; days?: string } }>('/fleet/history', async (req) => {
    const { product } = req.query;
    if (product !== undefined) products.require(product);
    const days = Number(req.query.days ?? 7);
    if (!Number.isSafeInteger(days) || days < 1 || days > 366) throw new ApiError('PW_BAD_REQUEST', 'days must be a whole number from 1 to 366 (snapshots are kept 30 days)');
    return opts.services.fleetHistory.history(product, days);
  });

  // Cheap (no registry count): what a monitor polls; each read starts a new window.
  app.get('/runtime', async () => status.runtime.window());

}

interface UploadMetadata {
  channel?: string;
  version: string;
  targets: unknown;
  /** Issue 11: the plan of a staged rollout (`publish --rollout`). */
  rollout?: RolloutPlan | null;
  /** Issue 12: the `swu` file's sha256 and length as the publisher built it (`publish --swu-*`). */
  swu?: { sha256: string; length: number };
}

/**
 * Reads a publish upload: the `metadata` field (JSON) must come first, then the `archive` file,
 * which is streamed into staging while hashed. Nothing is visible until the release commits.
 */
async function readUpload(
  req: FastifyRequest,
  opts: AdminApiOptions,
  stage: ReleaseService['stage'],
): Promise<{ metadata: UploadMetadata; staged: StagedArtifact; swu?: StagedArtifact }> {
  if (!req.isMultipart()) throw new ApiError('PW_BAD_REQUEST', 'send multipart/form-data with a `metadata` field and then an `archive` file');
  let metadata: UploadMetadata | undefined;
  let staged: StagedArtifact | undefined;
  let swu: StagedArtifact | undefined;
  try {
    for await (const part of req.parts()) {
      if (part.type === 'field' && part.fieldname === 'metadata') {
        metadata = parseMetadata(String(part.value));
      } else if (part.type === 'file' && part.fieldname === 'archive') {
        if (!metadata) throw new ApiError('PW_BAD_REQUEST', 'the `metadata` field must come before the `archive` file');
        if (staged) throw new ApiError('PW_BAD_REQUEST', 'send one `archive` file');
        staged = await stage(part.file, { maxLength: opts.maxUploadBytes });
      } else if (part.type === 'file' && part.fieldname === 'swu') {
        // Issue 12: the release's .swu (hawkBit devices), after the archive; metadata.swu names its hash.
        if (!staged || !metadata?.swu) throw new ApiError('PW_BAD_REQUEST', 'the `swu` file comes after the `archive`, with `swu: {sha256, length}` in the metadata');
        if (swu) throw new ApiError('PW_BAD_REQUEST', 'send one `swu` file');
        swu = await stage(part.file, { maxLength: opts.maxUploadBytes });
      } else {
        throw new ApiError('PW_BAD_REQUEST', `unexpected part '${part.fieldname}'; send only \`metadata\` and \`archive\``);
      }
    }
  } catch (err) {
    await staged?.discard().catch(() => {});
    await swu?.discard().catch(() => {});
    throw err;
  }
  if (!metadata || !staged || (metadata.swu && !swu)) {
    await staged?.discard().catch(() => {});
    await swu?.discard().catch(() => {});
    throw new ApiError('PW_BAD_REQUEST', 'the upload needs a `metadata` field and an `archive` file');
  }
  return { metadata, staged, ...(swu ? { swu } : {}) };
}

function parseMetadata(text: string): UploadMetadata {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new ApiError('PW_BAD_REQUEST', 'the `metadata` field is not JSON; send {channel, version, targets}');
  }
  const o = m as Record<string, unknown>;
  if (!o || typeof o !== 'object' || typeof o.version !== 'string' || typeof o.targets !== 'object' || o.targets === null
    || (o.channel !== undefined && typeof o.channel !== 'string')
    || (o.swu !== undefined && !isSwuInfo(o.swu))) {
    throw new ApiError('PW_BAD_REQUEST', 'the `metadata` field must be {channel?: string, version: string, targets: object}');
  }
  return o as unknown as UploadMetadata;
}

/** Issue 12: metadata.swu is `{ sha256: 64 hex, length: a whole number of bytes }`. */
function isSwuInfo(v: unknown): v is { sha256: string; length: number } {
  const o = v as { sha256?: unknown; length?: unknown } | null;
  return !!o && typeof o === 'object' && typeof o.sha256 === 'string' && /^[0-9a-f]{64}$/.test(o.sha256)
    && typeof o.length === 'number' && Number.isSafeInteger(o.length) && o.length > 0;
}
