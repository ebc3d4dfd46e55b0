import { after } from 'node:test';

/** Whatever runs a function once the work it belongs to is over: a test's context `t`, or a Cleanup. */
export interface Owner {
  after(fn: () => unknown): void;
}

/**
 * Cleanups run together, last registered first; every one runs even when an earlier one throws
 * (the first error is rethrown at the end).
 *
 * For what a file or a describe sets up in before(): node:test's `after` called inside a hook runs
 * when that hook ends, so `Cleanup.forSuite()` registers it at the top level instead; the suite's
 * helpers then hand their cleanups to it.
 */
export class Cleanup implements Owner {
  private fns: Array<() => unknown> = [];

  /** A Cleanup that runs after the current file or describe; call it at that top level. */
  static forSuite(): Cleanup {
    const c = new Cleanup();
    after(() => c.run());
    return c;
  }

  after(fn: () => unknown): void {
    this.fns.push(fn);
  }

  async run(): Promise<void> {
    let first: unknown;
    for (let fn = this.fns.pop(); fn; fn = this.fns.pop()) {
      try {
        await fn();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}
