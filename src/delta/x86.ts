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

/**
 * A set of candidate fields, as tables the scan reads: x86.ts's own (below) or x86-predict.ts's
 * second pass. `one`: one-byte opcodes with a ModRM operand (RIP-relative as ModRM `00 reg 101`,
 * also after a REX prefix); `two`: two-byte ones (0F xx); `jcc`: the rel32 branches E8/E9 and
 * 0F 80..8F too.
 */
export interface FieldSet {
  /**
   * Per first two bytes (b[i] | b[i + 1] << 8): 0 when the decision at i reads at most these two
   * bytes and finds no field, else the first byte's kind: 1 E8/E9, 2 the 0F escape, 3 a REX
   * prefix, 4 a `one` opcode.
   */
  readonly pair: Uint8Array;
  readonly one: Uint8Array;
  readonly two: Uint8Array;
  readonly jcc: boolean;
}

export function fieldSet(one: readonly number[], two: readonly number[], branches: boolean): FieldSet {
  const set = { pair: new Uint8Array(1 << 16), one: new Uint8Array(256), two: new Uint8Array(256), jcc: branches };
  for (const op of one) set.one[op] = 1;
  for (const op of two) set.two[op] = 1;
  for (let x = 0; x < 256; x++) {
    for (let y = 0; y < 256; y++) {
      let kind = 0;
      if ((x & 0xf0) === 0x40) kind = set.one[y] || y === 0x0f ? 3 : 0;
      else if (x === 0x0f) kind = (branches && (y & 0xf0) === 0x80) || set.two[y] ? 2 : 0;
      else if (branches && (x === 0xe8 || x === 0xe9)) kind = 1;
      else if (set.one[x]) kind = (y & 0xc7) === 0x05 ? 4 : 0;
      set.pair[x | (y << 8)] = kind;
    }
  }
  return set;
}

/**
 * x86.ts's candidates: E8/E9, 0F 80..8F, and RIP-relative operands of these one-byte opcodes and
 * of two-byte ones (0F xx) for SSE loads/stores and movzx/movsx.
 */
export const X86_FIELDS = fieldSet(
  [0x01, 0x03, 0x09, 0x0b, 0x11, 0x13, 0x19, 0x1b, 0x21, 0x23, 0x29, 0x2b, 0x31, 0x33, 0x39, 0x3b, 0x63, 0x85, 0x87, 0x89, 0x8b, 0x8d, 0xc7, 0xff],
  [0x10, 0x11, 0x28, 0x29, 0x2e, 0x2f, 0x54, 0x57, 0x58, 0x59, 0x5c, 0x5e, 0x6f, 0x7f, 0xb6, 0xb7, 0xbe, 0xbf],
  true,
);

/** The range bound L of a segment: a power of two >= its length, in [2^16, 2^30]. */
export function rangeBound(length: number): number {
  let l = 1 << 16;
  while (l < length && l < 1 << 30) l *= 2;
  return l;
}

function pass(b: Uint8Array, seg: Segment, dir: 1 | -1, fields = x86Fields(b, seg)): Int32Array {
  const L = rangeBound(seg.length);
  const base = seg.start;
  for (let k = 0; k < fields.length; k++) {
    const rel = fields[k]!;
    const at = base + rel;
    writeField(b, at, wrap(readField(b, at) + dir * rel, L));
  }
  return fields;
}

/** w wrapped into [-L, L) (L a power of two); one subtraction or addition for the sums the passes make. */
export function wrap(w: number, L: number): number {
  if (w >= L) w -= 2 * L;
  else if (w < -L) w += 2 * L;
  else return w;
  return w >= -L && w < L ? w : ((((w + L) % (2 * L)) + 2 * L) % (2 * L)) - L;
}

/** The signed little-endian 32-bit field at `at`. */
export const readField = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);

export function writeField(b: Uint8Array, at: number, w: number): void {
  b[at] = w & 0xff;
  b[at + 1] = (w >>> 8) & 0xff;
  b[at + 2] = (w >>> 16) & 0xff;
  b[at + 3] = (w >>> 24) & 0xff;
}

