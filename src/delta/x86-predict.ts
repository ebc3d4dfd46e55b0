import { DeltaError } from './format.js';
import { fieldSet, rangeBound, readField, wrap, writeField, x86Fields, type Segment } from './x86.js';

/**
 * Target prediction for x86-64 executables (engine x86p-sparse-brotli; both sides, pure TypeScript).
 *
 * The absolute form (x86.ts) makes a reference's field equal in OLD and NEW only while its target
 * did not move. When code shifted (a function grew, one was added), every reference to a shifted
 * target still differs, and a Go binary has hundreds of thousands of them. Zucchini's answer, in
 * our own formulation: the server aligns OLD and NEW (a first bsdiff scan of the absolute forms),
 * keeps the long aligned regions as *pieces* (OLD offset o, NEW offset n, length: the bytes at
 * o..o+len moved to n..n+len), and writes each reference of NEW in OLD's label space: a NEW target
 * t inside a piece becomes the OLD target it corresponds to. Wherever the alignment predicts a
 * target right, NEW's field then equals OLD's, and the byte diff sees only the real changes.
 *
 * To be undone exactly whatever the bytes, the pieces define a bijection D of the field range
 * [-L, L) (segment-relative offsets, L = rangeBound(segment length)): a value inside an OLD piece
 * maps by the piece's shift; the values outside all OLD pieces map, in order, onto the values
 * outside all NEW pieces (both complements have the same size). NEW's field holding target t is
 * written as D^-1(t); the agent reads w and restores t = D(w). Pieces must be disjoint on each
 * side; the apply side checks that, and the lengths and counts, before using a map.
 *
 * What is predicted, per NEW segment (the `predict` stream):
 * - x86 fields (x86.ts's candidates and decisions) inside the code range [codeStart, codeEnd):
 *   predicted; fields outside it (x86.ts converts them in OLD too: data bytes that look like
 *   code) get OLD's absolute form at D^-1 of their offset, which is OLD's value for data that
 *   only moved.
 * - Then a second x86 pass over the code range for RIP-relative operands of opcodes x86.ts does
 *   not list (MORE_OPCODES): OLD holds them raw, so NEW's are written in OLD's *relative* form,
 *   D^-1(target) - D^-1(the field's end), which is OLD's value wherever both moved as predicted
 *   (a bijection for each field offset, so it is undone the same way).
 * - 8-byte little-endian words at 8-aligned offsets (from the segment's start) inside the pointer
 *   range whose value v (signed) has v - ptrBase in [-L, L): v is written as ptrBase +
 *   D^-1(v - ptrBase) (absolute pointers in data: Go's itabs, method and function tables,
 *   closures). ptrBase is the virtual address of the segment's offset 0 (ELF: p_vaddr - p_offset,
 *   equal for every PT_LOAD, else no pointer range), at most 2^52.
 * The passes run in that order on NEW, and the agent undoes them in reverse order.
 *
 * ARM64 would keep the map, the pieces and the pointer pass (they do not depend on the ISA) and
 * need its own field scan instead of x86.ts's: 4-byte aligned words; BL/B (imm26 << 2), B.cond,
 * CBZ/CBNZ, LDR literal (imm19 << 2) and TBZ/TBNZ (imm14 << 2) as targets relative to the
 * instruction; ADRP (21-bit page displacement, immlo/immhi) with the ADD/LDR that supplies the low
 * 12 bits, predicted as one target (page and low bits written back together, the pair recognised
 * the same way before and after). Each field's range test must hold before and after, as here.
 */
export interface Piece {
  /** Offset of the piece in OLD's segment. */
  o: number;
  /** Offset of the piece in NEW's segment. */
  n: number;
  len: number;
}

export interface Prediction {
  /** Code range, offsets from the segment's start. */
  codeStart: number;
  codeEnd: number;
  /** Pointer range, offsets from the segment's start (empty: no pointer pass). */
  ptrStart: number;
  ptrEnd: number;
  /** Virtual address of the segment's offset 0, at most 2^52 (0 with an empty pointer range). */
  ptrBase: number;
  /** Sorted by n; disjoint on both sides; each inside [-L, L). */
  pieces: Piece[];
}

