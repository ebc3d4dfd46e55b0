/**
 * Whole-tree deltas: the OLD release's tree stream (see tree-stream.ts) turned into the NEW one's.
 *
 * Server side: `computeDelta` (background work; CPU and memory heavy: about 10x OLD's size).
 * Agent side: `applyDelta` (pure TypeScript + node:zlib; bounded by OLD + NEW + small). The
 * agent side may import patch.ts / format.ts / tree-stream.ts alone to stay light.
 */
import { TEXT_SCAN, bsdiffScan, brotliMax, encodeControl, sortedSuffixes, type ScanOptions } from './bsdiff.js';
import { ENGINES, encodeContainer, type EngineName } from './format.js';
import { lzScan, type LzOptions } from './lz.js';

export { applyDelta, type ApplyOptions } from './patch.js';
export { DeltaError, ENGINES, type EngineName } from './format.js';
export { treeStream } from './tree-stream.js';

export interface ComputedDelta {
  delta: Buffer;
  engine: EngineName;
  ms: number;
}

export interface ComputeOptions {
  /**
   * The lower-cost mode for large trees: one candidate (lz-brotli) with Brotli at quality 9
   * instead of three candidates at quality 11: 2.5-3.7x faster at 16-64 MB, the same memory
   * (bench/README.md, delta-cost.ts); it loses the bsdiff candidates, which win on some binaries.
   */
  lowCost?: boolean;
}

/** Brotli quality of the lower-cost mode. */
export const LOW_COST_QUALITY = 9;

/** Computes every candidate engine's delta from `old` to `neu` and keeps the smallest (or, lowCost, one cheaper candidate). */
export async function computeDelta(old: Buffer, neu: Buffer, opts: ComputeOptions = {}): Promise<ComputedDelta> {
  const t0 = performance.now();
  if (opts.lowCost) {
    const delta = await lzBrotli(old, neu, { suffixes: sortedSuffixes(old) }, LOW_COST_QUALITY);
    return { delta, engine: 'lz-brotli', ms: performance.now() - t0 };
  }
  // Two bsdiff-brotli candidates (they differ in scan heuristics only) and one lz-brotli; all share
  // OLD's suffix array.
  const suffixes = sortedSuffixes(old);
  // Each scan runs while the previous candidates' streams compress on the thread pool.
  const [b1, b2, lz] = await Promise.all([bsdiffBrotli(old, neu, { suffixes }), bsdiffBrotli(old, neu, { ...TEXT_SCAN, suffixes }), lzBrotli(old, neu, { suffixes })]);
  const candidates: Array<{ delta: Buffer; engine: EngineName }> = [
    { engine: 'bsdiff-brotli', delta: b1 },
    { engine: 'bsdiff-brotli', delta: b2 },
    { engine: 'lz-brotli', delta: lz },
  ];
  candidates.sort((a, b) => a.delta.length - b.delta.length);
  return { ...candidates[0]!, ms: performance.now() - t0 };
}

export async function bsdiffBrotli(old: Buffer, neu: Buffer, scan: ScanOptions = {}): Promise<Buffer> {
  const { ctrl, data } = bsdiffScan(old, neu, scan);
  const control = encodeControl(ctrl);
  // Both streams compress at once on the libuv thread pool.
  const [c, d] = await Promise.all([brotliMax(control), brotliMax(data)]);
  return encodeContainer(ENGINES['bsdiff-brotli'], old, neu, [
    { rawLength: control.length, data: c },
    { rawLength: data.length, data: d },
  ]);
}

export async function lzBrotli(old: Buffer, neu: Buffer, opts: LzOptions = {}, quality = 11): Promise<Buffer> {
  const s = lzScan(old, neu, opts);
  const streams = [s.literals, s.litLens, s.matchLens, s.codes, s.offsets];
  const enc = await Promise.all(streams.map((b) => brotliMax(b, quality)));
  return encodeContainer(
    ENGINES['lz-brotli'],
    old,
    neu,
    streams.map((b, i) => ({ rawLength: b.length, data: enc[i]! })),
  );
}
