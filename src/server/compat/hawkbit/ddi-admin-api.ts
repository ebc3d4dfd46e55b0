import type { FastifyInstance } from 'fastify';
import type { HawkbitService } from './hawkbit-service.js';

/**
 * The operator's DDI tokens (registered inside adminApi, so behind the admin token). Each answer
 * carries the token once: the server keeps only its sha256.
 */
export async function ddiAdminApi(app: FastifyInstance, opts: { hawkbit: HawkbitService | undefined }): Promise<void> {
  const { hawkbit } = opts;
  if (!hawkbit) return;
  app.post<{ Params: { product: string; deviceId: string }; Body: { channel?: string } | undefined }>('/products/:product/devices/:deviceId/hawkbit-token', {
    schema: { body: { type: ['object', 'null'], additionalProperties: false, properties: { channel: { type: 'string', minLength: 1, maxLength: 64 } } } },
  }, async (req) => hawkbit.issueTargetToken(req.params.product, req.params.deviceId, req.body?.channel));
  app.post<{ Params: { product: string } }>('/products/:product/hawkbit-gateway-token', async (req) => hawkbit.rotateGatewayToken(req.params.product));
}
