import type { FastifyInstance } from 'fastify';
import { normaliseMac } from '../../protocol/mac.js';
import { isVersion } from '../../protocol/version.js';
import type { CheckRequest, ReportRequest } from '../../protocol/wire.js';
import { ROUTES } from '../../protocol/urls.js';
import { ApiError } from '../api-error.js';
import type { Services } from '../services/index.js';
import type { AuthRequest } from '../../protocol/device-auth.js';
import { authBody, channelsResponse, checkBody, checkResponse, eventsQuery, reportBody } from './schemas.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';

/** Validates what JSON schema cannot: the MAC form of the device id and semver versions. */
function deviceIdOf(raw: string): string {
  const id = normaliseMac(raw);
  if (!id) throw new ApiError('PW_BAD_REQUEST', `deviceId '${raw}' is not a MAC address; send aa:bb:cc:dd:ee:ff`);
  return id;
}

function versionOf(field: string, v: string | null | undefined): string | null {
  if (v === undefined) return null;
  if (v !== null && !isVersion(v)) throw new ApiError('PW_BAD_REQUEST', `${field} '${v}' is not a semver version such as 1.2.3`);
  return v;
}

/** The device surface: check, report, channels (artifact and metadata downloads are in repository-api.ts). */
export async function deviceApi(app: FastifyInstance, opts: { services: Services; metrics: ServerMetrics }): Promise<void> {
  const { metrics } = opts;
  const { devices, identity, products, push } = opts.services;

  // The device's signed auth: answers a short-lived token for check and report (docs/protocol.md).
  app.post<{ Body: AuthRequest }>(ROUTES.auth, { schema: { body: authBody } }, async (req) => {
    const b = req.body;
    if (normaliseMac(b.deviceId) !== b.deviceId) throw new ApiError('PW_BAD_REQUEST', `deviceId '${b.deviceId}' is not a normalised MAC address: send lower-case aa:bb:cc:dd:ee:ff (it is signed as sent)`);
    return identity.auth(b, req.ip);
  });

  app.post<{ Body: CheckRequest }>(ROUTES.check, { schema: { body: checkBody, response: checkResponse } }, async (req) => {
    const b = req.body;
    const request: CheckRequest = { deviceId: deviceIdOf(b.deviceId), product: b.product, channel: b.channel };
    // Only the device itself: its token, checked before anything is recorded.
    products.require(request.product);
    await identity.requireToken(req.headers.authorization, request.deviceId, request.product);
    if (b.version !== undefined) request.version = versionOf('version', b.version);
    if (b.installId !== undefined) request.installId = b.installId;
    if (b.nonce !== undefined) request.nonce = b.nonce;
    if (b.deferred === true) request.deferred = true;
    // Answers by result; refusals are counted when their error answer is sent (metrics-api.ts).
    const answer = await devices.check(request);
    metrics.checked(answer);
    return answer;
  });

  // Push: the device's event stream (server-sent events). Identified as a check is: its product's
  // token, for this device; the stream tells only of its own product and channel.
  app.get<{ Querystring: { deviceId: string; product: string; channel: string } }>(ROUTES.events, { schema: { querystring: eventsQuery }, exposeHeadRoute: false }, async (req, reply) => {
    const q = req.query;
    const deviceId = deviceIdOf(q.deviceId);
    products.require(q.product);
    const claims = await identity.requireToken(req.headers.authorization, deviceId, q.product);
    devices.requireChannel(q.product, q.channel);
    push.admit(deviceId, q.product);
    // From here the hub writes the response itself; fastify neither sends nor waits for it.
    reply.hijack();
    push.open(reply.raw, { deviceId, product: q.product, channel: q.channel, expiresAt: claims.expiresAt, keyId: claims.keyId, issuedAt: claims.issuedAt });
  });

  // What `patchwire init` asks to catch a typo in --product or --channel before the first check.
  app.get<{ Params: { product: string } }>(ROUTES.channels, { schema: { response: channelsResponse } }, async (req) => {
    return { product: req.params.product, channels: devices.channels(req.params.product) };
  });

  app.post<{ Body: ReportRequest }>(ROUTES.report, { schema: { body: reportBody } }, async (req) => {
    const b = req.body;
    const deviceId = deviceIdOf(b.deviceId);
    // Found by an attacker: PostgreSQL text cannot hold a NUL, so such a detail was a 500 there (and stored by SQLite).
    if (b.detail !== undefined && b.detail.includes('\u0000')) {
      throw new ApiError('PW_BAD_REQUEST', 'detail holds a NUL character (\\u0000), which the server does not store: send the text without it (agents replace it with U+FFFD)');
    }
    products.require(b.product);
    await identity.requireToken(req.headers.authorization, deviceId, b.product);
    const device = await devices.report({
      ...b,
      deviceId,
      version: versionOf('version', b.version),
      previousVersion: versionOf('previousVersion', b.previousVersion),
      ...(b.toVersion !== undefined ? { toVersion: versionOf('toVersion', b.toVersion) } : {}),
    });
    metrics.reported(b.event);
    return { ok: true, version: device.version };
  });
}
