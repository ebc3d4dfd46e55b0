import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../api-error.js';
import { hashToken } from '../admin-auth.js';
import type { AuthFailures } from '../auth-failures.js';
import { SESSION_COOKIE, type DashboardSessions, type Session } from './dashboard-sessions.js';
import { requireSameOrigin, sessionCookie, verifySessionRequest } from './session-auth.js';

export interface SessionApiOptions {
  sessions: DashboardSessions;
  tokenHash: Buffer;
  authFailures: AuthFailures;
  /** True when the server's public URL is https: the cookie is then Secure whatever the request says. */
  https: boolean;
}

/** What sign-in and GET /v1/dashboard/session answer: the page keeps the CSRF token in memory only. */
interface SessionView {
  csrf: string;
  expiresAt: string;
}

const signInBody = {
  type: 'object',
  required: ['token'],
  additionalProperties: false,
  properties: { token: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

/**
 * The dashboard's sign-in (docs/protocol.md, "Dashboard session"): POST trades the admin token
 * for an HttpOnly, SameSite=Strict session cookie; GET says whether the cookie is still good (and
 * hands the page its CSRF token again after a reload); DELETE signs out on every process.
 */
export async function sessionApi(app: FastifyInstance, opts: SessionApiOptions): Promise<void> {
  const { sessions, authFailures } = opts;

  app.post<{ Body: { token: string } }>('/session', { schema: { body: signInBody } }, async (req, reply) => {
    authFailures.checkBlocked(req);
    // A foreign page must not sign this browser in under the attacker's token (login CSRF).
    requireSameOrigin(req);
    if (!timingSafeEqual(hashToken(req.body.token), opts.tokenHash)) {
      throw authFailures.failed(req, new ApiError('PW_UNAUTHORIZED', 'wrong admin token: use the token the server printed on first start or its PATCHWIRE_TOKEN'), 'admin');
    }
    const { cookie, session } = await sessions.issue();
    setCookie(reply, req, opts, cookie, sessions.ttlSeconds);
    return reply.code(201).send(view(session));
  });

  app.get('/session', async (req) => view(await current(req, opts)));

  app.delete('/session', async (req, reply) => {
    const session = await current(req, opts);
    await sessions.revoke(session);
    setCookie(reply, req, opts, '', 0);
    return { signedOut: true };
  });
}

async function current(req: FastifyRequest, opts: SessionApiOptions): Promise<Session> {
  opts.authFailures.checkBlocked(req);
  const cookie = sessionCookie(req);
  if (cookie === undefined) throw new ApiError('PW_SESSION', 'not signed in: sign in on the dashboard with the admin token');
  return verifySessionRequest(req, cookie, opts.sessions, opts.authFailures);
}

function view(s: Session): SessionView {
  return { csrf: s.csrf, expiresAt: s.expiresAt.toISOString() };
}

function setCookie(reply: FastifyReply, req: FastifyRequest, opts: SessionApiOptions, value: string, maxAge: number): void {
  const secure = opts.https || req.protocol === 'https' ? '; Secure' : '';
  void reply.header('set-cookie', `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure}`);
  void reply.header('cache-control', 'no-store');
}
