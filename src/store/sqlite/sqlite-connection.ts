import type { SqliteDatabase } from 'kysely';

/**
 * The subset of better-sqlite3's Database that SqliteStore uses beyond what kysely needs, declared
 * structurally (as kysely does) so the store's logic does not depend on the driver's types.
 */
export interface SqliteConnection extends SqliteDatabase {
  readonly open: boolean;
  prepare(sql: string): SqliteRawStatement;
  pragma(source: string): unknown;
  /**
   * Wraps `fn` in BEGIN/COMMIT, rolling back when it throws. `fn` must be synchronous.
   * `.immediate` begins with BEGIN IMMEDIATE: the write lock is taken before `fn` runs.
   */
  transaction<F extends (...args: any[]) => unknown>(fn: F): F & { immediate: F };
}

export interface SqliteRawStatement {
  readonly reader: boolean;
  all(...parameters: unknown[]): unknown[];
  get(...parameters: unknown[]): unknown;
  run(...parameters: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  iterate(...parameters: unknown[]): IterableIterator<unknown>;
  /** Rows as arrays of the columns' values, in the statement's column order (no object per row). */
  raw(toggle?: boolean): SqliteRawStatement;
}

/** True for better-sqlite3's error on a duplicate primary key or unique value. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
