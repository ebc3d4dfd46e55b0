import { brotliDecompressSync } from 'node:zlib';
import { DeltaError, ENGINES, decodeContainer, sha256, type DeltaHeader, type StreamInfo } from './format.js';
import { decodeSegments, segmentsStreamLimit } from './segments.js';
import { x86Forward, x86Inverse, x86Restore } from './x86.js';
import { decodePredictions, predictInverse, predictStreamLimit } from './x86-predict.js';

/**
 * The agent side: pure TypeScript and node:zlib, no native code.
 *
 * Untrusted input is expected here (the agent verifies the delta's signature first, but a bug or
 * a compromised delta key must still not crash or exhaust the agent): every length is checked
 * before anything is allocated, every decompression is capped, every read from OLD and every
 * write into NEW is bounds-checked, and the result must hash to the header's sha256.
 * Memory: OLD (given) + NEW + the decoded streams (bsdiff: control; lz: at most NEW + its sequences).
 */
export interface ApplyOptions {
  /** The most bytes the delta may produce (the signed size of the target tree stream). */
  maxOutput: number;
}

export function applyDelta(old: Buffer, delta: Buffer, opts: ApplyOptions): Buffer {
  if (!Number.isSafeInteger(opts?.maxOutput) || opts.maxOutput < 0) throw new TypeError('applyDelta: maxOutput must be a non-negative integer');
  const h = decodeContainer(delta);
  if (h.newLength > opts.maxOutput) {
    throw new DeltaError(`delta would produce ${h.newLength} bytes, more than the allowed ${opts.maxOutput}`);
  }
  if (old.length !== h.oldLength || !sha256(old).equals(h.oldSha256)) {
    throw new DeltaError('delta was made for another old tree');
  }
  let out: Buffer;
  switch (h.engine) {
    case ENGINES['bsdiff-brotli']:
      out = applyBsdiff(old, h);
      break;
    case ENGINES['lz-brotli']:
      out = applyLz(old, h);
      break;
    case ENGINES['x86-bsdiff-brotli']:
      out = applyX86(old, h, 2, applyBsdiff);
      break;
    case ENGINES['x86-lz-brotli']:
      out = applyX86(old, h, 5, applyLz);
      break;
    case ENGINES['sparse-brotli']:
      out = applySparse(old, h);
      break;
    case ENGINES['x86-sparse-brotli']:
      out = applyX86(old, h, 4, applySparse);
      break;
    case ENGINES['x86p-sparse-brotli']:
      out = applyX86(old, h, 4, applySparse, true);
      break;
    default:
      throw new DeltaError(`delta uses unknown engine ${h.engine}; update the agent or use the full archive`);
  }
  if (out.length !== h.newLength || !sha256(out).equals(h.newSha256)) {
    throw new DeltaError('delta produced a tree whose sha256 does not match its header');
  }
  return out;
}

/** Decompresses one stream to exactly `rawLength` bytes, never more. */
function inflate(name: string, data: Buffer, rawLength: number): Buffer {
  let out: Buffer;
  try {
    out = brotliDecompressSync(data, {
      maxOutputLength: Math.max(1, rawLength),
      // One output chunk of the declared size: no second copy of the stream while concatenating.
      chunkSize: Math.max(64, rawLength),
    });
  } catch (err) {
    throw new DeltaError(`corrupt delta: the ${name} stream does not decompress to its declared ${rawLength} bytes`, { cause: err });
  }
  if (out.length !== rawLength) {
    throw new DeltaError(`corrupt delta: the ${name} stream decompresses to ${out.length} bytes, not the declared ${rawLength}`);
  }
  return out;
}

/**
 * x86-* engines: the inner engine's streams, then a segments stream (segments.ts); x86p-* then a
 * predict stream (x86-predict.ts), and NEW is undone by `predictInverse` instead. OLD is
 * transformed in place and restored before returning (also on error) from the list of the fields
 * it converted (4 bytes a field, at most 0.8x the executables' size, typically ~0.1x), so the memory
 * bound is the inner engine's plus that list; NEW comes out of the inner engine transformed and is
 * turned back in place.
 */
