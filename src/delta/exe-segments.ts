import type { Segment } from './x86.js';

/**
 * Server side: the x86-64 executables inside a tree stream (a ustar/pax tar, see tree-stream.ts),
 * as segments for the x86 transform. Only a hint: a segment that is not really code only costs
 * delta size, never correctness (the transform is undone exactly and the result is hashed), so
 * this walks the headers and stops quietly at anything it does not understand.
 */
export function x86Executables(tar: Uint8Array, max = 1024): Segment[] {
  const out: Segment[] = [];
  for (let off = 0; off + 512 <= tar.length && out.length < max; ) {
    if (tar[off] === 0) break; // the end-of-archive blocks
    const size = octal(tar, off + 124, 12);
    if (size < 0 || size > tar.length - off - 512) break;
    const type = tar[off + 156];
    const data = off + 512;
    if ((type === 0x30 || type === 0) && isX86Executable(tar, data, size)) out.push({ start: data, length: size });
    off = data + Math.ceil(size / 512) * 512;
  }
  return out;
}

function octal(b: Uint8Array, at: number, len: number): number {
  let v = 0;
  let digits = 0;
  for (let i = at; i < at + len; i++) {
    const c = b[i]!;
    if (c === 0 || c === 0x20) {
      if (digits > 0) break;
      continue;
    }
    if (c < 0x30 || c > 0x37) return -1;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits > 0 ? v : -1;
}

const u16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/** ELF x86-64 (e_machine 62), PE32+ for x86-64 (machine 0x8664) or Mach-O x86-64. */
export function isX86Executable(b: Uint8Array, at: number, size: number): boolean {
  if (size < 64) return false;
  if (b[at] === 0x7f && b[at + 1] === 0x45 && b[at + 2] === 0x4c && b[at + 3] === 0x46) return u16(b, at + 18) === 62;
  if (b[at] === 0x4d && b[at + 1] === 0x5a) {
    const pe = u32(b, at + 0x3c);
    return pe + 6 <= size && u32(b, at + pe) === 0x00004550 && u16(b, at + pe + 4) === 0x8664;
  }
  return u32(b, at) === 0xfeedfacf && u32(b, at + 4) === 0x01000007;
}
