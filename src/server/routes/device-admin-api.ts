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
}