function applyX86(old: Buffer, h: DeltaHeader, inner: number, apply: (old: Buffer, h: DeltaHeader) => Buffer, predicted = false): Buffer {
  const count = inner + (predicted ? 2 : 1);
  if (h.streams.length !== count) throw new DeltaError(`corrupt delta: engine ${h.engine} has ${count} streams, not ${h.streams.length}`);
  const segInfo = h.streams[inner]!;
  if (segInfo.rawLength > segmentsStreamLimit) throw new DeltaError('corrupt delta: the segments stream is too long');
  const { old: oldSegs, neu: newSegs } = decodeSegments(inflate('segments', segInfo.data, segInfo.rawLength), old.length, h.newLength);
  // x86p-*: NEW comes out in OLD's label space (x86-predict.ts); its maps are checked before OLD is touched.
  let predictions: ReturnType<typeof decodePredictions> | undefined;
  if (predicted) {
    const info = h.streams[inner + 1]!;
    if (info.rawLength > predictStreamLimit) throw new DeltaError('corrupt delta: the predict stream is too long');
    predictions = decodePredictions(inflate('predict', info.data, info.rawLength), newSegs);
  }
  const innerHeader: DeltaHeader = { ...h, streams: h.streams.slice(0, inner) };
  const oldFields = x86Forward(old, oldSegs);
  let out: Buffer;
  try {
    out = apply(old, innerHeader);
  } finally {
    x86Restore(old, oldSegs, oldFields);
  }
  if (predictions) predictInverse(out, newSegs, predictions);
  else x86Inverse(out, newSegs);
  return out;
}

/** bsdiff-brotli: streams [control, data]; see bsdiff.ts for the layout. */
function applyBsdiff(old: Buffer, h: DeltaHeader): Buffer {
  if (h.streams.length !== 2) throw new DeltaError(`corrupt delta: bsdiff-brotli has 2 streams, not ${h.streams.length}`);
  const [ctrlInfo, dataInfo] = h.streams as [DeltaHeader['streams'][0], DeltaHeader['streams'][0]];
  const newLength = h.newLength;
  const oldLength = old.length;
  // A triple takes at most 3 varints of 8 bytes; each useful triple advances the output.
  if (ctrlInfo.rawLength > 24 * (newLength + 1)) throw new DeltaError('corrupt delta: control stream is too long for its output');
  if (dataInfo.rawLength !== newLength) throw new DeltaError('corrupt delta: data stream length differs from the new length');
  const ctrl = inflate('control', ctrlInfo.data, ctrlInfo.rawLength);
  const out = newLength === 0 ? Buffer.alloc(0) : inflate('data', dataInfo.data, newLength);

  let cp = 0;
  const clen = ctrl.length;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (cp >= clen) throw new DeltaError('corrupt delta: control stream ends inside a number');
      const b = ctrl[cp++]!;
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 0x80;
    }
    throw new DeltaError('corrupt delta: control number longer than 8 bytes');
  };

  let np = 0;
  let op = 0;
  while (cp < clen) {
    const add = varint();
    const copy = varint();
    const z = varint();
    const seek = z % 2 === 1 ? -(z + 1) / 2 : z / 2;
    if (add > newLength - np) throw new DeltaError('corrupt delta: add length runs past the new length');
    if (add > oldLength - op) throw new DeltaError('corrupt delta: add reads past the end of the old tree');
    for (let i = 0; i < add; i++) out[np + i] = out[np + i]! + old[op + i]!; // Uint8Array stores wrap mod 256
    np += add;
    op += add;
    if (copy > newLength - np) throw new DeltaError('corrupt delta: copy length runs past the new length');
    np += copy;
    op += seek;
    if (op < 0 || op > oldLength) throw new DeltaError('corrupt delta: seek leaves the old tree');
  }
  if (np !== newLength) throw new DeltaError(`corrupt delta: control covers ${np} of ${newLength} bytes`);
  return out;
}

