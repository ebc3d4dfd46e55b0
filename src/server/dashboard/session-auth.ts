import type { FastifyRequest } from 'fastify';
import { ApiError } from '../api-error.js';
import type { AuthFailures } from '../auth-failures.js';
import { CSRF_HEADER, SESSION_COOKIE, readCookie, type DashboardSessions, type Session } from './dashboard-sessions.js';

/** The session cookie of a request, if it sends one. */
export function sessionCookie(req: FastifyRequest): string | undefined {
  return readCookie(req.headers.cookie, SESSION_COOKIE);
}

/**
 * False when the request comes from another site's page: its Origin names another host than the
 * one it was sent to, or the browser says `Sec-Fetch-Site: cross-site` / `same-site`. Programs
 * (the CLI, curl) send neither header and pass.
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Throws PW_CSRF unless the request is from this server's own page (Origin, Sec-Fetch-Site). */
export function requireSameOrigin(req: FastifyRequest): void {
  if (!sameOrigin(req)) throw new ApiError('PW_CSRF', `refused: this request comes from another site's page (Origin ${String(req.headers.origin ?? 'absent')}); use the dashboard served by this server`);
}

/**
 * The session of a request carrying the cookie: its MAC, expiry and revocation checked, and for
 * anything but GET/HEAD the Origin and the CSRF header (constant time). A forged cookie counts
 * as a failed guess (auth-failures.ts); an expired or revoked one only asks to sign in again.
 */
export async function verifySessionRequest(req: FastifyRequest, cookie: string, sessions: DashboardSessions, failures?: AuthFailures): Promise<Session> {
  const s = await sessions.verify(cookie);
  if (s === 'forged') {
    const err = new ApiError('PW_SESSION', 'the session cookie is not one this server issued: sign in again on the dashboard');
    throw failures ? failures.failed(req, err, 'session') : err;
  }
  if (s === 'expired' || s === 'revoked') {
    const err = new ApiError('PW_SESSION', `the dashboard session ${s === 'expired' ? 'expired' : 'was signed out'}: sign in again with the admin token`);
    throw failures ? failures.missing(req, err) : err;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    requireSameOrigin(req);
    const given = req.headers[CSRF_HEADER];
    if (typeof given !== 'string' || !sessions.csrfMatches(s, given)) {
      throw new ApiError('PW_CSRF', `missing or wrong ${CSRF_HEADER} header: a signed-in page sends the CSRF token it got at sign-in with every change`);
    }
  }
  return s;
}
