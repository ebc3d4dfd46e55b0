import { createHash, timingSafeEqual, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './api-error.js';
import type { ErrorCode } from '../protocol/errors.js';
import type { AuthFailures } from './auth-failures.js';
import type { DashboardSessions } from './dashboard/dashboard-sessions.js';
import { sessionCookie, verifySessionRequest } from './dashboard/session-auth.js';

/** sha256 of an admin token; only this hash is ever stored. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What a bearer-token surface says and counts when its token is missing or wrong. */
export interface BearerTokenRules {
  code: ErrorCode;
  missing: string;
  wrong: string;
  /** Named in the log line of a wrong token (`wrong <kind> token from ADDRESS`). */
  kind: string;
}

/**
 * Returns a preHandler that refuses any request whose `Authorization: Bearer <token>` does not
 * match. Hashing both sides first gives equal-length buffers, so timingSafeEqual compares in
 * constant time whatever the token's length. With `failures`, wrong tokens are counted per
 * address and an address past the limit is refused with 429 (auth-failures.ts). With `sessions`
 * (the admin surface), a request without the header may instead carry the dashboard's session
 * cookie, checked with its CSRF header for changes (dashboard/session-auth.ts).
 */
export function bearerAuth(tokenHash: Buffer, rules: BearerTokenRules, failures?: AuthFailures, sessions?: DashboardSessions) {
  return async (req: FastifyRequest): Promise<void> => {
    failures?.checkBlocked(req);
    const header = req.headers.authorization;
    const cookie = sessions && header === undefined ? sessionCookie(req) : undefined;
    if (cookie !== undefined) {
      await verifySessionRequest(req, cookie, sessions!, failures);
      return;
    }
    const m = typeof header === 'string' ? /^Bearer (.+)$/.exec(header) : null;
    if (!m) {
      const err = new ApiError(rules.code, rules.missing);
      throw failures ? failures.missing(req, err) : err;
    }
    if (!timingSafeEqual(hashToken(m[1]!), tokenHash)) {
      const err = new ApiError(rules.code, rules.wrong);
      throw failures ? failures.failed(req, err, rules.kind) : err;
    }
  };
}

/** The admin surface's bearerAuth; `which` names another token (the mirror token) in the messages. */
export function adminAuth(tokenHash: Buffer, which?: string, failures?: AuthFailures, sessions?: DashboardSessions) {
  return bearerAuth(tokenHash, {
    code: 'PW_UNAUTHORIZED',
    missing: which ? `missing ${which}` : 'missing admin token: send `Authorization: Bearer <token>` (CLI: --token or PATCHWIRE_TOKEN)',
    wrong: which ? `wrong ${which}` : 'wrong admin token: use the token the server printed on first start or its PATCHWIRE_TOKEN',
    kind: which ? 'mirror' : 'admin',
  }, failures, sessions);
}
