import type { FastifyInstance } from 'fastify';
import { adminAuth } from '../admin-auth.js';
import type { AuthFailures } from '../auth-failures.js';
import { ApiError } from '../api-error.js';
import type { Services } from '../services/index.js';
import { COMPACT_FORMAT, type MirrorAnnounceAnswer, type ScheduleSync } from '../../protocol/wire.js';
import { isName } from '../../protocol/names.js';
import { mirrorUrl } from '../mirror/mirror-url.js';
import { MAX_CURSOR_LENGTH } from '../mirror/limits.js';
import { OLDEST_TIME } from '../mirror/device-sync.js';

export interface MirrorApiOptions {
  services: Services;
  /** sha256 of the mirror token; null when this server was started without one (every call refused). */
  tokenHash: Buffer | null;
  role: 'primary' | 'mirror';
  authFailures?: AuthFailures;
}

const MAX_PAGE = 100_000;
const MAX_CURSOR = MAX_CURSOR_LENGTH;
const MAX_SPREAD_SECONDS = 366 * 86400;

const plausibleTime = (t: string): boolean => {
  const ms = typeof t === 'string' && t.length <= 40 ? Date.parse(t) : Number.NaN;
  return ms >= OLDEST_TIME && ms < Date.parse('3000-01-01T00:00:00Z');
};
/**
 * Records per GET /devices page, whatever `limit` the peer asks: a larger ask gets this many (the
 * peer follows `next`), so one page never holds the event loop long. Equal to the page the
 * consolidation asks for (consolidation.ts PAGE).
 */
export const SYNC_PAGE_MAX = 5000;

/**
 * Server-to-server surface between a primary and its mirrors. Every route needs the mirror token
 * (a wrong one changes nothing and is logged at warn level by the error handler).
 */
export async function mirrorApi(app: FastifyInstance, opts: MirrorApiOptions): Promise<void> {
  const { mirror, schedules } = opts.services;
  if (opts.tokenHash) {
    app.addHook('onRequest', adminAuth(opts.tokenHash, 'mirror token: the --upstream-token of the mirror, PATCHWIRE_MIRROR_TOKEN of the primary', opts.authFailures));
  } else {
    app.addHook('onRequest', async () => {
      throw new ApiError('PW_UNAUTHORIZED', 'the mirror surface is off on this server: start the primary with PATCHWIRE_MIRROR_TOKEN (or --mirror-token)');
    });
  }

  app.post<{ Body: { url: string; storeId?: string } }>('/announce', {
    schema: {
      body: {
        type: 'object', required: ['url'], additionalProperties: false,
        properties: { url: { type: 'string', maxLength: 4096 }, storeId: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
      },
    },
  }, async (req) => {
    if (opts.role !== 'primary') throw new ApiError('PW_MIRROR_READ_ONLY', 'this server is a mirror; announce mirrors to the primary');
    const url = mirrorUrl(req.body.url);
    return { ok: true, state: await mirror.announce(url, req.body.storeId) } satisfies MirrorAnnounceAnswer;
  });

  app.get('/catalog', async () => mirror.catalog());

  // Pages: `after` is the `next` of the previous page (a cursor this server made; absent: from the
  // start), so a page always starts after the previous one.
  // `format=2` (issue 10): the page in format 2 (records as arrays, docs/protocol.md); absent or 1: objects.
  app.get<{ Querystring: { after?: string; limit?: string; format?: string } }>('/devices', async (req) => {
    const q = req.query;
    if (q.after !== undefined && q.after.length > MAX_CURSOR) throw new ApiError('PW_BAD_REQUEST', `after is longer than ${MAX_CURSOR} characters`);
    const limit = Number(q.limit ?? SYNC_PAGE_MAX);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new ApiError('PW_BAD_REQUEST', `limit must be a whole number of at least 1 (pages hold at most ${SYNC_PAGE_MAX})`);
    if (q.format !== undefined && q.format !== '1' && q.format !== String(COMPACT_FORMAT)) {
      throw new ApiError('PW_BAD_REQUEST', `format must be 1 (records as objects) or ${COMPACT_FORMAT} (records as arrays); this server knows no format ${JSON.stringify(String(q.format)).slice(0, 40)}`);
    }
    return mirror.changes(q.after ?? null, Math.min(limit, SYNC_PAGE_MAX), q.format === String(COMPACT_FORMAT));
  });

  app.post<{ Body: { records: unknown[]; format?: number } }>('/devices', {
    bodyLimit: 64 * 1024 * 1024,
    schema: {
      body: {
        type: 'object', required: ['records'], additionalProperties: false,
        properties: { records: { type: 'array', maxItems: MAX_PAGE }, format: { type: 'integer', enum: [1, COMPACT_FORMAT] } },
      },
    },
  }, async (req) => {
    // Only the primary pushes to a mirror; what it pushed it holds already (see Store.mergeDevices).
    return mirror.merge(req.body.records, opts.role === 'mirror', req.body.format === COMPACT_FORMAT);
  });

  app.put<{ Body: { schedules: ScheduleSync[] } }>('/schedules', {
    schema: {
      body: {
        type: 'object', required: ['schedules'], additionalProperties: false,
        properties: {
          schedules: {
            type: 'array', maxItems: 10_000,
            items: {
              type: 'object', required: ['product', 'channel', 'at', 'spreadSeconds', 'setAt'],
              properties: { product: { type: 'string' }, channel: { type: 'string' }, at: { type: 'string' }, spreadSeconds: { type: 'integer', minimum: 0 }, setAt: { type: 'string' } },
            },
          },
        },
      },
    },
  }, async (req) => {
    if (opts.role !== 'mirror') throw new ApiError('PW_MIRROR_READ_ONLY', 'the primary owns the schedules; set them with `patchwire schedule`');
    for (const [i, s] of req.body.schedules.entries()) {
      if (!isName(s.product) || !isName(s.channel)) throw new ApiError('PW_BAD_REQUEST', `schedules[${i}] has an invalid product or channel name`);
      if (![s.at, s.setAt].every(plausibleTime)) throw new ApiError('PW_BAD_REQUEST', `schedules[${i}] has a time that is not ISO-8601 between 2000 and 2999`);
      if (s.spreadSeconds > MAX_SPREAD_SECONDS) throw new ApiError('PW_BAD_REQUEST', `schedules[${i}].spreadSeconds is more than a year`);
    }
    const changed = await schedules.replicate(req.body.schedules);
    return { changed };
  });
}