/** At most this many pieces in one delta (esbuild 0.24.1 -> 0.24.2 needs about 130). */
export const MAX_PIECES = 1 << 16;
/** Per segment 7 numbers, per piece 3, at most 8 bytes a number. */
export const predictStreamLimit = 8 * (1 + 7 * 1024 + 3 * MAX_PIECES);
/** Shortest aligned region the server keeps as a piece. */
export const MIN_PIECE = 256;


/** The bijection D of [-L, L) and its inverse, from pieces already checked. */
export class TargetMap {
  private readonly a: Side;
  private readonly b: Side;
  constructor(pieces: readonly Piece[], readonly L: number) {
    this.a = side(pieces, 'o', L);
    this.b = side(pieces, 'n', L);
  }
  /** OLD label -> NEW label (the agent's direction). */
  toNew(w: number): number {
    return map(this.a, this.b, w);
  }
  /** NEW label -> OLD label (the server's direction). */
  toOld(w: number): number {
    return map(this.b, this.a, w);
  }
}

interface Side {
  s: Float64Array; // piece starts on this side, sorted
  t: Float64Array; // the same pieces' starts on the other side
  len: Float64Array;
  gapStart: Float64Array; // gap k: [gapStart[k], s[k]) (s[count] = L)
  rankStart: Float64Array; // rank of gapStart[k] among the values outside the pieces
  starts: Counter; // over s, from -L
  ranks: Counter; // over rankStart, from 0
}

/**
 * Non-decreasing values in [lo, lo + 2L): how many are <= w, for w in that range. A lookup is a
 * bucket and a binary search inside it: about 4 buckets a value (at most 4,096), so most hold 0-1.
 */
class Counter {
  private readonly first: Int32Array; // first[k]: how many values are below lo + k * 2^shift
  private readonly shift: number;
  private readonly buckets: number;
  constructor(private readonly v: Float64Array, private readonly lo: number, L: number) {
    const bits = Math.min(12, Math.ceil(Math.log2(v.length + 1)) + 2);
    this.buckets = 1 << bits;
    this.shift = Math.log2(2 * L) - bits;
    const first = new Int32Array(this.buckets + 1);
    let j = 0;
    for (let k = 0; k <= this.buckets; k++) {
      const at = lo + k * 2 ** this.shift;
      while (j < v.length && v[j]! < at) j++;
      first[k] = j;
    }
    this.first = first;
  }
  atMost(w: number): number {
    const k = (w - this.lo) >>> this.shift;
    if (!(k < this.buckets) || w < this.lo) throw new RangeError('x86 prediction: a label outside [-L, L)');
    let a = this.first[k]!;
    let b = this.first[k + 1]!;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.v[m]! <= w) a = m + 1;
      else b = m;
    }
    return a;
  }
}

function side(pieces: readonly Piece[], key: 'o' | 'n', L: number): Side {
  const order = pieces.map((_, i) => i).sort((x, y) => pieces[x]![key] - pieces[y]![key]);
  const k = order.length;
  const s = new Float64Array(k);
  const t = new Float64Array(k);
  const len = new Float64Array(k);
  const gapStart = new Float64Array(k + 1);
  const rankStart = new Float64Array(k + 1);
  gapStart[0] = -L;
  let cum = 0;
  for (let i = 0; i < k; i++) {
    const p = pieces[order[i]!]!;
    s[i] = p[key];
    t[i] = key === 'o' ? p.n : p.o;
    len[i] = p.len;
    cum += p.len;
    gapStart[i + 1] = p[key] + p.len;
    rankStart[i + 1] = p[key] + p.len + L - cum;
  }
  return { s, t, len, gapStart, rankStart, starts: new Counter(s, -L, L), ranks: new Counter(rankStart, 0, L) };
}

function map(x: Side, y: Side, w: number): number {
  // The last piece of x starting at or before w.
  const lo = x.starts.atMost(w);
  const i = lo - 1;
  if (i >= 0 && w < x.s[i]! + x.len[i]!) return w - x.s[i]! + x.t[i]!;
  // Outside the pieces: the value of the same rank outside y's pieces (w is in x's gap `lo`).
  const r = x.rankStart[lo]! + (w - x.gapStart[lo]!);
  // Gaps of length zero share their rank with the next one; the last gap of that rank holds r.
  const k = y.ranks.atMost(r) - 1;
  return y.gapStart[k]! + (r - y.rankStart[k]!);
}

