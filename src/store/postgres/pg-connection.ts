import { createHash } from 'node:crypto';
import pg from 'pg';

/**
 * Connection settings of the PostgreSQL store from a `postgres://USER[:PASSWORD]@HOST:PORT/DB`
 * URL (any libpq-style query parameters pass through to pg, e.g. `sslmode`), plus `pool=N`, the
 * most connections one store opens (default 10; the LISTEN connection is one more).
 */
export interface PgSettings {
  connectionString: string;
  pool: number;
  host: string;
  port: number;
  user: string;
  database: string;
}

export const DEFAULT_POOL = 10;
const MAX_POOL = 1000;

export function parsePgUrl(url: string): PgSettings {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PgUrlError(`--db '${redactPgUrl(url)}' is not a URL; use postgres://USER@HOST:PORT/DATABASE`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) {
    throw new PgUrlError(`--db ${redactPgUrl(url)} names no database; use postgres://USER@HOST:PORT/DATABASE`);
  }
  let pool = DEFAULT_POOL;
  const p = u.searchParams.get('pool');
  if (p !== null) {
    pool = /^\d{1,4}$/.test(p) ? Number(p) : NaN;
    if (!(pool >= 1 && pool <= MAX_POOL)) throw new PgUrlError(`--db ...?pool=${p.slice(0, 20)} must be a whole number from 1 to ${MAX_POOL}`);
    u.searchParams.delete('pool');
  }
  return {
    connectionString: u.toString(), pool, host: u.hostname || 'localhost', port: Number(u.port || 5432),
    user: decodeURIComponent(u.username) || process.env.PGUSER || process.env.USER || 'postgres', database,
  };
}

/** Query parameters (libpq's and pg's) that hold a secret or point at one. */
const SECRET_PARAMS = /([?&](?:password|sslpassword|sslkey|passfile)=)[^&#]*/gi;

/**
 * The URL as it may be printed or logged: the password replaced, also when the URL does not
 * parse. The user part runs to the last '@' (found by an attacker: a password holding an
 * unescaped '/' or '@' was printed whole or in part), and `?password=` is replaced too.
 */
export function redactPgUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return url.replace(SECRET_PARAMS, '$1***');
  let rest = m[2]!;
  const at = rest.lastIndexOf('@');
  const colon = rest.indexOf(':');
  if (at >= 0 && colon >= 0 && colon < at) rest = `${rest.slice(0, colon)}:***${rest.slice(at)}`;
  return m[1]! + rest.replace(SECRET_PARAMS, '$1***');
}

export class PgUrlError extends Error {
  override name = 'PgUrlError';
}

/**
 * int8 (bigint: times in ms, counts, positions) as a JS number: every value this schema stores is
 * below 2^53. Set per pool, not on pg's global type table, so nothing else in the process changes.
 */
const INT8_OID = 20;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

export function clientConfig(s: PgSettings): pg.ClientConfig {
  return { connectionString: s.connectionString, types, connectionTimeoutMillis: 10_000, application_name: 'patchwire' };
}

export function createPool(s: PgSettings): pg.Pool {
  const pool = new pg.Pool({
    ...clientConfig(s), max: s.pool, idleTimeoutMillis: 30_000,
    // A process frozen inside a transaction (SIGSTOP, a debugger) would hold the device-feed lock
    // and stop every device write of every process; PostgreSQL ends such a session after a minute.
    // Session advisory locks (Coordination.withLock) sit on connections outside a transaction.
    idle_in_transaction_session_timeout: 60_000,
  });
  // An idle client whose backend died (a restart, pg_terminate_backend) emits here; without a
  // listener the process would crash. The pool drops that client and the next query opens another.
  pool.on('error', () => {});
  return pool;
}

/**
 * The advisory lock key of a name: the first 8 bytes of its SHA-256 as a signed 64-bit integer
 * (decimal text, which PostgreSQL casts to bigint). 64 bits, unlike hashtext's 32, make two of
 * patchwire's names colliding negligible.
 */
export function lockKey(name: string): string {
  return createHash('sha256').update(`patchwire:${name}`).digest().readBigInt64BE(0).toString();
}

/** PostgreSQL's SQLSTATE of a duplicate key. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '23505';
}

/**
 * What failed when the store could not reach its database, and what to do: for the server's
 * start (`serve --db`), printed without a stack. Undefined for an error that is not about connecting.
 */
export function describeConnectError(err: unknown, s: PgSettings): string | undefined {
  const e = err as { code?: string; message?: string; errors?: Array<{ code?: string }> } | null;
  const code = e?.code ?? e?.errors?.[0]?.code;
  const where = `PostgreSQL at ${s.host}:${s.port}`;
  switch (code) {
    case 'ECONNREFUSED':
      return `cannot connect to ${where} (connection refused): start PostgreSQL there, or correct the host and port in --db`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${where}: the host name ${s.host} does not resolve; correct it in --db`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot connect to ${where} (${code}): check that PostgreSQL runs there and the network lets you reach it`;
    case '3D000':
      return `${where} has no database '${s.database}': create it (createdb -h ${s.host} -p ${s.port} -U ${s.user} ${s.database}) or name an existing one in --db`;
    case '28P01':
    case '28000':
      return `${where} refused user '${s.user}' (${e?.message ?? 'authentication failed'}): check the user and password in --db and the server's pg_hba.conf`;
    case '57P03':
      return `${where} is starting up or shutting down; try again in a moment`;
    case '53300':
      return `${where} has no free connection slot (too many clients); lower ?pool= or raise max_connections`;
    default:
      if (/timeout/i.test(e?.message ?? '')) return `cannot connect to ${where}: timed out; check that PostgreSQL runs there`;
      return undefined;
  }
}
