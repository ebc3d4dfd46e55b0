/**
 * Whole-tree deltas: the OLD release's tree stream (see tree-stream.ts) turned into the NEW one's.
 *
 * Server side: `computeDelta` (background work; CPU and memory heavy: about 10x OLD's size).
 * Agent side: `applyDelta` (pure TypeScript + node:zlib; bounded by OLD + NEW + small). The
 * agent side may import patch.ts / format.ts / tree-stream.ts alone to stay light.
 */
import { TEXT_SCAN, bsdiffScan, brotliMax, encodeControl, sortedSuffixes, type ScanOptions } from './bsdiff.js';
import { ENGINES, encodeContainer, type EngineName } from './format.js';

export { applyDelta, type ApplyOptions } from './patch.js';
export { DeltaError, ENGINES, type EngineName } from './format.js';
export { treeStream } from './tree-stream.js';

export interface ComputedDelta {
  delta: Buffer;
  engine: EngineName;
  ms: number;
}

/** Computes every candidate engine's delta from `old` to `neu` and keeps the smallest. */
export async function computeDelta(old: Buffer, neu: Buffer): Promise<ComputedDelta> {
  const t0 = performance.now();
  // Both candidates are plain bsdiff-brotli (any agent applies them); they differ in scan heuristics
  // only and share OLD's suffix array.
  const suffixes = sortedSuffixes(old);
  // The second scan runs while the first candidate's streams compress on the thread pool.
  const deltas = await Promise.all([bsdiffBrotli(old, neu, { suffixes }), bsdiffBrotli(old, neu, { ...TEXT_SCAN, suffixes })]);
  const candidates: Array<{ delta: Buffer; engine: EngineName }> = deltas.map((delta) => ({ engine: 'bsdiff-brotli', delta }));
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
