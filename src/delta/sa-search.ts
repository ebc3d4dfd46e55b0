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

/** The most search results a SearchMemo keeps (12 bytes each). */
export const MEMO_LIMIT = 1 << 20;

/**
 * Search answers shared by the scans of one suffix array of one OLD against one NEW: a search's
 * answer depends only on its position, and the candidate scans search mostly the same positions
 * (the bsdiff scan with either heuristic and the lz scan: 85-99% of them on the bench pairs). A
 * scan's answers are recorded while it runs and offered to the next scans (after `commit`). At most
 * MEMO_LIMIT answers are kept; past that, scans search as without a memo.
 */
export class SearchMemo {
  private pos: Int32Array = new Int32Array(0);
  private len: Int32Array = new Int32Array(0);
  private idx: Int32Array = new Int32Array(0);
  private n = 0;
  private cursor = 0;
  private lastAt = -1;
  private rPos: Int32Array = new Int32Array(0);
  private rLen: Int32Array = new Int32Array(0);
  private rIdx: Int32Array = new Int32Array(0);
  private rn = 0;

  constructor(readonly suffixes: Int32Array, private readonly limit = MEMO_LIMIT) {}

  /** The slot of `at`'s answer among the committed ones, or -1. */
  find(at: number): number {
    if (this.n === 0) return -1;
    if (at < this.lastAt) {
      // Out of order (not how the scans search): start again from a binary search.
      let lo = 0;
      let hi = this.n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.pos[mid]! < at) lo = mid + 1;
        else hi = mid;
      }
      this.cursor = lo;
    }
    this.lastAt = at;
    while (this.cursor < this.n && this.pos[this.cursor]! < at) this.cursor++;
    return this.cursor < this.n && this.pos[this.cursor] === at ? this.cursor : -1;
  }

  lengthAt(slot: number): number {
    return this.len[slot]!;
  }

  indexAt(slot: number): number {
    return this.idx[slot]!;
  }

  /** Records a new answer (kept only in increasing position order, within the limit). */
  record(at: number, len: number, index: number): void {
    if (this.rn > 0 && at <= this.rPos[this.rn - 1]!) return;
    if (this.n + this.rn >= this.limit) return;
    if (this.rn === this.rPos.length) {
      const cap = Math.min(this.limit, Math.max(1 << 12, this.rPos.length * 2));
      const grow = (a: Int32Array): Int32Array => {
        const b = new Int32Array(cap);
        b.set(a.subarray(0, this.rn));
        return b;
      };
      this.rPos = grow(this.rPos);
      this.rLen = grow(this.rLen);
      this.rIdx = grow(this.rIdx);
    }
    this.rPos[this.rn] = at;
    this.rLen[this.rn] = len;
    this.rIdx[this.rn++] = index;
  }

  /** Merges the recorded answers into the committed ones (a scan has ended). */
  commit(): void {
    if (this.rn === 0) return;
    const total = this.n + this.rn;
    const pos = new Int32Array(total);
    const len = new Int32Array(total);
    const idx = new Int32Array(total);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < this.n || j < this.rn) {
      const takeOld = j >= this.rn || (i < this.n && this.pos[i]! <= this.rPos[j]!);
      if (takeOld) {
        if (j < this.rn && this.pos[i] === this.rPos[j]) j++; // the same answer twice
        pos[k] = this.pos[i]!;
        len[k] = this.len[i]!;
        idx[k++] = this.idx[i++]!;
      } else {
        pos[k] = this.rPos[j]!;
        len[k] = this.rLen[j]!;
        idx[k++] = this.rIdx[j++]!;
      }
    }
    this.pos = pos.subarray(0, k);
    this.len = len.subarray(0, k);
    this.idx = idx.subarray(0, k);
    this.n = k;
    this.rPos = this.rLen = this.rIdx = new Int32Array(0);
    this.rn = 0;
    this.cursor = 0;
    this.lastAt = -1;
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
        const slot = memo.find(at);
        if (slot >= 0) {
          s.index = memo.indexAt(slot);
          return memo.lengthAt(slot);
        }
        const len = find(at);
        memo.record(at, len, s.index);
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
