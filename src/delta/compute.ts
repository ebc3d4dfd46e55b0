/**
 * computeDelta, the server side of whole-tree deltas (see index.ts): what `patchwire serve`'s delta
 * worker imports, alone.
 */
import { TEXT_SCAN, bsdiffControl, bsdiffScan, brotliMax, encodeControl, sortedSuffixes, sparseFromControl, type ScanOptions } from './bsdiff.js';
import { ENGINES, FIXED_HEADER, encodeContainer, type EngineName } from './format.js';
import { lzScan, type LzOptions } from './lz.js';
import { release } from './release.js';
import { SearchMemo } from './sa-search.js';
import { exeLayout, x86Executables } from './exe-segments.js';
import { encodePredictions, piecesFromControl, predictForward, predictInverse, type Prediction } from './x86-predict.js';
import { encodeSegments } from './segments.js';
import { x86Forward, x86Inverse, x86Restore, type Segment } from './x86.js';

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
 * best one's. On the bench pairs (esbuild, prettier, lightningcss) quality 11 is 0.87-0.97 of
 * quality 5 for every engine, so a rank misjudges by at most ~11%; the candidates this drops are
 * 1.26-2.2x the best at both qualities (bench/README.md, "delta cost").
 */
export const RANK_MARGIN = 1.25;

/**
 * At most this many Brotli 11 compressions run at once: each takes ~20 MB of working memory for a
 * 1 MB stream (its match finder and the Zopfli arrays), more than the suffix array's share of
 * the 12x-NEW memory target allows; two keep a 2-core machine busy.
 */
export const BROTLI_PARALLEL = 2;

/**
 * Computes the candidate engines' deltas from `old` to `neu` and keeps the smallest (or, lowCost,
 * one cheaper candidate). Candidates: sparse-brotli (the bsdiff scan in the sparse layout) with
 * two scan heuristics and lz-brotli; when the trees hold x86-64 executables, x86-sparse-brotli and
 * x86-lz-brotli on the x86-transformed trees (x86.ts), and x86p-sparse-brotli: NEW's references
 * predicted from the x86-sparse scan's alignment (x86-predict.ts), scanned against the same
 * transformed OLD (so the same suffix array). Each candidate is ranked by its size at
 * Brotli 5 as its scan ends (tens of milliseconds, one stream at a time); one above RANK_MARGIN
 * times the best so far is dropped there and then. Memory: the suffix array (4n bytes) is freed at
 * once when the scans end, and only then are the candidates within RANK_MARGIN of the best rank
 * compressed at Brotli 11 (BROTLI_PARALLEL at a time), so Brotli's working memory and the suffix
 * array are never held together. The smallest quality-11 container wins.
 * `old` and `neu` are transformed in place during the x86 candidates and restored before this returns.
 */
export async function computeDelta(old: Buffer, neu: Buffer, opts: ComputeOptions = {}): Promise<ComputedDelta> {
  const t0 = performance.now();
  const segOld = x86Executables(old);
  const segNew = x86Executables(neu);
  const x86 = segOld.length > 0 || segNew.length > 0;
  if (opts.lowCost) {
    const engine: EngineName = x86 ? 'x86-lz-brotli' : 'lz-brotli';
    const lowCost = async (): Promise<Buffer[]> => {
      const suffixes = sortedSuffixes(old);
      const streams = lzStreams(old, neu, { suffixes });
      await release(suffixes);
      return streams;
    };
    const streams = x86
      ? await transformed(old, neu, segOld, segNew, async () => [...(await lowCost()), encodeSegments(segOld, segNew)])
      : await lowCost();
    return { delta: await encode(engine, old, neu, streams, LOW_COST_QUALITY), engine, ms: performance.now() - t0 };
  }
  // Containers are made at the end: they hash OLD and NEW, which the x86 candidates transform meanwhile.
  const kept: Array<{ engine: EngineName; streams: Buffer[]; estimate: number }> = [];
  let best = Infinity;
  const consider = async (engine: EngineName, streams: Buffer[]): Promise<void> => {
    let estimate = 0;
    for (const b of streams) estimate += (await brotliMax(b, RANK_QUALITY)).length;
    if (estimate > best * RANK_MARGIN) return;
    best = Math.min(best, estimate);
    kept.push({ engine, streams, estimate });
  };
  const suffixes = sortedSuffixes(old);
  // The scans search mostly the same positions: each reuses the answers of those before it. The
  // text heuristic searches most (it rejects more far matches), so it goes first.
  const memo = new SearchMemo(suffixes);
  const scans = async (prefix: '' | 'x86-', extra: Buffer[]): Promise<void> => {
    if (!prefix) await consider('sparse-brotli', sparse(old, neu, { ...TEXT_SCAN, suffixes, memo }));
    const ctrl: number[] = [];
    await consider(`${prefix}sparse-brotli`, [...sparse(old, neu, { suffixes, memo }, ctrl), ...extra]);
    await consider(`${prefix}lz-brotli`, [...lzStreams(old, neu, { suffixes, memo }), ...extra]);
    // x86p: NEW in OLD's label space, through the alignment the x86-sparse scan found (same suffix
    // array: OLD is unchanged; no memo: its answers are for the NEW before prediction).
    if (prefix) await consider('x86p-sparse-brotli', predicted(old, neu, segOld, segNew, ctrl, suffixes, extra[0]!));
  };
  await scans('', []);
  // The x86 candidates need OLD's suffix array again (of the transformed bytes), rebuilt in the
  // same memory; the memo's answers belong to the old one (its storage is reused).
  if (x86) {
    await transformed(old, neu, segOld, segNew, () => {
      memo.clear();
      sortedSuffixes(old, suffixes);
      return scans('x86-', [encodeSegments(segOld, segNew)]);
    });
  }
  await memo.free();
  await release(suffixes);
  const finals = kept.filter((k) => k.estimate <= best * RANK_MARGIN);
  const jobs = [...new Set(finals.flatMap((f) => f.streams))].sort((a, b) => b.length - a.length); // largest first
  const enc = new Map<Buffer, Buffer>();
  await parallel(jobs, BROTLI_PARALLEL, async (b) => void enc.set(b, await brotliMax(b)));
  // Only the winner's container is made (each hashes OLD and NEW): its length is the header's
  // (fixed for a stream count) plus its streams'.
  const size = (f: (typeof finals)[number]): number => FIXED_HEADER + 16 * f.streams.length + f.streams.reduce((a, b) => a + enc.get(b)!.length, 0);
  const win = finals.reduce((a, b) => (size(b) < size(a) ? b : a));
  const delta = encodeContainer(ENGINES[win.engine], old, neu, win.streams.map((b) => ({ rawLength: b.length, data: enc.get(b)! })));
  return { delta, engine: win.engine, ms: performance.now() - t0 };
}

/** Runs `f` on every item, at most `limit` at once. */
async function parallel<T>(items: T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await f(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
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
  const oldFields = x86Forward(old, segOld);
  x86Forward(neu, segNew);
  try {
    return await f();
  } finally {
    // OLD is only read meanwhile: its fields are the ones converted.
    x86Restore(old, segOld, oldFields);
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
