import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../../store/store.js';
import type { Clock } from '../clock.js';
import { settingOnce } from '../setting-once.js';

/** Session lifetime and the bound on remembered sign-outs (docs/security.md, "The dashboard"). */
export const SESSION_DEFAULTS = { ttlSeconds: 12 * 3600, maxRevoked: 1000 } as const;

/** The cookie that carries a dashboard session. */
export const SESSION_COOKIE = 'pw_session';
/** The header a signed-in page sends its CSRF token in, on every request that changes something. */
export const CSRF_HEADER = 'x-patchwire-csrf';

const SECRET_SETTING = 'dashboard_session_secret';
const REVOKED_SETTING = 'dashboard_session_revocations';

/** A session cookie's contents, once its MAC, expiry and revocation are checked. */
export interface Session {
  id: string;
  expiresAt: Date;
  /** The per-session CSRF token (an HMAC of the session id: nothing to store). */
  csrf: string;
}

/** Why a cookie was refused: `forged` counts as a failed sign-in guess, the others do not. */
export type SessionRefusal = 'forged' | 'expired' | 'revoked';

/**
 * Sign-outs not yet expired, kept in one setting so every server process on the database sees
 * them. `epoch`: sessions issued under an earlier epoch are all signed out (when `revoked` is full).
 */
interface Revocations { epoch: number; revoked: Record<string, number> }

/**
 * Dashboard sessions: `v1.<id>.<epoch>.<expiry s>.<mac>`, HMAC-SHA256 under a key derived from a
 * random secret made once for the database (setting-once.ts) and from the admin token's hash, so
 * any process on the database accepts a session another issued, and replacing the admin token
 * signs every session out. Nothing is stored per session; a sign-out is remembered until the
 * session would have expired anyway.
 */
export class DashboardSessions {
  private constructor(
    private readonly store: Store,
    private readonly key: Buffer,
    private readonly now: Clock,
    private readonly o: { ttlSeconds: number; maxRevoked: number },
  ) {}

  static async open(store: Store, adminTokenHash: Buffer, now: Clock, o: Partial<{ ttlSeconds: number; maxRevoked: number }> = {}): Promise<DashboardSessions> {
    const { value } = await settingOnce(store, SECRET_SETTING, () => randomBytes(32).toString('hex'));
    const key = createHmac('sha256', Buffer.from(value, 'hex')).update(adminTokenHash).digest();
    return new DashboardSessions(store, key, now, { ...SESSION_DEFAULTS, ...o });
  }

  get ttlSeconds(): number {
    return this.o.ttlSeconds;
  }

  /** A new session: the cookie value to set and the session it stands for. */
  async issue(): Promise<{ cookie: string; session: Session }> {
    const id = randomBytes(16).toString('base64url');
    const { epoch } = await this.revocations();
    const exp = Math.floor(this.now().getTime() / 1000) + this.o.ttlSeconds;
    const body = `v1.${id}.${epoch}.${exp}`;
    return { cookie: `${body}.${this.mac(body)}`, session: this.session(id, exp) };
  }

  /** The session of a cookie value, or why it is refused. */
  async verify(cookie: string): Promise<Session | SessionRefusal> {
    const parts = cookie.length <= 256 ? cookie.split('.') : [];
    if (parts.length !== 5 || parts[0] !== 'v1') return 'forged';
    const [, id = '', epochText = '', expText = '', mac = ''] = parts;
    const expected = Buffer.from(this.mac(parts.slice(0, 4).join('.')));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'forged';
    const exp = Number(expText);
    if (!Number.isSafeInteger(exp) || exp * 1000 <= this.now().getTime()) return 'expired';
    const r = await this.revocations();
    if (Number(epochText) !== r.epoch || r.revoked[id] !== undefined) return 'revoked';
    return this.session(id, exp);
  }

  /** Signs a session out on every process of the database (remembered until it would have expired). */
  async revoke(session: Session): Promise<void> {
    await this.store.coordination.withLock('dashboard-sessions', async () => {
      const r = await this.revocations();
      const nowS = this.now().getTime() / 1000;
      for (const [id, exp] of Object.entries(r.revoked)) if (exp <= nowS) delete r.revoked[id];
      r.revoked[session.id] = Math.floor(session.expiresAt.getTime() / 1000);
      // Bounded: past maxRevoked live sign-outs, a new epoch signs every session out at once.
      const next: Revocations = Object.keys(r.revoked).length > this.o.maxRevoked ? { epoch: r.epoch + 1, revoked: {} } : r;
      await this.store.setSetting(REVOKED_SETTING, JSON.stringify(next));
    });
  }

  /** True when `given` is the session's CSRF token (constant time). */
  csrfMatches(session: Session, given: string): boolean {
    const a = Buffer.from(given);
    const b = Buffer.from(session.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private session(id: string, exp: number): Session {
    return { id, expiresAt: new Date(exp * 1000), csrf: this.mac(`csrf.${id}`) };
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  private async revocations(): Promise<Revocations> {
    const text = await this.store.getSetting(REVOKED_SETTING);
    if (!text) return { epoch: 0, revoked: {} };
    const r = JSON.parse(text) as Revocations;
    return { epoch: r.epoch, revoked: { ...r.revoked } };
  }
}

/** The value of one cookie in a Cookie header (first wins), or undefined. Bounded by the header limit of the server. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
