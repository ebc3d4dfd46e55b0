import { constants, brotliCompress, type BrotliOptions } from 'node:zlib';
import { promisify } from 'node:util';
import { suffixArray } from './sais.js';

/**
 * bsdiff-style diff (Colin Percival's scan over a suffix array of OLD), server side.
 *
 * The scan yields control triples (add length, copy length, seek). The NEW bytes are then
 * laid out in one "data" stream in the order the patcher writes them: for each triple, `add`
 * bytes of (new - old) byte differences (mostly zeros where the two agree) followed by `copy`
 * literal bytes of NEW. That stream is exactly as long as NEW, so the patcher decodes it into the
 * output buffer and adds OLD in place (memory: old + new + control).
 */
export interface BsdiffScan {
  /** Flattened triples: add, copy, seek, add, copy, seek, ... */
  ctrl: number[];
  /** NEW's length: add diffs and copy literals interleaved, in output order. */
  data: Buffer;
}

/** The suffix array with the empty suffix first, as bsdiff's search expects (length n + 1). */
function sortedSuffixes(old: Uint8Array): Int32Array {
  const sa = suffixArray(old);
  const I = new Int32Array(old.length + 1);
  I[0] = old.length;
  I.set(sa, 1);
  return I;
}

export function bsdiffScan(old: Uint8Array, neu: Uint8Array): BsdiffScan {
  const oldsize = old.length;
  const newsize = neu.length;
  const I = sortedSuffixes(old);
  const data = Buffer.alloc(newsize);
  const ctrl: number[] = [];
  let dp = 0;

  // Binary search over I for the longest match of neu[scan..]; lcp-accelerated.
  let matchPos = 0;
  const search = (scan: number): number => {
    const nrem = newsize - scan;
    let lo = 0;
    let hi = oldsize;
    let lcpLo = 0; // I[0] is the empty suffix
    let lcpHi = 0;
    {
      const o = I[hi]!;
      const max = Math.min(oldsize - o, nrem);
      while (lcpHi < max && old[o + lcpHi] === neu[scan + lcpHi]) lcpHi++;
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      const o = I[mid]!;
      let k = lcpLo < lcpHi ? lcpLo : lcpHi;
      const orem = oldsize - o;
      const max = orem < nrem ? orem : nrem;
      while (k < max && old[o + k] === neu[scan + k]) k++;
      // Is suffix(o) < neu[scan..]? A proper prefix sorts first.
      if (k === max ? orem < nrem : old[o + k]! < neu[scan + k]!) {
        lo = mid;
        lcpLo = k;
      } else {
        hi = mid;
        lcpHi = k;
      }
    }
    if (lcpLo > lcpHi) {
      matchPos = I[lo]!;
      return lcpLo;
    }
    matchPos = I[hi]!;
    return lcpHi;
  };

  let scan = 0;
  let len = 0;
  let pos = 0;
  let lastscan = 0;
  let lastpos = 0;
  let lastoffset = 0;
  while (scan < newsize) {
    let oldscore = 0;
    let scsc = (scan += len);
    for (; scan < newsize; scan++) {
      len = search(scan);
      pos = matchPos;
      for (; scsc < scan + len; scsc++) {
        if (scsc + lastoffset < oldsize && old[scsc + lastoffset] === neu[scsc]) oldscore++;
      }
      if ((len === oldscore && len !== 0) || len > oldscore + 8) break;
      if (scan + lastoffset < oldsize && old[scan + lastoffset] === neu[scan]) oldscore--;
    }
    if (len !== oldscore || scan === newsize) {
      let s = 0;
      let Sf = 0;
      let lenf = 0;
      for (let i = 0; lastscan + i < scan && lastpos + i < oldsize; ) {
        if (old[lastpos + i] === neu[lastscan + i]) s++;
        i++;
        if (s * 2 - i > Sf * 2 - lenf) {
          Sf = s;
          lenf = i;
        }
      }
      let lenb = 0;
      if (scan < newsize) {
        let s2 = 0;
        let Sb = 0;
        for (let i = 1; scan >= lastscan + i && pos >= i; i++) {
          if (old[pos - i] === neu[scan - i]) s2++;
          if (s2 * 2 - i > Sb * 2 - lenb) {
            Sb = s2;
            lenb = i;
          }
        }
      }
      if (lastscan + lenf > scan - lenb) {
        const overlap = lastscan + lenf - (scan - lenb);
        let s3 = 0;
        let Ss = 0;
        let lens = 0;
        for (let i = 0; i < overlap; i++) {
          if (neu[lastscan + lenf - overlap + i] === old[lastpos + lenf - overlap + i]) s3++;
          if (neu[scan - lenb + i] === old[pos - lenb + i]) s3--;
          if (s3 > Ss) {
            Ss = s3;
            lens = i + 1;
          }
        }
        lenf += lens - overlap;
        lenb -= lens;
      }
      for (let i = 0; i < lenf; i++) data[dp++] = (neu[lastscan + i]! - old[lastpos + i]!) & 0xff;
      const copy = scan - lenb - (lastscan + lenf);
      neu instanceof Buffer ? neu.copy(data, dp, lastscan + lenf, lastscan + lenf + copy) : data.set(neu.subarray(lastscan + lenf, lastscan + lenf + copy), dp);
      dp += copy;
      ctrl.push(lenf, copy, pos - lenb - (lastpos + lenf));
      lastscan = scan - lenb;
      lastpos = pos - lenb;
      lastoffset = pos - scan;
    }
  }
  if (dp !== newsize) throw new Error(`bsdiff scan covered ${dp} of ${newsize} bytes`);
  // The last seek leads nowhere; keep the old position inside OLD so the patcher can insist on it.
  if (ctrl.length > 0) ctrl[ctrl.length - 1] = 0;
  return { ctrl, data };
}

/** LEB128 for add/copy, zigzag LEB128 for seek. */
export function encodeControl(ctrl: number[]): Buffer {
  const out = Buffer.alloc(ctrl.length * 8 + 16);
  let p = 0;
  const put = (v: number): void => {
    while (v >= 0x80) {
      out[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    out[p++] = v;
  };
  for (let i = 0; i < ctrl.length; i += 3) {
    put(ctrl[i]!);
    put(ctrl[i + 1]!);
    const seek = ctrl[i + 2]!;
    put(seek < 0 ? -seek * 2 - 1 : seek * 2);
  }
  return out.subarray(0, p);
}

const brotli = promisify(brotliCompress);

export function brotliOptions(length: number): BrotliOptions {
  return {
    params: {
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_GENERIC,
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: Math.min(length, 2 ** 30),
    },
  };
}

export async function brotliMax(b: Buffer): Promise<Buffer> {
  return brotli(b, brotliOptions(b.length));
}
