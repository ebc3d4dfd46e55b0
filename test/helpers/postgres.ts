import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Owner } from './cleanup.js';

/**
 * The PostgreSQL the tests use: 127.0.0.1:5432, user postgres, trust auth (CI starts it; so does
 * .ci/run). PATCHWIRE_TEST_PG overrides the server URL (its database part is ignored).
 */
const SERVER = process.env.PATCHWIRE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const HOW_TO_START = 'start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
  + ' (the postgres tests need PostgreSQL on 127.0.0.1:5432, user postgres, trust auth; PATCHWIRE_STORES=sqlite runs the others without it)';

/** A URL of `database` on the test server. */
export function pgUrl(database: string): string {
  const u = new URL(SERVER);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs `fn` on a connection to the server's maintenance database. */
export async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: SERVER, connectionTimeoutMillis: 5_000 });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(`PostgreSQL at ${new URL(SERVER).host} is not reachable (${(err as Error).message || (err as { code?: string }).code}); ${HOW_TO_START}`, { cause: err });
  }
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * A new, empty database `patchwire_test_<random>` of its own, dropped (with every connection
 * still on it, WITH (FORCE)) when `owner` cleans up. Returns its URL. Fails, never skips, when
 * PostgreSQL is not running.
 */
export async function tempPgDatabase(owner: Owner): Promise<string> {
  const name = `patchwire_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  owner.after(() => withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));
  return pgUrl(name);
}