/** Throws DeltaError unless the pieces are a valid map of [-L, L) (lengths >= 1, disjoint on each side). */
export function checkPieces(pieces: readonly Piece[], L: number): void {
  for (const key of ['n', 'o'] as const) {
    const sorted = [...pieces].sort((x, y) => x[key] - y[key]);
    let end = -L;
    for (const p of sorted) {
      if (!(p.len >= 1) || p[key] < end || p[key] + p.len > L) throw new DeltaError('corrupt delta: prediction pieces overlap or leave the segment');
      end = p[key] + p.len;
    }
  }
}

/** The x86 pass of one NEW segment with prediction inside the code range; dir 1 is the server's. */
function predictX86(b: Uint8Array, seg: Segment, p: Prediction, m: TargetMap, dir: 1 | -1): void {
  const L = m.L;
  const cs = p.codeStart;
  const ce = p.codeEnd;
  const fields = x86Fields(b, seg);
  const base = seg.start;
  for (let k = 0; k < fields.length; k++) {
    const rel = fields[k]!;
    const v = readField(b, base + rel);
    let w: number;
    // Outside the code: OLD's absolute form at the place OLD had these bytes (data that only moved).
    if (rel < cs || rel >= ce) w = wrap(v + dir * m.toOld(rel), L);
    // The field's target, segment-relative: v + rel + 4 (the displacement counts from the field's end).
    else w = dir === 1 ? wrap(m.toOld(wrap(v + rel + 4, L)) - 4, L) : wrap(m.toNew(wrap(v + 4, L)) - 4 - rel, L);
    writeField(b, base + rel, w);
  }
}

/**
 * Opcodes with a ModRM operand that x86.ts's candidates lack (cmp/test/mov with an immediate or
 * a byte register: Go's write-barrier check `83 3d` alone is ~11,000 fields in esbuild; cmpxchg,
 * xadd), without x86.ts's branches. Chosen on the bench pairs: the rarer ALU forms (00-32) and
 * SSE ones cost lightningcss more than they gave esbuild.
 */
export const MORE_FIELDS = fieldSet([0x38, 0x3a, 0x80, 0x81, 0x83, 0x84, 0x86, 0x88, 0x8a, 0xc6, 0xf6, 0xf7, 0xfe], [0xb1, 0xc1], false);

/**
 * The second x86 pass (code range only): the MORE_FIELDS fields, which OLD keeps raw (relative),
 * so NEW's are written in OLD's relative form: D^-1 of the target minus D^-1 of the field's end.
 */
function predictMore(b: Uint8Array, seg: Segment, p: Prediction, m: TargetMap, dir: 1 | -1): void {
  const L = m.L;
  const cs = p.codeStart;
  const ce = p.codeEnd;
  // A decision at or past the code's end finds only fields past it, which stay as they are.
  const fields = x86Fields(b, seg, MORE_FIELDS, ce);
  const base = seg.start;
  for (let k = 0; k < fields.length; k++) {
    const rel = fields[k]!;
    if (rel < cs || rel >= ce) continue;
    const v = readField(b, base + rel);
    const end = m.toOld(wrap(rel + 4, L));
    writeField(b, base + rel, dir === 1 ? wrap(m.toOld(wrap(v + rel + 4, L)) - end, L) : wrap(m.toNew(wrap(v + end, L)) - rel - 4, L));
  }
}

