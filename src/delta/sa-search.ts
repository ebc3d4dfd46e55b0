import { release } from './release.js';

/**
 * Longest match of NEW[at..] among OLD's suffixes: a binary search over the suffix array `I`
 * (I[0] is the empty suffix, so I has OLD.length + 1 entries), accelerated by the common prefix
 * already known at both ends. Shared by both engines. `index` is the suffix-array slot of the
 * best match found by the last `search` call (its OLD position is I[index]).
 *
 * The search starts inside the slots of the query's first two bytes (a 65,537-entry table made
 * once per suffix array, 256 KiB), not over the whole array: the same answer (the predicate
 * "suffix < query" is monotone, so narrowing the interval to bounds it already satisfies finds the
 * same boundary, and the bounds' common prefixes are computed exactly as the full search's are)
 * in about 16 fewer steps, each a cache miss on large trees.
 */
export interface SuffixSearcher {
  search(at: number): number;
  index: number;
}

/** starts[d] = first slot of I whose suffix begins with the two bytes d (big-endian); starts[65536] = I.length. */
const tables = new WeakMap<Int32Array, Int32Array>();

/** Drops the table of a suffix array whose contents are about to be rebuilt. */
export function forgetSearchTable(I: Int32Array): void {
  tables.delete(I);
}

function prefixTable(I: Int32Array, old: Uint8Array): Int32Array {
  const cached = tables.get(I);
  if (cached) return cached;
  const n = old.length;
  const count = new Int32Array(65536);
  for (let i = 0; i + 1 < n; i++) count[(old[i]! << 8) | old[i + 1]!]!++;
  const starts = new Int32Array(65537);
  // Slot 0 is the empty suffix; the one-byte suffix (old[n-1]) sorts first among those starting with its byte.
  let at = 1;
  for (let d = 0; d < 65536; d++) {
    if (n > 0 && (d & 0xff) === 0 && old[n - 1] === d >>> 8) at++;
    starts[d] = at;
    at += count[d]!;
  }
  starts[65536] = at;
  tables.set(I, starts);
  return starts;
}

const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * A matcher of common prefixes: `extend(p, at, k, max)` is the length of the common prefix of
 * old[p..] and neu[at..] given that the first k bytes agree, at most max. Past 16 equal bytes it
 * compares natively, in chunks that double from 128 bytes while they agree and then halve down to
 * the mismatch (a long match would otherwise cost a byte loop per search, and the bsdiff scan
 * searches at every position of a region it cannot align).
 */
export function prefixMatcher(old: Uint8Array, neu: Uint8Array): (p: number, at: number, k: number, max: number) => number {
  const ob = asBuffer(old);
  const nb = asBuffer(neu);
  const same = (p: number, at: number, k: number, len: number): boolean => ob.compare(nb, at + k, at + k + len, p + k, p + k + len) === 0;
  return (p, at, k, max) => {
    while (k < max && ob[p + k] === nb[at + k]) {
      k++;
      if ((k & 15) === 0) {
        // Gallop: chunks of 128 bytes, doubling while they agree; then halve down to the mismatch.
        let len = 128;
        while (k + len <= max && same(p, at, k, len)) {
          k += len;
          if (len < 1 << 20) len *= 2;
        }
        while (len > 16) {
          len >>>= 1;
          if (k + len <= max && same(p, at, k, len)) k += len;
        }
      }
    }
    return k;
  };
}

/** The most search results a SearchMemo keeps (8 bytes each). */
export const MEMO_LIMIT = 1 << 20;

/** Answers per storage chunk (two Int32 each: 128 KiB), so a memo grows without copying. */
const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;

/** One scan's answers in increasing position order: interleaved (position, suffix-array slot). */
class Run {
  chunks: Int32Array[] = [];
  n = 0;
  cursor = 0;
  pos(i: number): number {
    return this.chunks[i >>> CHUNK_BITS]![(i & (CHUNK - 1)) << 1]!;
  }
  slot(i: number): number {
    return this.chunks[i >>> CHUNK_BITS]![((i & (CHUNK - 1)) << 1) | 1]!;
  }
  /** The first answer at or after `at`. */
  seek(at: number): void {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.pos(mid) < at) lo = mid + 1;
      else hi = mid;
    }
    this.cursor = lo;
  }
}

/**
 * Search answers shared by the scans of one suffix array of one OLD against one NEW: a search's
 * answer depends only on its position, and the candidate scans search mostly the same positions
 * (the bsdiff scan with either heuristic and the lz scan: 85-99% of them on the bench pairs). A
 * scan's answers are recorded while it runs and offered to the next scans (after `commit`). An
 * answer is kept as its suffix-array slot alone (8 bytes with its position): the match length is
 * the common prefix of that suffix and the query, recomputed natively in far less time than the
 * search took. Each scan's answers stay a run of their own (a lookup advances one cursor per run),
 * in fixed-size chunks, so recording and committing copy nothing. At most `limit` answers are
 * kept; past that, scans search as without a memo. `clear` forgets them all and keeps the chunks
 * for reuse (the x86 candidates' suffix array is rebuilt in the same array).
 */
