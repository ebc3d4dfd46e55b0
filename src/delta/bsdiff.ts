import { forgetSearchTable, suffixSearcher, type SearchMemo } from './sa-search.js';
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

/**
 * Scan heuristics. The defaults are Percival's: jump to a new match when it is 8 bytes longer
 * than what the current alignment scores, and extend matches forward/backward while at least half
 * the bytes agree. Text trees (several copies of the same code in OLD) do better when far jumps
 * must win by more (fewer control triples with large, unrepeated seeks) and extensions must agree
 * more (fewer noisy diff bytes): see TEXT_SCAN.
 */
export interface ScanOptions {
  /** A match must beat the current alignment's score by more than this to end a run (near jumps). */
  threshold?: number;
  /** The same margin for jumps of `nearDistance` or more bytes away from the current alignment. */
  farThreshold?: number;
  nearDistance?: number;
  /** Extend while matches * extNum - length * extDen grows: 2/1 is "at least half agree". */
  extNum?: number;
  extDen?: number;
  /** A precomputed `sortedSuffixes(old)`, to share between scans of the same OLD. */
  suffixes?: Int32Array;
  /** Search answers shared with the other scans of the same `suffixes`, OLD and NEW (sa-search.ts). */
  memo?: SearchMemo;
}

/** Tuned on typescript 5.6.3 -> 5.7.2 (88,411 -> 83,315 bytes); no worse on esbuild. */
export const TEXT_SCAN: ScanOptions = { threshold: 8, farThreshold: 48, nearDistance: 256, extNum: 4, extDen: 3 };

/**
 * The suffix array with the empty suffix first, as bsdiff's search expects (length n + 1). With
 * `into` (an earlier result for bytes of the same length, no longer needed) it is rebuilt there,
 * so two suffix arrays of one tree (plain and x86-transformed) never take memory together.
 */
export function sortedSuffixes(old: Uint8Array, into?: Int32Array): Int32Array {
  if (into && into.length !== old.length + 1) throw new RangeError('sortedSuffixes: into must have length old.length + 1');
  const I = into ?? new Int32Array(old.length + 1);
  if (into) forgetSearchTable(into);
  suffixArray(old, I.subarray(1));
  I[0] = old.length;
  return I;
}

export function bsdiffScan(old: Uint8Array, neu: Uint8Array, opts: ScanOptions = {}): BsdiffScan {
  return scan(old, neu, opts, true) as BsdiffScan;
}

/** The control triples alone (no NEW-sized data stream): what `sparseFromControl` needs. */
export function bsdiffControl(old: Uint8Array, neu: Uint8Array, opts: ScanOptions = {}): number[] {
  return scan(old, neu, opts, false).ctrl;
}

