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

export function suffixSearcher(I: Int32Array, old: Uint8Array, neu: Uint8Array): SuffixSearcher {
  const oldsize = old.length;
  const newsize = neu.length;
  const starts = oldsize >= 2 ? prefixTable(I, old) : undefined;
  const extend = prefixMatcher(old, neu);
  const lcp = (p: number, at: number, nrem: number): number => extend(p, at, 0, Math.min(oldsize - p, nrem));
  const s: SuffixSearcher = {
    index: 0,
    search(at: number): number {
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
    },
  };
  return s;
}
