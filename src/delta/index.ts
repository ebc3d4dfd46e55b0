/**
 * Whole-tree deltas: the OLD release's tree stream (see tree-stream.ts) turned into the NEW one's.
 *
 * Server side: `computeDelta` (compute.ts; background work, CPU and memory heavy). Agent side:
 * `applyDelta` (pure TypeScript + node:zlib; bounded by OLD + NEW + small). The agent side may
 * import patch.ts / format.ts / tree-stream.ts alone to stay light; the server's delta worker
 * imports compute.ts alone (no apply side, no tar writer in its process).
 */
export { bsdiffBrotli, computeDelta, deltaWith, lzBrotli, LOW_COST_QUALITY, RANK_MARGIN, RANK_QUALITY, type ComputedDelta, type ComputeOptions } from './compute.js';
export { applyDelta, type ApplyOptions } from './patch.js';
export { DeltaError, ENGINES, type EngineName } from './format.js';
export { treeStream } from './tree-stream.js';
