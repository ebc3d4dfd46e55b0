/**
 * Suffix array construction by induced sorting (SA-IS, Nong, Zhang and Chan 2009), ported from
 * the AtCoder Library's `sa_is` onto typed arrays. Linear time; for n input bytes it uses about
 * 13n bytes at the top level (SA, LMS map, LMS lists, type bits) plus the recursion on at most
 * n/2 symbols.
 */

// The top level reads the bytes themselves (no 4n-byte copy as 32-bit symbols); the recursion's
// reduced strings are Int32Array.
type Sym = Int32Array | Uint8Array;

/**
 * The suffix array of `s`: suffix start positions in lexicographic order. With `out` (length
 * s.length), it is written there and returned, so a caller that needs it inside a larger array
 * (bsdiff's, with the empty suffix first) needs no second copy.
 */
export function suffixArray(s: Uint8Array, out?: Int32Array): Int32Array {
  return saIs(s, 255, out);
}

function saNaive(s: Sym): Int32Array {
  const n = s.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => {
    if (a === b) return 0;
    while (a < n && b < n) {
      if (s[a] !== s[b]) return s[a]! - s[b]!;
      a++;
      b++;
    }
    return a === n ? -1 : 1;
  });
  return Int32Array.from(idx);
}

function saIs(s: Sym, upper: number, out?: Int32Array): Int32Array {
  const n = s.length;
  if (out && out.length !== n) throw new RangeError('suffixArray: out must have the input\'s length');
  if (n < 16) {
    const small = n === 0 ? new Int32Array(0) : n === 1 ? Int32Array.of(0) : n === 2 ? (s[0]! < s[1]! ? Int32Array.of(0, 1) : Int32Array.of(1, 0)) : saNaive(s);
    if (!out) return small;
    out.set(small);
    return out;
  }

  const sa = out ?? new Int32Array(n);
  // ls[i] = 1 when suffix i is S-type (smaller than suffix i+1); the last one is L-type.
  const ls = new Uint8Array(n);
  for (let i = n - 2; i >= 0; i--) {
    ls[i] = s[i] === s[i + 1] ? ls[i + 1]! : s[i]! < s[i + 1]! ? 1 : 0;
  }
  const sumL = new Int32Array(upper + 2);
  const sumS = new Int32Array(upper + 2);
  for (let i = 0; i < n; i++) {
    if (!ls[i]) sumS[s[i]!]!++;
    else sumL[s[i]! + 1]!++;
  }
  for (let i = 0; i <= upper; i++) {
    sumS[i]! += sumL[i]!;
    if (i < upper) sumL[i + 1]! += sumS[i]!;
  }
  const buf = new Int32Array(upper + 2);


  let lmsMap: Int32Array | undefined = new Int32Array(n + 1).fill(-1);
  let m = 0;
  for (let i = 1; i < n; i++) if (!ls[i - 1] && ls[i]) lmsMap[i] = m++;
  const lms = new Int32Array(m);
  for (let i = 1, k = 0; i < n; i++) if (!ls[i - 1] && ls[i]) lms[k++] = i;

  induce(s, ls, sa, sumS, sumL, buf, lms);

  if (m > 0) {
    const sortedLms = new Int32Array(m);
    for (let i = 0, k = 0; i < n; i++) {
      const v = sa[i]!;
      if (lmsMap[v]! !== -1) sortedLms[k++] = v;
    }
    const recS = new Int32Array(m);
    let recUpper = 0;
    recS[lmsMap[sortedLms[0]!]!] = 0;
    for (let i = 1; i < m; i++) {
      let l = sortedLms[i - 1]!;
      let r = sortedLms[i]!;
      const endL = lmsMap[l]! + 1 < m ? lms[lmsMap[l]! + 1]! : n;
      const endR = lmsMap[r]! + 1 < m ? lms[lmsMap[r]! + 1]! : n;
      let same = true;
      if (endL - l !== endR - r) {
        same = false;
      } else {
        while (l < endL) {
          if (s[l] !== s[r]) break;
          l++;
          r++;
        }
        if (l === n || s[l] !== s[r]) same = false;
      }
      if (!same) recUpper++;
      recS[lmsMap[sortedLms[i]!]!] = recUpper;
    }
    lmsMap = undefined; // free before recursing
    const recSa = saIs(recS, recUpper);
    for (let i = 0; i < m; i++) sortedLms[i] = lms[recSa[i]!]!;
    induce(s, ls, sa, sumS, sumL, buf, sortedLms);
  }
  return sa;
}

function induce(s: Sym, ls: Uint8Array, sa: Int32Array, sumS: Int32Array, sumL: Int32Array, buf: Int32Array, lms: Int32Array): void {
  const n = s.length;
  sa.fill(-1);
  buf.set(sumS);
  for (let k = 0; k < lms.length; k++) {
    const d = lms[k]!;
    if (d === n) continue;
    sa[buf[s[d]!]!++] = d;
  }
  buf.set(sumL);
  sa[buf[s[n - 1]!]!++] = n - 1;
  for (let i = 0; i < n; i++) {
    const v = sa[i]!;
    if (v >= 1 && ls[v - 1] === 0) sa[buf[s[v - 1]!]!++] = v - 1;
  }
  buf.set(sumL);
  for (let i = n - 1; i >= 0; i--) {
    const v = sa[i]!;
    if (v >= 1 && ls[v - 1] === 1) sa[--buf[s[v - 1]! + 1]!] = v - 1;
  }
}
