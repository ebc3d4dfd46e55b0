/**
 * Suffix array construction by induced sorting (SA-IS, Nong, Zhang and Chan 2009), written for
 * memory: besides the output array it takes one bit per symbol (is it an LMS position) and the
 * bucket tables; the
 * reduced problem of each level lives inside the output array (its reduced string in the array's
 * tail, its suffix array in the head), so for n input bytes the whole construction needs about
 * 4.2n bytes (the 4n output included) plus the buckets of the first recursion (4 bytes per
 * distinct LMS substring at most, usually far less than n).
 *
 * The induction passes need no type array: an entry induced in the L pass is L-type, so its
 * predecessor's type follows from the two symbols alone (likewise in the S pass); each entry
 * carries, as its sign, whether its predecessor is still to be induced by the other pass.
 * The top level (bytes) and the recursion (Int32Array symbols) run separate copies of the hot
 * loops, so each stays monomorphic.
 */

/**
 * The suffix array of `s`: suffix start positions in lexicographic order. With `out` (length
 * s.length), it is written there and returned, so a caller that needs it inside a larger array
 * (bsdiff's, with the empty suffix first) needs no second copy.
 */
export function suffixArray(s: Uint8Array, out?: Int32Array): Int32Array {
  const n = s.length;
  if (out && out.length !== n) throw new RangeError('suffixArray: out must have the input\'s length');
  if (n > 0x7fffffff - 2) throw new RangeError('suffixArray: input too large');
  const sa = out ?? new Int32Array(n);
  if (n < 2) {
    if (n === 1) sa[0] = 0;
    return sa;
  }
  level(s, sa, n, 256, undefined);
  return sa;
}

type Sym = Uint8Array | Int32Array;

/**
 * LMS bits: bit i is set when suffix i is S-type (smaller than suffix i + 1) and suffix i - 1 is
 * L-type (the last suffix is L-type; position 0 is never LMS). One bit per symbol.
 */
function lmsBits(t: Sym, n: number): Uint8Array {
  const bits = new Uint8Array((n >>> 3) + 1);
  let next = 0; // the type of suffix i + 1
  for (let i = n - 2; i >= 0; i--) {
    const a = t[i]!;
    const b = t[i + 1]!;
    const cur = a < b ? 1 : a > b ? 0 : next;
    if (next && !cur) bits[(i + 1) >>> 3]! |= 1 << ((i + 1) & 7);
    next = cur;
  }
  return bits;
}

const isLms = (bits: Uint8Array, i: number): boolean => (bits[i >>> 3]! & (1 << (i & 7))) !== 0;

/** The LMS positions in increasing order, one set bit at a time. */
function lmsPositions(bits: Uint8Array, f: (i: number) => void): void {
  for (let w = 0; w < bits.length; w++) {
    let x = bits[w]!;
    while (x !== 0) {
      f((w << 3) | (31 - Math.clz32(x & -x)));
      x &= x - 1;
    }
  }
}

function counts(t: Sym, n: number, c: Int32Array): void {
  c.fill(0);
  for (let i = 0; i < n; i++) c[t[i]!]!++;
}

function bucketStarts(c: Int32Array, b: Int32Array): void {
  let sum = 0;
  for (let i = 0; i < c.length; i++) {
    b[i] = sum;
    sum += c[i]!;
  }
}

function bucketEnds(c: Int32Array, b: Int32Array): void {
  let sum = 0;
  for (let i = 0; i < c.length; i++) {
    sum += c[i]!;
    b[i] = sum;
  }
}

/**
 * One level: the suffix array of t[0..n) (symbols < k) into sa[0..n). `work`, when given, is
 * scratch space this level may use for its buckets (it is not otherwise touched).
 */