/** sparse-brotli: streams [control, runs, diffs, extra]; see bsdiff.ts `sparseStreams` for the layout. */
function applySparse(old: Buffer, h: DeltaHeader): Buffer {
  if (h.streams.length !== 4) throw new DeltaError(`corrupt delta: sparse-brotli has 4 streams, not ${h.streams.length}`);
  const [ctrlInfo, runInfo, diffInfo, extraInfo] = h.streams as [StreamInfo, StreamInfo, StreamInfo, StreamInfo];
  const newLength = h.newLength;
  const oldLength = old.length;
  if (ctrlInfo.rawLength > 24 * (newLength + 1)) throw new DeltaError('corrupt delta: control stream is too long for its output');
  // Every pair of runs covers at least one byte of output; a number takes at most 8 bytes.
  if (runInfo.rawLength > 16 * (newLength + 1)) throw new DeltaError('corrupt delta: runs stream is too long for its output');
  if (diffInfo.rawLength > newLength || extraInfo.rawLength > newLength) throw new DeltaError('corrupt delta: diff or extra stream longer than the output');
  const ctrl = inflate('control', ctrlInfo.data, ctrlInfo.rawLength);
  const runs = inflate('runs', runInfo.data, runInfo.rawLength);
  const diffs = inflate('diffs', diffInfo.data, diffInfo.rawLength);
  const extra = inflate('extra', extraInfo.data, extraInfo.rawLength);
  const out = Buffer.alloc(newLength);

  const reader = (name: string, b: Buffer) => {
    let p = 0;
    return {
      next(): number {
        let v = 0;
        let mul = 1;
        for (let i = 0; i < 8; i++) {
          if (p >= b.length) throw new DeltaError(`corrupt delta: the ${name} stream ends inside a number`);
          const x = b[p++]!;
          v += (x & 0x7f) * mul;
          if ((x & 0x80) === 0) return v;
          mul *= 0x80;
        }
        throw new DeltaError(`corrupt delta: ${name} number longer than 8 bytes`);
      },
      more: () => p < b.length,
    };
  };
  const c = reader('control', ctrl);
  const r = reader('runs', runs);
  let zerosLeft = 0;
  let othersLeft = 0;
  let np = 0;
  let op = 0;
  let dp = 0;
  let ep = 0;
  while (c.more()) {
    const add = c.next();
    const copy = c.next();
    const z = c.next();
    const seek = z % 2 === 1 ? -(z + 1) / 2 : z / 2;
    if (add > newLength - np) throw new DeltaError('corrupt delta: add length runs past the new length');
    if (add > oldLength - op) throw new DeltaError('corrupt delta: add reads past the end of the old tree');
    let left = add;
    while (left > 0) {
      if (zerosLeft === 0 && othersLeft === 0) {
        zerosLeft = r.next();
        othersLeft = r.next();
        if (zerosLeft + othersLeft === 0) throw new DeltaError('corrupt delta: an empty pair of runs');
        if (zerosLeft > newLength || othersLeft > newLength) throw new DeltaError('corrupt delta: a run is longer than the output');
      }
      if (zerosLeft > 0) {
        const k = Math.min(zerosLeft, left);
        old.copy(out, np, op, op + k);
        zerosLeft -= k;
        left -= k;
        np += k;
        op += k;
      } else {
        const k = Math.min(othersLeft, left);
        if (k > diffs.length - dp) throw new DeltaError('corrupt delta: runs pass the end of the diffs stream');
        for (let i = 0; i < k; i++) out[np + i] = old[op + i]! + diffs[dp + i]!; // Uint8Array stores wrap mod 256
        othersLeft -= k;
        left -= k;
        np += k;
        op += k;
        dp += k;
      }
    }
    if (copy > newLength - np) throw new DeltaError('corrupt delta: copy length runs past the new length');
    if (copy > extra.length - ep) throw new DeltaError('corrupt delta: copy passes the end of the extra stream');
    extra.copy(out, np, ep, ep + copy);
    np += copy;
    ep += copy;
    op += seek;
    if (op < 0 || op > oldLength) throw new DeltaError('corrupt delta: seek leaves the old tree');
  }
  if (np !== newLength) throw new DeltaError(`corrupt delta: control covers ${np} of ${newLength} bytes`);
  if (zerosLeft !== 0 || othersLeft !== 0 || r.more() || dp !== diffs.length || ep !== extra.length) throw new DeltaError('corrupt delta: unused runs, diffs or extra bytes after the last control triple');
  return out;
}