/**
 * The scan of one segment (its candidates, guard and range decisions, see above): the offsets
 * from the segment's start of the fields whose value v is in [-L, L), in order. A pass replaces
 * each by a value in [-L, L) that is, for the scan to be undone, a bijection of v for each offset
 * (x86-predict.ts uses other bijections than the absolute form's). The scan only reads: no
 * decision reads a byte of an earlier converted field, so the fields can be converted after it,
 * and the scan finds the same ones in the converted bytes. `until`: only the decisions at offsets
 * below it (the fields those find, all fields at offsets below it, and some after). No checks:
 * callers check the segment.
 */
export function x86Fields(b: Uint8Array, seg: Segment, set: FieldSet = X86_FIELDS, until = seg.length): Int32Array {
  const { pair, one, two, jcc } = set;
  const base = seg.start;
  const end = seg.start + seg.length;
  const L = rangeBound(seg.length);
  let out = new Int32Array(Math.max(64, seg.length >>> 6));
  let count = 0;
  let guard = base;
  // A field needs at most 4 opcode bytes before it and 4 bytes of its own.
  const last = Math.min(end - 8, base + until - 1);
  let i = base;
  while (i <= last) {
    const c = pair[b[i]! | (b[i + 1]! << 8)]!;
    // No field starts here and the decision read at most b[i], b[i + 1]: a later decision's field
    // starts at i + 2 or after, so the guard would not change any.
    if (c === 0) {
      i++;
      continue;
    }
    // The field's offset after i (1..4), or minus the number of bytes the decision read.
    let a: number;
    if (c === 1) a = 1;
    else if (c === 2) {
      const y = b[i + 1]!;
      if (jcc && (y & 0xf0) === 0x80) a = 2;
      else if (!two[y]) a = -2;
      else a = (b[i + 2]! & 0xc7) === 0x05 ? 3 : -3;
    } else if (c === 3) {
      const y = b[i + 1]!;
      if (one[y]) a = (b[i + 2]! & 0xc7) === 0x05 ? 3 : -3;
      else if (y !== 0x0f) a = -2;
      else if (!two[b[i + 2]!]) a = -3;
      else a = (b[i + 3]! & 0xc7) === 0x05 ? 4 : -4;
    } else a = 2; // a `one` opcode with ModRM 00 reg 101
    if (a < 0) {
      // No field here: later conversions must not change what this decision read.
      if (i - a > guard) guard = i - a;
      i++;
      continue;
    }
    const at = i + a;
    if (at >= guard) {
      // Signed little-endian 32-bit value; in range means -L <= v < L.
      const v = readField(b, at);
      if (v >= -L && v < L) {
        if (count === out.length) {
          const grown = new Int32Array(out.length * 2);
          grown.set(out);
          out = grown;
        }
        out[count++] = at - base;
        i = guard = at + 4;
        continue;
      }
      // Rejected: this decision read the opcode bytes and the field.
      guard = at + 4;
    }
    i++;
  }
  return out.subarray(0, count);
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

/**
 * Converts the candidate fields of every segment to absolute form, in place. Returns each
 * segment's converted fields (4 bytes a field: esbuild's 10 MB executable has 170,044), for
 * `x86Restore`.
 */
export function x86Forward(b: Uint8Array, segments: readonly Segment[]): Int32Array[] {
  check(b, segments);
  return segments.map((s) => pass(b, s, 1));
}

/** Undoes `x86Forward` on the same segments, in place (a scan of each segment). */
export function x86Inverse(b: Uint8Array, segments: readonly Segment[]): void {
  check(b, segments);
  for (const s of segments) pass(b, s, -1);
}

/**
 * Undoes `x86Forward` on the same segments and bytes with the fields it returned, without
 * scanning again (the fields are the ones the inverse scan would find).
 */
export function x86Restore(b: Uint8Array, segments: readonly Segment[], fields: readonly Int32Array[]): void {
  check(b, segments);
  if (fields.length !== segments.length) throw new RangeError('x86 transform: one field list per segment');
  segments.forEach((s, i) => pass(b, s, -1, fields[i]!));
}
