/**
 * Whole-tree deltas: the OLD release's tree stream (see tree-stream.ts) turned into the NEW one's.
 *
 * Server side: `computeDelta` (background work; CPU and memory heavy: about 10x OLD's size).
 * Agent side: `applyDelta` (pure TypeScript + node:zlib; bounded by OLD + NEW + small). The
 * agent side may import patch.ts / format.ts / tree-stream.ts alone to stay light.
 */
import { TEXT_SCAN, bsdiffControl, bsdiffScan, brotliMax, encodeControl, sortedSuffixes, sparseFromControl, type ScanOptions } from './bsdiff.js';
import { ENGINES, encodeContainer, type EngineName } from './format.js';
import { lzScan, type LzOptions } from './lz.js';
import { SearchMemo } from './sa-search.js';
import { exeLayout, x86Executables } from './exe-segments.js';
import { encodePredictions, piecesFromControl, predictForward, predictInverse, type Prediction } from './x86-predict.js';
import { encodeSegments } from './segments.js';
import { x86Forward, x86Inverse, type Segment } from './x86.js';

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

/** Brotli quality used to rank the candidates before only the promising ones are compressed at quality 11. */
export const RANK_QUALITY = 5;

/**
 * A candidate is compressed at quality 11 only if its RANK_QUALITY size is at most this times the
 * best one's so far. On the bench pairs (esbuild, prettier, lightningcss) quality 11 is 0.87-0.97 of
 * quality 5 for every engine, so a rank misjudges by at most ~11%; the candidates this drops are
 * 1.26-2.2x the best at both qualities (bench/README.md, "delta cost").
 */
export const RANK_MARGIN = 1.25;

/**
 * Computes the candidate engines' deltas from `old` to `neu` and keeps the smallest (or, lowCost,
 * one cheaper candidate). Candidates: sparse-brotli (the bsdiff scan in the sparse layout) with
 * two scan heuristics and lz-brotli; when the trees hold x86-64 executables, x86-sparse-brotli and
 * x86-lz-brotli on the x86-transformed trees (x86.ts), and x86p-sparse-brotli: NEW's references
 * predicted from the x86-sparse scan's alignment (x86-predict.ts), scanned against the same
 * transformed OLD (so the same suffix array). Each candidate is ranked by its size at
 * Brotli 5 as its scan ends (tens of milliseconds); one within RANK_MARGIN of the best so far is
 * compressed at Brotli 11 at once, on the thread pool while the next scans run, the others are
 * dropped there and then (so their streams are not held). The smallest quality-11 container wins.
 * `old` and `neu` are transformed in place during the x86 candidates and restored before this returns.
 */
export async function computeDelta(old: Buffer, neu: Buffer, opts: ComputeOptions = {}): Promise<ComputedDelta> {
  const t0 = performance.now();
  const segOld = x86Executables(old);
  const segNew = x86Executables(neu);
  const x86 = segOld.length > 0 || segNew.length > 0;
  if (opts.lowCost) {
    const engine: EngineName = x86 ? 'x86-lz-brotli' : 'lz-brotli';
    const streams = x86
      ? await transformed(old, neu, segOld, segNew, async () => [...lzStreams(old, neu, { suffixes: sortedSuffixes(old) }), encodeSegments(segOld, segNew)])
      : lzStreams(old, neu, { suffixes: sortedSuffixes(old) });
    return { delta: await encode(engine, old, neu, streams, LOW_COST_QUALITY), engine, ms: performance.now() - t0 };
  }
  // Containers are made at the end: they hash OLD and NEW, which the x86 candidates transform meanwhile.
  const finals: Array<{ engine: EngineName; raw: number[]; enc: Promise<Buffer[]> }> = [];
  let best = Infinity;
  const consider = async (engine: EngineName, streams: Buffer[]): Promise<void> => {
    const sizes = await Promise.all(streams.map((b) => brotliMax(b, RANK_QUALITY)));
    const estimate = sizes.reduce((a, b) => a + b.length, 0);
    if (estimate > best * RANK_MARGIN) return;
    best = Math.min(best, estimate);
    const enc = Promise.all(streams.map((b) => brotliMax(b)));
    enc.catch(() => {}); // awaited below
    finals.push({ engine, raw: streams.map((b) => b.length), enc });
  };
  const scans = async (suffixes: Int32Array, prefix: '' | 'x86-', extra: Buffer[]): Promise<void> => {
    // The scans search mostly the same positions: each reuses the answers of those before it. The
    // text heuristic searches most (it rejects more far matches), so it goes first.
    const memo = new SearchMemo(suffixes);
    if (!prefix) await consider('sparse-brotli', sparse(old, neu, { ...TEXT_SCAN, suffixes, memo }));
    const ctrl: number[] = [];
    await consider(`${prefix}sparse-brotli`, [...sparse(old, neu, { suffixes, memo }, ctrl), ...extra]);
    await consider(`${prefix}lz-brotli`, [...lzStreams(old, neu, { suffixes, memo }), ...extra]);
    // x86p: NEW in OLD's label space, through the alignment the x86-sparse scan found (same suffix array: OLD is unchanged).
    if (prefix) await consider('x86p-sparse-brotli', predicted(old, neu, segOld, segNew, ctrl, suffixes, extra[0]!));
  };
  const suffixes = sortedSuffixes(old);
  await scans(suffixes, '', []);
  // The x86 candidates need OLD's suffix array again (of the transformed bytes), rebuilt in the same memory.
  if (x86) await transformed(old, neu, segOld, segNew, () => scans(sortedSuffixes(old, suffixes), 'x86-', [encodeSegments(segOld, segNew)]));
  const done = await Promise.all(finals.map(async (f) => {
    const enc = await f.enc;
    return { engine: f.engine, delta: encodeContainer(ENGINES[f.engine], old, neu, f.raw.map((rawLength, i) => ({ rawLength, data: enc[i]! }))) };
  }));
  done.sort((a, b) => a.delta.length - b.delta.length);
  return { ...done[0]!, ms: performance.now() - t0 };
}

