import { suffixSearcher, type SearchMemo } from './sa-search.js';
import { sortedSuffixes } from './bsdiff.js';

/**
 * lz-brotli (engine 2), server side: NEW as a sequence of (literal run, match), where a match copies
 * from the virtual buffer OLD ++ NEW-so-far (this encoder only searches OLD, with its suffix array;
 * matches inside NEW-so-far cost more in offsets than Brotli's own window saves on the literals,
 * measured on typescript 5.6.3 -> 5.7.2, but the patcher accepts them). Distances are counted
 * back from the current output position in that virtual buffer (distance d at output position np
 * copies from virtual address oldLength + np - d), so "the same alignment of OLD and NEW" is the same
 * distance; the last three distances are repeat offsets coded as one small symbol, which makes
 * "continue at the same alignment after a small edit" almost free.
 *
 * Five streams, each Brotli-compressed separately, in this order:
 *   literals   the literal bytes, in output order
 *   litLens    per sequence, LEB128 literal run length
 *   matchLens  per sequence, LEB128 (match length - 1)
 *   codes      per sequence, one byte: 0, 1, 2 = repeat distance 0..2; 3 = a new distance
 *   offsets    per code 3, zigzag LEB128 (new distance - repeat distance 0)
 * The sequence count is the codes stream's length; the literals left after the last sequence end
 * NEW. Repeat distances start as [oldLength, oldLength, oldLength] (NEW[i] = OLD[i]); code 1 swaps
 * rep0/rep1, code 2 rotates rep2 to the front, code 3 pushes the new distance to the front.
 */
export interface LzOptions {
  /** Shortest match at a new distance. */
  minMatch?: number;
  /** Shortest match at a repeat distance. */
  minRep?: number;
  /** A repeat match is taken unless a new match is longer by more than this. */
  repBias?: number;
  /** How many suffix-array neighbours of equal match length to consider (closest to rep0 wins). */
  neighbours?: number;
  /** A precomputed `sortedSuffixes(old)`. Defaults tuned on typescript 5.6.3 -> 5.7.2. */
  suffixes?: Int32Array;
  /** Search answers shared with the other scans of the same `suffixes`, OLD and NEW (sa-search.ts). */
  memo?: SearchMemo;
}

export const LZ_DEFAULTS: Required<Omit<LzOptions, 'suffixes' | 'memo'>> = { minMatch: 24, minRep: 6, repBias: 16, neighbours: 16 };

export interface LzStreams {
  literals: Buffer;
  litLens: Buffer;
  matchLens: Buffer;
  codes: Buffer;
  offsets: Buffer;
}

class ByteSink {
  buf: Buffer;
  len = 0;
  constructor(cap: number) {
    this.buf = Buffer.alloc(Math.max(16, cap));
  }
  private grow(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const b = Buffer.alloc(Math.max(this.buf.length * 2, this.len + extra));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  byte(v: number): void {
    this.grow(1);
    this.buf[this.len++] = v;
  }
  varint(v: number): void {
    this.grow(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }
  bytes(src: Uint8Array, from: number, to: number): void {
    this.grow(to - from);
    this.buf.set(src.subarray(from, to), this.len);
    this.len += to - from;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

export function lzScan(old: Uint8Array, neu: Uint8Array, opts: LzOptions = {}): LzStreams {
  const o = { ...LZ_DEFAULTS, ...opts };
  const oldsize = old.length;
  const newsize = neu.length;
  const I = opts.suffixes ?? sortedSuffixes(old);
  if (I.length !== oldsize + 1) throw new Error('lzScan: suffixes do not belong to old');

  const literals = new ByteSink(1 << 16);
  const litLens = new ByteSink(1 << 12);
  const matchLens = new ByteSink(1 << 12);
  const codes = new ByteSink(1 << 12);
  const offsets = new ByteSink(1 << 12);

  const finder = suffixSearcher(I, old, neu, opts.memo);
  /** Match length of neu[at..] against old[src..] (src may be out of range: 0). */
  const matchAt = (at: number, src: number): number => {
    if (src < 0 || src >= oldsize) return 0;
    const max = Math.min(oldsize - src, newsize - at);
    let k = 0;
    while (k < max && old[src + k] === neu[at + k]) k++;
    return k;
  };

  const rep = [oldsize, oldsize, oldsize];
  let litStart = 0;
  let i = 0;
  const emit = (len: number, code: number, dist: number): void => {
    litLens.varint(i - litStart);
    literals.bytes(neu, litStart, i);
    matchLens.varint(len - 1);
    codes.byte(code);
    if (code === 3) {
      const d = dist - rep[0]!;
      offsets.varint(d < 0 ? -d * 2 - 1 : d * 2);
      rep[2] = rep[1]!;
      rep[1] = rep[0]!;
      rep[0] = dist;
    } else if (code === 1) {
      const t = rep[1]!;
      rep[1] = rep[0]!;
      rep[0] = t;
    } else if (code === 2) {
      const t = rep[2]!;
      rep[2] = rep[1]!;
      rep[1] = rep[0]!;
      rep[0] = t;
    }
    i += len;
    litStart = i;
  };

  while (i < newsize) {
    // Repeat distances first (cheap).
    let repLen = 0;
    let repCode = 0;
    for (let r = 0; r < 3; r++) {
      if (r > 0 && (rep[r] === rep[0] || (r === 2 && rep[2] === rep[1]))) continue;
      const l = matchAt(i, oldsize + i - rep[r]!);
      if (l > repLen) {
        repLen = l;
        repCode = r;
      }
    }
    // A long repeat match is taken without a suffix-array search.
    if (repLen >= Math.max(o.minRep, 64)) {
      emit(repLen, repCode, rep[repCode]!);
      continue;
    }
    const L = finder.search(i);
    const saIndex = finder.index;
    let pos = I[saIndex]!;
    if (L >= o.minMatch && L > repLen + o.repBias) {
      // Among suffixes matching as long, prefer the alignment closest to rep0.
      const want = oldsize + i - rep[0]!;
      let best = Math.abs(pos - want);
      for (const dir of [-1, 1]) {
        for (let k = 1, j = saIndex + dir; k <= o.neighbours && j >= 1 && j <= oldsize; k++, j += dir) {
          const p = I[j]!;
          if (matchAt(i, p) < L) break;
          const c = Math.abs(p - want);
          if (c < best) {
            best = c;
            pos = p;
          }
        }
      }
      emit(L, 3, oldsize + i - pos);
      continue;
    }
    if (repLen >= o.minRep) {
      emit(repLen, repCode, rep[repCode]!);
      continue;
    }
    i++;
  }
  opts.memo?.commit();
  // Trailing literals.
  literals.bytes(neu, litStart, newsize);
  return { literals: literals.done(), litLens: litLens.done(), matchLens: matchLens.done(), codes: codes.done(), offsets: offsets.done() };
}
