import { DeltaError } from './format.js';
import type { Segment } from './x86.js';

/**
 * The segments stream of the x86-* engines (both sides): where the executables are in OLD and in
 * NEW. LEB128 numbers: OLD's segment count, then per segment (gap after the previous segment's
 * end, length); then the same for NEW. The apply side checks every number against the tree's
 * length, so a hostile stream can only name bytes inside OLD and NEW.
 */
export const MAX_SEGMENTS = 1024;
/** Two counts and two numbers per segment, 8 bytes a number at most. */
export const segmentsStreamLimit = 8 * (2 + 4 * MAX_SEGMENTS);

export function encodeSegments(old: readonly Segment[], neu: readonly Segment[]): Buffer {
  const out: number[] = [];
  const put = (v: number): void => {
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
  };
  for (const list of [old, neu]) {
    if (list.length > MAX_SEGMENTS) throw new Error(`at most ${MAX_SEGMENTS} segments`);
    put(list.length);
    let end = 0;
    for (const s of list) {
      put(s.start - end);
      put(s.length);
      end = s.start + s.length;
    }
  }
  return Buffer.from(out);
}

export function decodeSegments(b: Buffer, oldLength: number, newLength: number): { old: Segment[]; neu: Segment[] } {
  let p = 0;
  const next = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (p >= b.length) throw new DeltaError('corrupt delta: the segments stream ends inside a number');
      const x = b[p++]!;
      v += (x & 0x7f) * mul;
      if ((x & 0x80) === 0) return v;
      mul *= 0x80;
    }
    throw new DeltaError('corrupt delta: segments number longer than 8 bytes');
  };
  const list = (length: number, what: string): Segment[] => {
    const count = next();
    if (count > MAX_SEGMENTS) throw new DeltaError(`corrupt delta: ${count} ${what} segments, more than ${MAX_SEGMENTS}`);
    const out: Segment[] = [];
    let end = 0;
    for (let i = 0; i < count; i++) {
      const gap = next();
      const len = next();
      if (gap > length - end || len > length - end - gap) throw new DeltaError(`corrupt delta: a segment runs past the end of the ${what} tree`);
      out.push({ start: end + gap, length: len });
      end += gap + len;
    }
    return out;
  };
  const old = list(oldLength, 'old');
  const neu = list(newLength, 'new');
  if (p !== b.length) throw new DeltaError('corrupt delta: unexpected bytes after the segments');
  return { old, neu };
}
