import { posix } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { normaliseMac } from '../../protocol/mac.js';
import { ApiError } from '../api-error.js';
import type { Services } from '../services/index.js';
import type { AdmissionPolicy, DeviceIdentityRecord } from '../../store/store.js';

/** Device admission on the admin surface (registered inside adminApi, so behind its token): accept, reject, preauthorise, policy. */
export async function deviceAdminApi(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { admission, products } = opts.services;
  const mac = (raw: string) => {
    const id = normaliseMac(raw);
    if (!id) throw new ApiError('PW_BAD_REQUEST', `'${raw}' is not a MAC address such as aa:bb:cc:dd:ee:ff`);
    return id;
  };
  const view = (i: DeviceIdentityRecord) => ({ product: i.product, deviceId: i.deviceId, status: i.status, keyId: i.keyId, pendingKeyId: i.pendingKey?.keyId ?? null });

  type P = { Params: { product: string; deviceId: string } };
  // `?keyId=` (the key id, or its first 8+ hex digits, as `devices` shows it) pins the key to bind.
  app.post<P & { Querystring: { keyId?: string } }>('/products/:product/devices/:deviceId/accept', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { keyId: { type: 'string', pattern: '^[0-9a-f]{8,32}$' } } } },
  }, async (req) => view(await admission.accept(mac(req.params.deviceId), req.params.product, req.query.keyId)));
  app.post<P>('/products/:product/devices/:deviceId/reject', async (req) => view(await admission.reject(mac(req.params.deviceId), req.params.product)));

  app.put<P & { Body: { publicKey?: string } }>('/products/:product/preauthorized/:deviceId', {
    schema: { body: { type: 'object', additionalProperties: false, properties: { publicKey: { type: 'string', pattern: '^[0-9a-f]{64}$' } } } },
  }, async (req) => {
    const deviceId = mac(req.params.deviceId);
    await admission.preauthorize(deviceId, req.params.product, req.body?.publicKey ?? null);
    return { product: req.params.product, deviceId, preauthorized: true, publicKey: req.body?.publicKey ?? null };
  });

  app.put<{ Params: { product: string }; Body: { admission: AdmissionPolicy } }>('/products/:product/admission', {
    schema: { body: { type: 'object', required: ['admission'], additionalProperties: false, properties: { admission: { type: 'string', enum: ['auto', 'approve'] } } } },
  }, async (req) => {
    await products.setAdmission(req.params.product, req.body.admission);
    return { product: req.params.product, admission: req.body.admission };
  });

  // `product create|update --mender-dest DIR`: where Mender devices of the product install (docs/compat.md).
  app.put<{ Params: { product: string }; Body: { menderDest: string | null } }>('/products/:product/mender', {
    schema: { body: { type: 'object', required: ['menderDest'], additionalProperties: false, properties: { menderDest: { type: ['string', 'null'], maxLength: 255 } } } },
  }, async (req) => {
    const dest = req.body.menderDest;
    const problem = dest === null ? undefined : menderDestProblem(dest);
    if (problem) throw new ApiError('PW_BAD_REQUEST', `--mender-dest ${JSON.stringify(dest)} ${problem}; nothing changed`);
    await products.setMenderDest(req.params.product, dest);
    return { product: req.params.product, menderDest: dest };
  });
}

/** What is wrong with a Mender install folder, or undefined: absolute, normalised, not `/` (the directory module refuses `/`). */
export function menderDestProblem(dest: string): string | undefined {
  if (!dest.startsWith('/')) return 'is not an absolute path: give the folder on the device, e.g. /opt/myapp';
  if (dest === '/' || posix.normalize(dest).replace(/\/+$/, '') !== dest) return 'is / or not a normalised path (no //, . or .. parts, no trailing /): the directory module replaces the whole folder';
  if (/[^\x20-\x7e]/.test(dest) || /["'`$\\]/.test(dest)) return 'holds a control character, a quote, $ or \\ (the directory module passes it to a shell unquoted)';
  if (/\s/.test(dest)) return 'holds a space (the directory module passes it to a shell unquoted)';
  return undefined;
}
