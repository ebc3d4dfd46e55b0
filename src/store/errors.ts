/** Errors every Store implementation throws for the same conditions (the contract suite checks them). */

/** Thrown when a write would duplicate a unique record (product name, release version, metadata version). */
export class StoreConflictError extends Error {
  override name = 'StoreConflictError';
  constructor(message: string, readonly what: 'product' | 'release' | 'delta' | 'metadata', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Thrown for a ChangeCursor the store did not make (a cursor from another store, or garbage). */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
  constructor(readonly cursor: string) {
    super(`'${cursor.slice(0, 100)}' is not a change cursor of this store`);
  }
}