/** The sparse-brotli streams; `keep` (when given) receives the control triples. */
function sparse(old: Buffer, neu: Buffer, scan: ScanOptions, keep?: number[]): Buffer[] {
  const ctrl = bsdiffControl(old, neu, scan);
  const s = sparseFromControl(ctrl, old, neu);
  if (keep) for (const v of ctrl) keep.push(v);
  return [encodeControl(ctrl), s.runs, s.diffs, s.extra];
}

/**
 * The x86p-sparse-brotli streams, with OLD and NEW in absolute form (x86Forward-ed) and `ctrl` a
 * scan of them: NEW is turned back, written in OLD's label space (x86-predict.ts) and scanned
 * against OLD, then put back in absolute form.
 */
function predicted(old: Buffer, neu: Buffer, segOld: Segment[], segNew: Segment[], ctrl: number[], suffixes: Int32Array, segments: Buffer): Buffer[] {
  const pieces = piecesFromControl(ctrl, segOld, segNew);
  const preds: Prediction[] = segNew.map((s, i) => ({ ...exeLayout(neu, s), pieces: pieces[i]! }));
  x86Inverse(neu, segNew);
  predictForward(neu, segNew, preds);
  try {
    return [...sparse(old, neu, { suffixes }), segments, encodePredictions(preds, segNew)];
  } finally {
    predictInverse(neu, segNew, preds);
    x86Forward(neu, segNew);
  }
}

/** Runs `f` with OLD and NEW x86-transformed in place; restores them whatever happens. */
async function transformed<T>(old: Buffer, neu: Buffer, segOld: Segment[], segNew: Segment[], f: () => Promise<T>): Promise<T> {
  x86Forward(old, segOld);
  x86Forward(neu, segNew);
  try {
    return await f();
  } finally {
    x86Inverse(old, segOld);
    x86Inverse(neu, segNew);
  }
}

function bsdiffStreams(old: Buffer, neu: Buffer, scan: ScanOptions): Buffer[] {
  const { ctrl, data } = bsdiffScan(old, neu, scan);
  return [encodeControl(ctrl), data];
}

function lzStreams(old: Buffer, neu: Buffer, opts: LzOptions): Buffer[] {
  const s = lzScan(old, neu, opts);
  return [s.literals, s.litLens, s.matchLens, s.codes, s.offsets];
}

export async function bsdiffBrotli(old: Buffer, neu: Buffer, scan: ScanOptions = {}): Promise<Buffer> {
  const [control, data] = bsdiffStreams(old, neu, scan) as [Buffer, Buffer];
  // Both streams compress at once on the libuv thread pool.
  const [c, d] = await Promise.all([brotliMax(control), brotliMax(data)]);
  return encodeContainer(ENGINES['bsdiff-brotli'], old, neu, [
    { rawLength: control.length, data: c },
    { rawLength: data.length, data: d },
  ]);
}

/** The container of `engine` with each stream Brotli-compressed (at once, on the thread pool). */
async function encode(engine: EngineName, old: Buffer, neu: Buffer, streams: Buffer[], quality = 11): Promise<Buffer> {
  const enc = await Promise.all(streams.map((b) => brotliMax(b, quality)));
  return encodeContainer(ENGINES[engine], old, neu, streams.map((b, i) => ({ rawLength: b.length, data: enc[i]! })));
}

export async function lzBrotli(old: Buffer, neu: Buffer, opts: LzOptions = {}, quality = 11): Promise<Buffer> {
  return encode('lz-brotli', old, neu, lzStreams(old, neu, opts), quality);
}

/**
 * One engine's delta (Brotli q11), x86 engines on the trees' x86-64 executables (none found: the
 * transform changes nothing, the delta is still valid). For tests and benches; `computeDelta`
 * picks among all of them.
 */
export async function deltaWith(engine: EngineName, old: Buffer, neu: Buffer): Promise<Buffer> {
  if (engine === 'x86p-sparse-brotli') {
    const segOld = x86Executables(old);
    const segNew = x86Executables(neu);
    const streams = await transformed(old, neu, segOld, segNew, async () => {
      const suffixes = sortedSuffixes(old);
      const ctrl: number[] = [];
      sparse(old, neu, { suffixes }, ctrl);
      return predicted(old, neu, segOld, segNew, ctrl, suffixes, encodeSegments(segOld, segNew));
    });
    return encode(engine, old, neu, streams);
  }
  const inner = engine.includes('bsdiff') ? (o: Buffer, n: Buffer) => bsdiffStreams(o, n, {}) : engine.includes('sparse') ? (o: Buffer, n: Buffer) => sparse(o, n, {}) : (o: Buffer, n: Buffer) => lzStreams(o, n, {});
  if (!engine.startsWith('x86-')) return encode(engine, old, neu, inner(old, neu));
  const segOld = x86Executables(old);
  const segNew = x86Executables(neu);
  const streams = await transformed(old, neu, segOld, segNew, async () => [...inner(old, neu), encodeSegments(segOld, segNew)]);
  return encode(engine, old, neu, streams);
}
