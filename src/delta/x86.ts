/**
 * The x86-64 branch/address transform (both sides; the agent runs it, so it is pure TypeScript).
 *
 * Machine code changes between releases mostly by shifted addresses: a function that moved by k
 * bytes changes the 32-bit relative displacement of every call to it, from every call site that
 * did not move with it. Written as absolute targets ("displacement + position of the field"),
 * those fields are equal again wherever the target did not move, and all change the same way where
 * it did, which is what a delta and a compressor make cheap. The idea is the one of xz's x86 BCJ
 * filter and of Courgette/Zucchini's rel32 handling; this is our own formulation:
 *
 * - It works on segments (the bytes of one executable inside the tree stream); positions are
 *   counted from the segment's start, so an executable that moves in the tar is transformed the same.
 * - Candidate fields (a 32-bit little-endian displacement at `at`): `E8`/`E9` (call/jmp rel32, at
 *   +1), `0F 80..8F` (jcc rel32, at +2), and RIP-relative operands (ModRM `00 reg 101`) of common
 *   instructions, with a REX prefix (at +3) or without (at +2).
 * - A field is converted only when its value v lies in [-L, L), L the smallest power of two >= the
 *   segment's length (at least 64 KiB, at most 2^30); the converted value is (v + at) wrapped into
 *   the same [-L, L). So "is in range" reads the same before and after the conversion, and the
 *   inverse (v' - at, wrapped) finds exactly the fields the forward pass converted.
 * - The scan keeps a guard: the end of every byte a decision has read. A field is converted only
 *   if it starts at or past the guard, so no conversion ever changes a byte an earlier decision
 *   read, and the inverse pass (which sees converted bytes ahead of it) reads, at every position,
 *   the same bytes the forward pass read and makes the same decisions. After a conversion the scan
 *   resumes past the field.
 *
 * `x86Forward` then `x86Inverse` on the same segments restores every input exactly, whatever its
 * bytes (tested on real binaries and random data). Both run in place, read and write only inside
 * the given segments, and take time linear in the segment length.
 *
 * ARM64 would need its own transform: instructions are 4-byte aligned words, so the scan steps by
 * 4; `BL`/`B` carry a 26-bit word displacement (imm26 << 2), conditional branches and `CBZ`/`TBZ`
 * 19- or 14-bit ones, and addresses are built by `ADRP` (a 21-bit page displacement, split
 * immlo/immhi) followed by `ADD`/`LDR` with the low 12 bits, so the pair has to be normalised
 * together (ADRP's page relative to the instruction's own page).
 */

export interface Segment {
  /** Offset of the segment in the buffer. */
  start: number;
  /** Its length in bytes. */
  length: number;
}

/** Opcodes with a ModRM operand that, as ModRM `00 reg 101`, are RIP-relative in 64-bit mode. */
const RIP_OPCODES = new Uint8Array(256);
for (const op of [0x01, 0x03, 0x09, 0x0b, 0x11, 0x13, 0x19, 0x1b, 0x21, 0x23, 0x29, 0x2b, 0x31, 0x33, 0x39, 0x3b, 0x63, 0x85, 0x87, 0x89, 0x8b, 0x8d, 0xc7, 0xff]) {
  RIP_OPCODES[op] = 1;
}
/** Two-byte opcodes (0F xx) with a ModRM operand, for SSE loads/stores and movzx/movsx. */
const RIP_OPCODES_0F = new Uint8Array(256);
for (const op of [0x10, 0x11, 0x28, 0x29, 0x2e, 0x2f, 0x54, 0x57, 0x58, 0x59, 0x5c, 0x5e, 0x6f, 0x7f, 0xb6, 0xb7, 0xbe, 0xbf]) {
  RIP_OPCODES_0F[op] = 1;
}

/**
 * The candidate field at position i: its offset after i (1..4), or, when there is none, minus the
 * number of bytes the decision read (so the caller can guard them). Reads at most b[i..i+3].
 */