export class SearchMemo {
  private runs: Run[] = [];
  private rec: Run | undefined;
  /** Chunks of cleared runs, for reuse. */
  private spare: Int32Array[] = [];
  private total = 0;
  private lastAt = -1;

  constructor(readonly suffixes: Int32Array, private readonly limit = MEMO_LIMIT) {}

  /** The suffix-array slot of `at`'s committed answer, or -1. */
  lookup(at: number): number {
    const runs = this.runs;
    if (at < this.lastAt) {
      // Out of order (not how the scans search): find every run's place again.
      for (const r of runs) r.seek(at);
    }
    this.lastAt = at;
    for (let k = 0; k < runs.length; k++) {
      const r = runs[k]!;
      while (r.cursor < r.n && r.pos(r.cursor) < at) r.cursor++;
      if (r.cursor < r.n && r.pos(r.cursor) === at) return r.slot(r.cursor);
    }
    return -1;
  }

  /** Records a new answer (kept only in increasing position order, within the limit). */
  record(at: number, slot: number): void {
    const r = (this.rec ??= new Run());
    if (r.n > 0 && at <= r.pos(r.n - 1)) return;
    if (this.total >= this.limit) return;
    const c = r.n >>> CHUNK_BITS;
    if (c === r.chunks.length) r.chunks.push(this.spare.pop() ?? new Int32Array(2 * CHUNK));
    const o = (r.n & (CHUNK - 1)) << 1;
    const chunk = r.chunks[c]!;
    chunk[o] = at;
    chunk[o | 1] = slot;
    r.n++;
    this.total++;
  }

  /** Offers the recorded answers to the scans that follow (a scan has ended). */
  commit(): void {
    if (this.rec && this.rec.n > 0) this.runs.push(this.rec);
    this.rec = undefined;
    for (const r of this.runs) r.cursor = 0;
    this.lastAt = -1;
  }

  /** Forgets every answer (their suffix array is about to change); keeps the storage for reuse. */
  clear(): void {
    for (const r of this.rec ? [...this.runs, this.rec] : this.runs) this.spare.push(...r.chunks);
    this.runs = [];
    this.rec = undefined;
    this.total = 0;
    this.lastAt = -1;
  }

  /** Forgets every answer and frees their storage now (see release.ts). */
  async free(): Promise<void> {
    this.clear();
    const spare = this.spare;
    this.spare = [];
    await Promise.all(spare.map((c) => release(c)));
  }

  /** How many answers are kept (for tests and benches). */
  get size(): number {
    return this.total;
  }
}

export function suffixSearcher(I: Int32Array, old: Uint8Array, neu: Uint8Array, memo?: SearchMemo): SuffixSearcher {
  if (memo && memo.suffixes !== I) throw new Error('suffixSearcher: the memo belongs to another suffix array');
  const oldsize = old.length;
  const newsize = neu.length;
  const starts = oldsize >= 2 ? prefixTable(I, old) : undefined;
  const extend = prefixMatcher(old, neu);
  const lcp = (p: number, at: number, nrem: number): number => extend(p, at, 0, Math.min(oldsize - p, nrem));
  const s: SuffixSearcher = {
    index: 0,
    search(at: number): number {
      if (memo) {
        const slot = memo.lookup(at);
        if (slot >= 0) {
          s.index = slot;
          return lcp(I[slot]!, at, newsize - at);
        }
        const len = find(at);
        memo.record(at, s.index);
        return len;
      }
      return find(at);
    },
  };
  const find = (at: number): number => {
    const nrem = newsize - at;
    let lo = 0;
    let hi = oldsize;
    let lcpLo = 0;
    if (starts && nrem >= 2) {
      const d = (neu[at]! << 8) | neu[at + 1]!;
      // Every slot before starts[d] holds a suffix below the query, every slot from
      // starts[d + 1] on one above it: start just outside the query's slots, with the full
      // search's own limits (hi at most oldsize, lo below hi).
      const end = starts[d + 1]!;
      if (end < hi) hi = end;
      lo = Math.min(starts[d]! - 1, hi - 1);
      if (lo > 0) lcpLo = lcp(I[lo]!, at, nrem);
    }
    let lcpHi = lcp(I[hi]!, at, nrem);
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      const p = I[mid]!;
      let k = lcpLo < lcpHi ? lcpLo : lcpHi;
      const orem = oldsize - p;
      const max = orem < nrem ? orem : nrem;
      k = extend(p, at, k, max);
      // Is suffix(p) < neu[at..]? A proper prefix sorts first.
      if (k === max ? orem < nrem : old[p + k]! < neu[at + k]!) {
        lo = mid;
        lcpLo = k;
      } else {
        hi = mid;
        lcpHi = k;
      }
    }
    if (lcpLo > lcpHi) {
      s.index = lo;
      return lcpLo;
    }
    s.index = hi;
    return lcpHi;
  };
  return s;
}