function scan(old: Uint8Array, neu: Uint8Array, opts: ScanOptions, withData: boolean): { ctrl: number[]; data?: Buffer } {
  const oldsize = old.length;
  const newsize = neu.length;
  const I = opts.suffixes ?? sortedSuffixes(old);
  if (I.length !== oldsize + 1) throw new Error('bsdiffScan: suffixes do not belong to old');
  const T = opts.threshold ?? 8;
  const TF = opts.farThreshold ?? T;
  const NEAR = opts.nearDistance ?? Infinity;
  const A = opts.extNum ?? 2;
  const B = opts.extDen ?? 1;
  const data = withData ? Buffer.alloc(newsize) : undefined;
  const ctrl: number[] = [];
  let dp = 0;

  const finder = suffixSearcher(I, old, neu, opts.memo);

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
      len = finder.search(scan);
      pos = I[finder.index]!;
      for (; scsc < scan + len; scsc++) {
        if (scsc + lastoffset < oldsize && old[scsc + lastoffset] === neu[scsc]) oldscore++;
      }
      if ((len === oldscore && len !== 0) || len > oldscore + (Math.abs(pos - scan - lastoffset) < NEAR ? T : TF)) break;
      if (scan + lastoffset < oldsize && old[scan + lastoffset] === neu[scan]) oldscore--;
    }
    if (len !== oldscore || scan === newsize) {
      let s = 0;
      let Sf = 0;
      let lenf = 0;
      for (let i = 0; lastscan + i < scan && lastpos + i < oldsize; ) {
        if (old[lastpos + i] === neu[lastscan + i]) s++;
        i++;
        if (s * A - i * B > Sf * A - lenf * B) {
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
          if (s2 * A - i * B > Sb * A - lenb * B) {
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
      const copy = scan - lenb - (lastscan + lenf);
      if (data) {
        for (let i = 0; i < lenf; i++) data[dp + i] = (neu[lastscan + i]! - old[lastpos + i]!) & 0xff;
        data.set(neu.subarray(lastscan + lenf, lastscan + lenf + copy), dp + lenf);
      }
      dp += lenf + copy;
      ctrl.push(lenf, copy, pos - lenb - (lastpos + lenf));
      lastscan = scan - lenb;
      lastpos = pos - lenb;
      lastoffset = pos - scan;
    }
  }
  opts.memo?.commit();
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

export function brotliOptions(length: number, quality = 11): BrotliOptions {
  return {
    params: {
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_GENERIC,
      [constants.BROTLI_PARAM_QUALITY]: quality,
      // No larger window than the input needs: at quality 10-11 Brotli's match finder takes
      // memory in proportion to the window (about 8 bytes per window byte), not to the input.
      [constants.BROTLI_PARAM_LGWIN]: Math.max(16, Math.min(24, Math.ceil(Math.log2(length + 1)))),
      [constants.BROTLI_PARAM_SIZE_HINT]: Math.min(length, 2 ** 30),
    },
  };
}

/** Brotli at quality 11 (the default), or at `quality` for the lower-cost mode. */
export async function brotliMax(b: Buffer, quality = 11): Promise<Buffer> {
  return brotli(b, brotliOptions(b.length, quality));
}

/**
 * The sparse layout of a bsdiff scan (engine sparse-brotli): the interleaved data stream split
 * into what the patcher adds to OLD and what it copies, with the (mostly zero) add bytes as runs:
 *
 *   runs    LEB128 pairs (zeros, others) over all add bytes in output order: `zeros` bytes equal to
 *           OLD's, then `others` bytes that take the next bytes of `diffs` (which may hold zeros:
 *           a run of others ends only at 4 or more zeros); zeros + others >= 1
 *   diffs   those bytes: (new - old) mod 256
 *   extra   the copied bytes, in output order
 *
 * Brotli 11 on the dense stream (NEW's length, mostly zeros) was most of the generation time, and
 * codes those zeros less tightly than the runs do.
 */
export function sparseStreams(ctrl: number[], data: Buffer): { runs: Buffer; diffs: Buffer; extra: Buffer } {
  let addTotal = 0;
  for (let i = 0; i < ctrl.length; i += 3) addTotal += ctrl[i]!;
  const add = Buffer.allocUnsafe(addTotal);
  const extra = Buffer.allocUnsafe(data.length - addTotal);
  let dp = 0;
  let ap = 0;
  let ep = 0;
  for (let i = 0; i < ctrl.length; i += 3) {
    ap += data.copy(add, ap, dp, dp + ctrl[i]!);
    dp += ctrl[i]!;
    ep += data.copy(extra, ep, dp, dp + ctrl[i + 1]!);
    dp += ctrl[i + 1]!;
  }
  return sparseLayout(add, extra);
}

/**
 * The same streams as `sparseStreams(ctrl, bsdiffScan(...).data)`, from the control triples and
 * the trees themselves, in one pass: neither the NEW-sized data stream nor the add bytes are
 * held, only what the streams keep.
 */
export function sparseFromControl(ctrl: number[], old: Uint8Array, neu: Uint8Array): { runs: Buffer; diffs: Buffer; extra: Buffer } {
  let addTotal = 0;
  for (let i = 0; i < ctrl.length; i += 3) addTotal += ctrl[i]!;
  if (addTotal > neu.length) throw new Error(`bsdiff control adds ${addTotal} bytes, more than NEW's ${neu.length}`);
  const extra = Buffer.allocUnsafe(neu.length - addTotal);
  let diffs = Buffer.allocUnsafe(1 << 16);
  let nd = 0;
  const runs = new Varints();
  // The run layout of sparseLayout, as a state machine over the add bytes as they are made.
  let zeros = 0;
  let others = 0;
  let pending = 0; // zeros seen inside a run of others (fewer than 4 so far)
  let inOthers = false;
  let np = 0;
  let op = 0;
  let ep = 0;
  for (let i = 0; i < ctrl.length; i += 3) {
    const a = ctrl[i]!;
    const c = ctrl[i + 1]!;
    if (a > neu.length - np || c > neu.length - np - a || op < 0 || a > old.length - op) throw new Error('bsdiff control runs outside OLD or NEW');
    if (nd + a + 4 > diffs.length) {
      const grown = Buffer.allocUnsafe(Math.max(diffs.length * 2, nd + a + 4));
      diffs.copy(grown, 0, 0, nd);
      diffs = grown;
    }
    for (let j = 0; j < a; j++) {
      const x = (neu[np + j]! - old[op + j]!) & 0xff;
      if (!inOthers) {
        if (x === 0) zeros++;
        else {
          inOthers = true;
          others = 1;
          diffs[nd++] = x;
        }
      } else if (x === 0) {
        if (++pending === 4) {
          runs.put(zeros);
          runs.put(others);
          zeros = 4;
          others = 0;
          pending = 0;
          inOthers = false;
        }
      } else {
        others += pending + 1;
        for (; pending > 0; pending--) diffs[nd++] = 0;
        diffs[nd++] = x;
      }
    }
    np += a;
    op += a;
    extra.set(neu.subarray(np, np + c), ep);
    ep += c;
    np += c;
    op += ctrl[i + 2]!;
  }
  if (np !== neu.length) throw new Error(`bsdiff control covers ${np} of ${neu.length} bytes`);
  if (inOthers) {
    runs.put(zeros);
    runs.put(others);
    if (pending > 0) {
      runs.put(pending);
      runs.put(0);
    }
  } else if (zeros > 0) {
    runs.put(zeros);
    runs.put(0);
  }
  return { runs: runs.done(), diffs: Buffer.from(diffs.subarray(0, nd)), extra };
}

function sparseLayout(add: Buffer, extra: Buffer): { runs: Buffer; diffs: Buffer; extra: Buffer } {
  const addTotal = add.length;
  const runs: number[] = [];
  const diffs = Buffer.allocUnsafe(addTotal);
  let nd = 0;
  let p = 0;
  while (p < addTotal) {
    const z0 = p;
    while (p < addTotal && add[p] === 0) p++;
    const zeros = p - z0;
    const o0 = p;
    while (p < addTotal) {
      if (add[p] !== 0) {
        p++;
        continue;
      }
      let q = p;
      while (q < addTotal && add[q] === 0 && q - p < 4) q++;
      if (q - p >= 4 || q === addTotal) break;
      p = q;
    }
    nd += add.copy(diffs, nd, o0, p);
    runs.push(zeros, p - o0);
  }
  // An exact-size copy: a view would keep the (NEW-sized) allocation alive while the candidate waits.
  return { runs: encodeRuns(runs), diffs: Buffer.from(diffs.subarray(0, nd)), extra };
}

/** LEB128 numbers written as they come (no array of numbers on the JS heap); `done` is an exact-size copy. */
class Varints {
  private buf = Buffer.allocUnsafe(1 << 12);
  private len = 0;
  put(v: number): void {
    if (this.len + 10 > this.buf.length) {
      const grown = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

function encodeRuns(runs: number[]): Buffer {
  const r = Buffer.alloc(runs.length * 8);
  let rp = 0;
  for (let v of runs) {
    while (v >= 0x80) {
      r[rp++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    r[rp++] = v;
  }
  return Buffer.from(r.subarray(0, rp));
}
