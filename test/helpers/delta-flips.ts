import assert from 'node:assert/strict';
import { applyDelta, DeltaError } from '../../src/delta/index.js';

/**
 * Flips one random byte of `good` (a delta from `old` to `neu`) `count` times: each apply must give
 * NEW or throw DeltaError, never another output or a crash; `after(at)` runs after each (e.g. OLD restored).
 */
export function expectFlipsRefused(old: Buffer, neu: Buffer, good: Buffer, count: number, rnd: () => number, after?: (at: number) => void): void {
  for (let k = 0; k < count; k++) {
    const bad = Buffer.from(good);
    const at = Math.floor(rnd() * bad.length);
    bad[at] ^= 1 + Math.floor(rnd() * 255);
    try {
      assert.ok(applyDelta(old, bad, { maxOutput: neu.length }).equals(neu), `flip at ${at}: wrong output accepted`);
    } catch (err) {
      assert.ok(err instanceof DeltaError, `flip at ${at}: ${String(err)}`);
    }
    after?.(at);
  }
}