function level(t: Sym, sa: Int32Array, n: number, k: number, work: Int32Array | undefined): void {
  const bits = lmsBits(t, n);
  let c: Int32Array;
  let b: Int32Array;
  if (work && work.length >= 2 * k) {
    c = work.subarray(0, k);
    b = work.subarray(k, 2 * k);
  } else {
    c = new Int32Array(k);
    b = new Int32Array(k);
  }
  counts(t, n, c);

  // Stage 1: the LMS positions at the ends of their buckets (in text order), then one induction
  // sorts the LMS substrings.
  sa.fill(0, 0, n);
  bucketEnds(c, b);
  let m = 0;
  lmsPositions(bits, (i) => {
    sa[--b[t[i]!]!] = i;
    m++;
  });
  induce(t, sa, n, c, b);

  // The LMS positions in substring order, compacted into sa[0..m) (m <= n/2).
  let k2 = 0;
  for (let i = 0; i < n; i++) {
    const p = sa[i]!;
    if (isLms(bits, p)) sa[k2++] = p;
  }
  // Name them: sa[m + (p >> 1)] is the name of the substring at p (LMS positions are >= 2
  // apart, so these slots are distinct and inside sa[m..n)). First their lengths.
  sa.fill(-1, m, n);
  let prev = -1;
  lmsPositions(bits, (i) => {
    if (prev >= 0) sa[m + (prev >> 1)] = i - prev + 1;
    prev = i;
  });
  if (prev >= 0) sa[m + (prev >> 1)] = n - prev + 1; // runs into the sentinel: unique
  let names = 0;
  let q = -1;
  let qLen = 0;
  for (let i = 0; i < m; i++) {
    const p = sa[i]!;
    const pLen = sa[m + (p >> 1)]!;
    let same = pLen === qLen && q >= 0 && p + pLen <= n && q + qLen <= n;
    if (same) {
      for (let j = 0; j < pLen; j++) {
        if (t[p + j] !== t[q + j]) {
          same = false;
          break;
        }
      }
    }
    if (!same) {
      names++;
      q = p;
      qLen = pLen;
    }
    sa[m + (p >> 1)] = names - 1;
  }

  if (names < m) {
    // The reduced string (names in text order) into the tail sa[n-m..n); its suffix array into sa[0..m).
    let j = n - 1;
    for (let i = n - 1; i >= m; i--) {
      const v = sa[i]!;
      if (v >= 0) sa[j--] = v;
    }
    const red = sa.subarray(n - m, n);
    const free = n - 2 * m > 0 ? sa.subarray(m, n - m) : undefined;
    if (m < 2) sa[0] = 0;
    else level(red, sa.subarray(0, m), m, names, free);
    // Reduced suffix index -> text position: the LMS positions in text order, into the tail.
    j = n - m;
    lmsPositions(bits, (i) => {
      sa[j++] = i;
    });
    for (let i = 0; i < m; i++) sa[i] = sa[n - m + sa[i]!]!;
  }
  // (names === m: sa[0..m) already holds the LMS suffixes in sorted order.)

  // Stage 3: the sorted LMS suffixes at the ends of their buckets, in order; one induction sorts all.
  sa.fill(0, m, n);
  bucketEnds(c, b);
  for (let i = m - 1; i >= 0; i--) {
    const p = sa[i]!;
    sa[i] = 0;
    sa[--b[t[p]!]!] = p;
  }
  induce(t, sa, n, c, b);
}

/**
 * Induced sorting from the LMS seeds in `sa` (0 = empty; position 0 is never a seed and induces
 * nothing, so it may be stored as 0 too). Entries are positions; a negative entry ~p means p's
 * predecessor is to be induced by the S pass. Leaves every entry non-negative.
 */
function induce(t: Sym, sa: Int32Array, n: number, c: Int32Array, b: Int32Array): void {
  if (t instanceof Uint8Array) induceBytes(t, sa, n, c, b);
  else induceInts(t, sa, n, c, b);
}

function induceBytes(t: Uint8Array, sa: Int32Array, n: number, c: Int32Array, b: Int32Array): void {
  // L pass, left to right from bucket starts; the sentinel's predecessor n-1 first.
  bucketStarts(c, b);
  {
    const q = n - 1;
    sa[b[t[q]!]!++] = t[q - 1]! >= t[q]! ? q : ~q;
  }
  for (let i = 0; i < n; i++) {
    const j = sa[i]!;
    if (j <= 0) continue;
    const q = j - 1;
    const cq = t[q]!;
    sa[b[cq]!++] = q > 0 && t[q - 1]! >= cq ? q : q > 0 ? ~q : 0;
  }
  // S pass, right to left from bucket ends.
  bucketEnds(c, b);
  for (let i = n - 1; i >= 0; i--) {
    const v = sa[i]!;
    if (v >= 0) continue;
    const j = ~v;
    sa[i] = j;
    const q = j - 1;
    const cq = t[q]!;
    sa[--b[cq]!] = q > 0 && t[q - 1]! <= cq ? ~q : q;
  }
}

function induceInts(t: Int32Array, sa: Int32Array, n: number, c: Int32Array, b: Int32Array): void {
  bucketStarts(c, b);
  {
    const q = n - 1;
    sa[b[t[q]!]!++] = t[q - 1]! >= t[q]! ? q : ~q;
  }
  for (let i = 0; i < n; i++) {
    const j = sa[i]!;
    if (j <= 0) continue;
    const q = j - 1;
    const cq = t[q]!;
    sa[b[cq]!++] = q > 0 && t[q - 1]! >= cq ? q : q > 0 ? ~q : 0;
  }
  bucketEnds(c, b);
  for (let i = n - 1; i >= 0; i--) {
    const v = sa[i]!;
    if (v >= 0) continue;
    const j = ~v;
    sa[i] = j;
    const q = j - 1;
    const cq = t[q]!;
    sa[--b[cq]!] = q > 0 && t[q - 1]! <= cq ? ~q : q;
  }
}