/** lz-brotli: streams [literals, litLens, matchLens, codes, offsets]; see lz.ts for the layout. */
function applyLz(old: Buffer, h: DeltaHeader): Buffer {
  if (h.streams.length !== 5) throw new DeltaError(`corrupt delta: lz-brotli has 5 streams, not ${h.streams.length}`);
  const [litInfo, llInfo, mlInfo, codeInfo, offInfo] = h.streams as [StreamInfo, StreamInfo, StreamInfo, StreamInfo, StreamInfo];
  const newLength = h.newLength;
  const oldLength = old.length;
  // Every sequence writes at least one byte (match length >= 1); a number takes at most 8 bytes.
  if (litInfo.rawLength > newLength) throw new DeltaError('corrupt delta: more literals than output');
  if (codeInfo.rawLength > newLength) throw new DeltaError('corrupt delta: more sequences than output bytes');
  const maxNums = 8 * codeInfo.rawLength;
  if (llInfo.rawLength > maxNums || mlInfo.rawLength > maxNums || offInfo.rawLength > maxNums) {
    throw new DeltaError('corrupt delta: a number stream is too long for its sequence count');
  }
  const lits = inflate('literals', litInfo.data, litInfo.rawLength);
  const ll = inflate('literal length', llInfo.data, llInfo.rawLength);
  const ml = inflate('match length', mlInfo.data, mlInfo.rawLength);
  const codes = inflate('code', codeInfo.data, codeInfo.rawLength);
  const offs = inflate('offset', offInfo.data, offInfo.rawLength);
  const out = Buffer.alloc(newLength);

  const reader = (name: string, b: Buffer) => {
    let p = 0;
    return {
      next(): number {
        let v = 0;
        let mul = 1;
        for (let i = 0; i < 8; i++) {
          if (p >= b.length) throw new DeltaError(`corrupt delta: the ${name} stream ends inside a number`);
          const x = b[p++]!;
          v += (x & 0x7f) * mul;
          if ((x & 0x80) === 0) return v;
          mul *= 0x80;
        }
        throw new DeltaError(`corrupt delta: ${name} number longer than 8 bytes`);
      },
      done: () => p === b.length,
    };
  };
  const llR = reader('literal length', ll);
  const mlR = reader('match length', ml);
  const offR = reader('offset', offs);

  let rep0 = oldLength;
  let rep1 = oldLength;
  let rep2 = oldLength;
  let np = 0;
  let lp = 0;
  for (let s = 0; s < codes.length; s++) {
    const lit = llR.next();
    if (lit > newLength - np) throw new DeltaError('corrupt delta: literal run passes the new length');
    if (lit > lits.length - lp) throw new DeltaError('corrupt delta: literal run passes the literal stream');
    lits.copy(out, np, lp, lp + lit);
    np += lit;
    lp += lit;
    const len = mlR.next() + 1;
    if (len > newLength - np) throw new DeltaError('corrupt delta: match passes the new length');
    const code = codes[s]!;
    let dist: number;
    if (code === 0) {
      dist = rep0;
    } else if (code === 1) {
      dist = rep1;
      rep1 = rep0;
      rep0 = dist;
    } else if (code === 2) {
      dist = rep2;
      rep2 = rep1;
      rep1 = rep0;
      rep0 = dist;
    } else if (code === 3) {
      const z = offR.next();
      const d = z % 2 === 1 ? -(z + 1) / 2 : z / 2;
      dist = rep0 + d;
      rep2 = rep1;
      rep1 = rep0;
      rep0 = dist;
    } else {
      throw new DeltaError(`corrupt delta: unknown sequence code ${code}`);
    }
    // Virtual source: OLD ++ NEW-so-far; distance d copies from oldLength + np - d.
    if (!(dist >= 1 && dist <= oldLength + np)) throw new DeltaError('corrupt delta: match distance leaves the old tree and the output so far');
    let src = oldLength + np - dist;
    let left = len;
    if (src < oldLength) {
      const n = Math.min(left, oldLength - src);
      old.copy(out, np, src, src + n);
      np += n;
      src += n;
      left -= n;
    }
    if (left > 0) {
      let from = src - oldLength; // < np: already written
      if (from + left <= np) {
        out.copyWithin(np, from, from + left);
        np += left;
      } else {
        for (; left > 0; left--) out[np++] = out[from++]!;
      }
    }
  }
  const tail = newLength - np;
  if (tail !== lits.length - lp) throw new DeltaError(`corrupt delta: ${lits.length - lp} literals left for the last ${tail} bytes`);
  lits.copy(out, np, lp);
  if (!llR.done() || !mlR.done() || !offR.done()) throw new DeltaError('corrupt delta: unused numbers after the last sequence');
  return out;
}