function predictPointers(b: Uint8Array, seg: Segment, p: Prediction, m: TargetMap, dir: 1 | -1): void {
  if (p.ptrEnd <= p.ptrStart) return;
  const L = m.L;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const first = seg.start + Math.ceil(p.ptrStart / 8) * 8;
  const end = seg.start + p.ptrEnd;
  for (let at = first; at + 8 <= end; at += 8) {
    // A signed 64-bit value; |v| >= 2^53 is far outside ptrBase +- L, the rest is exact as a number.
    const hi = dv.getInt32(at + 4, true);
    if (hi >= 1 << 21 || hi < -(1 << 21)) continue;
    const w = hi * 4294967296 + dv.getUint32(at, true) - p.ptrBase;
    if (w < -L || w >= L) continue;
    const v = p.ptrBase + (dir === 1 ? m.toOld(w) : m.toNew(w));
    const vhi = Math.floor(v / 4294967296);
    dv.setUint32(at, v - vhi * 4294967296, true);
    dv.setInt32(at + 4, vhi, true);
  }
}

/** Server: NEW's segments in OLD's label space, in place (after nothing else: NEW as it is). */
export function predictForward(b: Uint8Array, segments: readonly Segment[], predictions: readonly Prediction[]): void {
  segments.forEach((seg, i) => {
    const p = predictions[i]!;
    const m = new TargetMap(p.pieces, rangeBound(seg.length));
    predictX86(b, seg, p, m, 1);
    predictMore(b, seg, p, m, 1);
    predictPointers(b, seg, p, m, 1);
  });
}

/** Agent: undoes `predictForward` on the same segments and predictions, in place. */
export function predictInverse(b: Uint8Array, segments: readonly Segment[], predictions: readonly Prediction[]): void {
  segments.forEach((seg, i) => {
    const p = predictions[i]!;
    const m = new TargetMap(p.pieces, rangeBound(seg.length));
    predictPointers(b, seg, p, m, -1);
    predictMore(b, seg, p, m, -1);
    predictX86(b, seg, p, m, -1);
  });
}

function putter(out: number[]) {
  return (v: number): void => {
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
  };
}
const zig = (v: number): number => (v < 0 ? -v * 2 - 1 : v * 2);
const unzig = (z: number): number => (z % 2 === 1 ? -(z + 1) / 2 : z / 2);

/**
 * The predict stream: per NEW segment (as many as the segments stream names) codeStart, code
 * length, ptrStart, pointer length, ptrBase, piece count, then per piece (sorted by n) the gap
 * after the previous piece's NEW end (zigzag: the first starts at -L), its length and
 * zigzag(o - n - the previous piece's o - n). LEB128 numbers.
 */
export function encodePredictions(predictions: readonly Prediction[], segments: readonly Segment[]): Buffer {
  const out: number[] = [];
  const put = putter(out);
  predictions.forEach((p, i) => {
    const L = rangeBound(segments[i]!.length);
    put(p.codeStart);
    put(p.codeEnd - p.codeStart);
    put(p.ptrStart);
    put(p.ptrEnd - p.ptrStart);
    put(p.ptrBase);
    put(p.pieces.length);
    let end = -L;
    let shift = 0;
    for (const x of p.pieces) {
      put(zig(x.n - end));
      put(x.len);
      put(zig(x.o - x.n - shift));
      end = x.n + x.len;
      shift = x.o - x.n;
    }
  });
  return Buffer.from(out);
}

/** Decodes and checks a predict stream for `segments` (NEW's); throws DeltaError on anything off. */
export function decodePredictions(b: Buffer, segments: readonly Segment[]): Prediction[] {
  let p = 0;
  const next = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (p >= b.length) throw new DeltaError('corrupt delta: the predict stream ends inside a number');
      const x = b[p++]!;
      v += (x & 0x7f) * mul;
      if ((x & 0x80) === 0) return v;
      mul *= 0x80;
    }
    throw new DeltaError('corrupt delta: predict number longer than 8 bytes');
  };
  const out: Prediction[] = [];
  let total = 0;
  for (const seg of segments) {
    const L = rangeBound(seg.length);
    const codeStart = next();
    const codeLen = next();
    const ptrStart = next();
    const ptrLen = next();
    const ptrBase = next();
    const count = next();
    if (codeLen > seg.length || codeStart > seg.length - codeLen || ptrLen > seg.length || ptrStart > seg.length - ptrLen) throw new DeltaError('corrupt delta: a prediction range leaves its segment');
    if (ptrBase > 2 ** 52) throw new DeltaError('corrupt delta: the pointer base is out of range');
    total += count;
    if (total > MAX_PIECES) throw new DeltaError(`corrupt delta: more than ${MAX_PIECES} prediction pieces`);
    const pieces: Piece[] = [];
    let end = -L;
    let shift = 0;
    for (let i = 0; i < count; i++) {
      const n = end + unzig(next());
      const len = next();
      const o = n + shift + unzig(next());
      // Each bound keeps the later arithmetic inside [-2L, 2L]; checkPieces does the rest.
      if (n < end || len < 1 || len > 2 * L || n + len > L || o < -L || o + len > L) throw new DeltaError('corrupt delta: a prediction piece leaves its segment');
      pieces.push({ o, n, len });
      end = n + len;
      shift = o - n;
    }
    checkPieces(pieces, L);
    out.push({ codeStart, codeEnd: codeStart + codeLen, ptrStart, ptrEnd: ptrStart + ptrLen, ptrBase: ptrLen > 0 ? ptrBase : 0, pieces });
  }
  if (p !== b.length) throw new DeltaError('corrupt delta: unexpected bytes after the predictions');
  return out;
}

