import { brotliDecompressSync } from 'node:zlib';
import { DeltaError, ENGINES, decodeContainer, sha256, type DeltaHeader } from './format.js';

/**
 * The agent side: pure TypeScript and node:zlib, no native code.
 *
 * Untrusted input is expected here (the agent verifies the delta's signature first, but a bug or
 * a compromised delta key must still not crash or exhaust the agent): every length is checked
 * before anything is allocated, every decompression is capped, every read from OLD and every
 * write into NEW is bounds-checked, and the result must hash to the header's sha256.
 * Memory: OLD (given) + NEW + the control stream.
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
