/**
 * Longest match of NEW[at..] among OLD's suffixes: a binary search over the suffix array `I`
 * (I[0] is the empty suffix, so I has OLD.length + 1 entries), accelerated by the common prefix
 * already known at both ends. Shared by both engines. `index` is the suffix-array slot of the
 * best match found by the last `search` call (its OLD position is I[index]).
 */
export interface SuffixSearcher {
  search(at: number): number;
  index: number;
}

export function suffixSearcher(I: Int32Array, old: Uint8Array, neu: Uint8Array): SuffixSearcher {
  const oldsize = old.length;
  const newsize = neu.length;
  const s: SuffixSearcher = {
    index: 0,
    search(at: number): number {
      const nrem = newsize - at;
      let lo = 0;
      let hi = oldsize;
      let lcpLo = 0;
      let lcpHi = 0;
      {
        const p = I[hi]!;
        const max = Math.min(oldsize - p, nrem);
        while (lcpHi < max && old[p + lcpHi] === neu[at + lcpHi]) lcpHi++;
      }
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        const p = I[mid]!;
        let k = lcpLo < lcpHi ? lcpLo : lcpHi;
        const orem = oldsize - p;
        const max = orem < nrem ? orem : nrem;
        while (k < max && old[p + k] === neu[at + k]) k++;
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