/**
 * Server: the pieces of each NEW segment from the control triples of a scan of the absolute forms
 * (OLD and NEW x86Forward-ed): every add region of at least MIN_PIECE bytes inside a segment of
 * each side, clipped to both; for each NEW segment only the regions from the OLD segment that
 * gives it the most bytes; overlaps on OLD's side dropped (the longer region first).
 */
export function piecesFromControl(ctrl: readonly number[], segOld: readonly Segment[], segNew: readonly Segment[]): Piece[][] {
  const found = segNew.map(() => new Map<number, Piece[]>());
  // The first segment that ends after pos.
  const segAfter = (segs: readonly Segment[], pos: number): number => {
    let lo = 0;
    let hi = segs.length;
    while (lo < hi) {
      const m = (lo + hi) >>> 1;
      if (segs[m]!.start + segs[m]!.length <= pos) lo = m + 1;
      else hi = m;
    }
    return lo;
  };
  let np = 0;
  let op = 0;
  for (let i = 0; i < ctrl.length; i += 3) {
    const add = ctrl[i]!;
    if (add >= MIN_PIECE) {
      // The region clipped to each NEW segment it meets, then to the OLD segment that part starts in or before.
      for (let j = segAfter(segNew, np); j < segNew.length && segNew[j]!.start < np + add; j++) {
        const sn = segNew[j]!;
        const lo = Math.max(0, sn.start - np);
        const hi = Math.min(add, sn.start + sn.length - np);
        const k = segAfter(segOld, op + lo);
        const so = segOld[k];
        if (!so) continue;
        const lo2 = lo + Math.max(0, so.start - (op + lo));
        const len = Math.min(hi, so.start + so.length - op) - lo2;
        if (len < MIN_PIECE) continue;
        const list = found[j]!.get(k) ?? [];
        list.push({ o: op + lo2 - so.start, n: np + lo2 - sn.start, len });
        found[j]!.set(k, list);
      }
    }
    np += add + ctrl[i + 1]!;
    op += add + ctrl[i + 2]!;
  }
  let budget = 0;
  return found.map((bySource, j) => {
    let best: Piece[] = [];
    let bestBytes = 0;
    for (const list of bySource.values()) {
      const bytes = list.reduce((a, p) => a + p.len, 0);
      if (bytes > bestBytes) {
        best = list;
        bestBytes = bytes;
      }
    }
    const L = rangeBound(segNew[j]!.length);
    // The longest first (at most MAX_PIECES over all segments), then overlaps on OLD's side dropped.
    const longest = best.filter((p) => p.o + p.len <= L && p.n + p.len <= L).sort((a, b) => b.len - a.len).slice(0, Math.max(0, MAX_PIECES - budget));
    longest.sort((a, b) => a.o - b.o);
    const kept: Piece[] = [];
    let end = -L;
    for (const p of longest) {
      if (p.o < end) continue;
      kept.push(p);
      end = p.o + p.len;
    }
    budget += kept.length;
    return kept.sort((a, b) => a.n - b.n);
  });
}
