import { createHash } from 'node:crypto';

/**
 * The delta container, shared by every engine. All integers big-endian.
 *
 *   offset size
 *   0      8    magic "PWDELTA1"
 *   8      1    engine id (see ENGINES)
 *   9      3    zero
 *   12     8    old length
 *   20     32   old sha256
 *   52     8    new length
 *   60     32   new sha256
 *   92     1    stream count k (1..8)
 *   93     16k  per stream: decoded length (8), encoded length (8)
 *   ...         the k encoded streams, back to back; nothing may follow them
 */
export const MAGIC = Buffer.from('PWDELTA1', 'latin1');
export const FIXED_HEADER = 93;
export const MAX_STREAMS = 8;

/** Engine ids as stored in byte 8 of a delta. */
export const ENGINES = { 'bsdiff-brotli': 1, 'lz-brotli': 2, 'x86-bsdiff-brotli': 3, 'x86-lz-brotli': 4, 'sparse-brotli': 5, 'x86-sparse-brotli': 6, 'x86p-sparse-brotli': 7 } as const;
export type EngineName = keyof typeof ENGINES;

export class DeltaError extends Error {
  readonly code = 'DELTA_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeltaError';
  }
}

export interface StreamInfo {
  /** Decoded (uncompressed) length. */
  rawLength: number;
  /** The encoded bytes, a view into the delta. */
  data: Buffer;
}

export interface DeltaHeader {
  engine: number;
  oldLength: number;
  oldSha256: Buffer;
  newLength: number;
  newSha256: Buffer;
  streams: StreamInfo[];
}

export function sha256(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest();
}

export function encodeContainer(engine: number, old: Uint8Array, neu: Uint8Array, streams: Array<{ rawLength: number; data: Buffer }>): Buffer {
  if (streams.length < 1 || streams.length > MAX_STREAMS) throw new Error(`a delta holds 1..${MAX_STREAMS} streams`);
  const head = Buffer.alloc(FIXED_HEADER + 16 * streams.length);
  MAGIC.copy(head, 0);
  head[8] = engine;
  head.writeBigUInt64BE(BigInt(old.length), 12);
  sha256(old).copy(head, 20);
  head.writeBigUInt64BE(BigInt(neu.length), 52);
  sha256(neu).copy(head, 60);
  head[92] = streams.length;
  streams.forEach((s, i) => {
    head.writeBigUInt64BE(BigInt(s.rawLength), FIXED_HEADER + 16 * i);
    head.writeBigUInt64BE(BigInt(s.data.length), FIXED_HEADER + 16 * i + 8);
  });
  return Buffer.concat([head, ...streams.map((s) => s.data)]);
}

function readLength(b: Buffer, at: number, what: string): number {
  const v = b.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DeltaError(`corrupt delta: ${what} ${v} is out of range`);
  return Number(v);
}

/** Parses and checks the container's framing (not the streams' contents). */
export function decodeContainer(delta: Buffer): DeltaHeader {
  if (!Buffer.isBuffer(delta)) throw new DeltaError('a delta must be a Buffer');
  if (delta.length < FIXED_HEADER) throw new DeltaError(`not a patchwire delta: ${delta.length} bytes is shorter than its header`);
  if (!delta.subarray(0, 8).equals(MAGIC)) throw new DeltaError('not a patchwire delta: bad magic (expected PWDELTA1)');
  if (delta[9] !== 0 || delta[10] !== 0 || delta[11] !== 0) throw new DeltaError('corrupt delta: reserved header bytes are not zero');
  const k = delta[92]!;
  if (k < 1 || k > MAX_STREAMS) throw new DeltaError(`corrupt delta: stream count ${k} is out of range`);
  const headEnd = FIXED_HEADER + 16 * k;
  if (delta.length < headEnd) throw new DeltaError('corrupt delta: truncated stream table');
  const streams: StreamInfo[] = [];
  let at = headEnd;
  for (let i = 0; i < k; i++) {
    const rawLength = readLength(delta, FIXED_HEADER + 16 * i, `stream ${i} length`);
    const encLength = readLength(delta, FIXED_HEADER + 16 * i + 8, `stream ${i} encoded length`);
    if (encLength > delta.length - at) throw new DeltaError(`corrupt delta: stream ${i} runs past the end (truncated?)`);
    streams.push({ rawLength, data: delta.subarray(at, at + encLength) });
    at += encLength;
  }
  if (at !== delta.length) throw new DeltaError(`corrupt delta: ${delta.length - at} unexpected bytes after the last stream`);
  return {
    engine: delta[8]!,
    oldLength: readLength(delta, 12, 'old length'),
    oldSha256: delta.subarray(20, 52),
    newLength: readLength(delta, 52, 'new length'),
    newSha256: delta.subarray(60, 92),
    streams,
  };
}
