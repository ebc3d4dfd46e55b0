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

/** What x86-predict.ts needs to know of an executable's layout (offsets from its start). */
export interface ExeLayout {
  codeStart: number;
  codeEnd: number;
  ptrStart: number;
  ptrEnd: number;
  ptrBase: number;
}

/**
 * Server side: the code range and pointer range of the executable at `seg` (a hint, as above:
 * wrong answers cost only size). ELF: the code is the first executable PT_LOAD's file bytes; the
 * pointer range is what follows it, when every PT_LOAD has the same p_vaddr - p_offset (the
 * pointer base; a non-PIE binary's, e.g. 0x400000) and that base is in [2^16, 2^52]. Anything else
 * (PE, Mach-O, an ELF this does not follow): the whole file is code, no pointer range.
 */
export function exeLayout(b: Uint8Array, seg: { start: number; length: number }): ExeLayout {
  const whole: ExeLayout = { codeStart: 0, codeEnd: seg.length, ptrStart: 0, ptrEnd: 0, ptrBase: 0 };
  const at = seg.start;
  const size = seg.length;
  if (size < 64 || !(b[at] === 0x7f && b[at + 1] === 0x45 && b[at + 2] === 0x4c && b[at + 3] === 0x46) || b[at + 4] !== 2 || b[at + 5] !== 1) return whole;
  const u64 = (p: number): number => u32(b, p) + u32(b, p + 4) * 4294967296;
  const phoff = u64(at + 0x20);
  const phentsize = u16(b, at + 0x36);
  const phnum = u16(b, at + 0x38);
  if (phentsize < 56 || phoff > size || phnum * phentsize > size - phoff) return whole;
  let code: [number, number] | undefined;
  let base: number | undefined;
  let sameBase = true;
  for (let i = 0; i < phnum; i++) {
    const h = at + phoff + i * phentsize;
    if (u32(b, h) !== 1) continue; // PT_LOAD
    const off = u64(h + 8);
    const vaddr = u64(h + 16);
    const filesz = u64(h + 32);
    if (base === undefined) base = vaddr - off;
    else if (vaddr - off !== base) sameBase = false;
    if (!code && (u32(b, h + 4) & 1) !== 0 && off < size) code = [off, Math.min(size, off + filesz)];
  }
  if (!code) return whole;
  // A position-independent executable (base 0) holds no absolute pointers, only small integers that look like them.
  const ptrOk = sameBase && base !== undefined && base >= 1 << 16 && base <= 2 ** 52;
  return { codeStart: code[0], codeEnd: code[1], ptrStart: ptrOk ? code[1] : 0, ptrEnd: ptrOk ? size : 0, ptrBase: ptrOk ? base! : 0 };
}