function fieldAt(b: Uint8Array, i: number): number {
  const x = b[i]!;
  if (x === 0xe8 || x === 0xe9) return 1;
  if (x === 0x0f) {
    const y = b[i + 1]!;
    if ((y & 0xf0) === 0x80) return 2;
    if (!RIP_OPCODES_0F[y]) return -2;
    return (b[i + 2]! & 0xc7) === 0x05 ? 3 : -3;
  }
  if ((x & 0xf0) === 0x40) {
    const y = b[i + 1]!;
    if (RIP_OPCODES[y]) return (b[i + 2]! & 0xc7) === 0x05 ? 3 : -3;
    if (y !== 0x0f) return -2;
    if (!RIP_OPCODES_0F[b[i + 2]!]) return -3;
    return (b[i + 3]! & 0xc7) === 0x05 ? 4 : -4;
  }
  if (RIP_OPCODES[x]) return (b[i + 1]! & 0xc7) === 0x05 ? 2 : -2;
  return -1;
}

/** The range bound L of a segment: a power of two >= its length, in [2^16, 2^30]. */
export function rangeBound(length: number): number {
  let l = 1 << 16;
  while (l < length && l < 1 << 30) l *= 2;
  return l;
}

function pass(b: Uint8Array, seg: Segment, dir: 1 | -1): void {
  const L = rangeBound(seg.length);
  const span = 2 * L;
  x86Pass(b, seg, (v, rel) => ((((v + dir * rel + L) % span) + span) % span) - L);
}

/**
 * The scan of one segment (its candidates, guard and range decisions, see above): each field
 * whose value v is in [-L, L) is replaced by `f(v, offset of the field from the segment's start)`,
 * which must be in [-L, L) too and, for the scan to be undone, a bijection for each offset
 * (x86-predict.ts uses other bijections than the absolute form's). `fields` finds the candidates
 * (the default: the ones above; it must read at most b[i..i+3] and answer as `fieldAt` does). No
 * checks: callers check the segment.
 */
export function x86Pass(b: Uint8Array, seg: Segment, f: (v: number, rel: number) => number, fields: (b: Uint8Array, i: number) => number = fieldAt): void {
  const base = seg.start;
  const end = seg.start + seg.length;
  const L = rangeBound(seg.length);
  let guard = base;
  // A field needs at most 4 opcode bytes before it and 4 bytes of its own.
  const last = end - 8;
  let i = base;
  while (i <= last) {
    const a = fields(b, i);
    if (a < 0) {
      // No field here: later conversions must not change what this decision read.
      if (i - a > guard) guard = i - a;
      i++;
      continue;
    }
    const at = i + a;
    // Signed little-endian 32-bit value; in range means -L <= v < L.
    const v = (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24));
    if (at >= guard && v >= -L && v < L) {
      const w = f(v, at - base);
      b[at] = w & 0xff;
      b[at + 1] = (w >>> 8) & 0xff;
      b[at + 2] = (w >>> 16) & 0xff;
      b[at + 3] = (w >>> 24) & 0xff;
      i = guard = at + 4;
      continue;
    }
    // Rejected: this decision read the opcode bytes and, when past the guard, the field too.
    const read = at >= guard ? at + 4 : at;
    if (read > guard) guard = read;
    i++;
  }
}

function check(b: Uint8Array, segments: readonly Segment[]): void {
  let prev = 0;
  for (const s of segments) {
    if (!Number.isSafeInteger(s.start) || !Number.isSafeInteger(s.length) || s.start < prev || s.length < 0 || s.length > b.length - s.start) {
      throw new RangeError('x86 transform: segments must be sorted, disjoint and inside the buffer');
    }
    prev = s.start + s.length;
  }
}

/** Converts the candidate fields of every segment to absolute form, in place. */
export function x86Forward(b: Uint8Array, segments: readonly Segment[]): void {
  check(b, segments);
  for (const s of segments) pass(b, s, 1);
}

/** Undoes `x86Forward` on the same segments, in place. */
export function x86Inverse(b: Uint8Array, segments: readonly Segment[]): void {
  check(b, segments);
  for (const s of segments) pass(b, s, -1);
}
