/** Errors every Store implementation throws for the same conditions (the contract suite checks them). */

/** Thrown when a write would duplicate a unique record (product name, release version, metadata version). */
export class StoreConflictError extends Error {
  override name = 'StoreConflictError';
  constructor(message: string, readonly what: 'product' | 'release' | 'delta' | 'metadata', options?: { cause?: unknown }) {
    super(message, options);
  }
}
