/**
 * ustar header layout (POSIX.1-1988) and pax extended records (POSIX.1-2001): encoding for the
 * packer, decoding for the reader. Byte offsets are the standard's; see `man 5 tar`.
 */
export const BLOCK = 512;
/** Largest size the 12-byte octal field holds (11 digits); larger files need a pax `size`. */
export const MAX_OCTAL_SIZE = 0o77777777777;

export class CorruptArchiveError extends Error {
  override name = 'CorruptArchiveError';
  constructor(detail: string) {
    super(`archive is corrupt: ${detail}`);
  }
}

export interface HeaderFields {
  /** At most 100 bytes; longer names go in a pax header first. */
  name: string;
  mode: number;
  size: number;
  typeflag: string;
  linkname?: string;
}

/** Encodes one deterministic header: uid/gid 0, no user names, mtime 0. */
export function encodeHeader(f: HeaderFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, 0, 100, f.name);
  writeOctal(b, 100, 8, f.mode);
  writeOctal(b, 108, 8, 0);
  writeOctal(b, 116, 8, 0);
  writeOctal(b, 124, 12, f.size);
  writeOctal(b, 136, 12, 0);
  b.write(f.typeflag, 156, 1, 'latin1');
  writeString(b, 157, 100, f.linkname ?? '');
  b.write('ustar\x0000', 257, 8, 'latin1');
  writeOctal(b, 329, 8, 0);
  writeOctal(b, 337, 8, 0);
  // Checksum: sum of all bytes with the field itself as spaces, 6 octal digits, NUL, space.
  b.fill(0x20, 148, 156);
  b.write(checksum(b).toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** `<len> <key>=<value>\n` records, where len counts the whole record including its own digits. */
export function encodePax(records: Array<[string, string]>): Buffer {
  const parts = records.map(([k, v]) => {
    const body = Buffer.byteLength(` ${k}=${v}\n`);
    let len = body + 1;
    while (len !== body + String(len).length) len = body + String(len).length; // settles in <= 2 steps
    return Buffer.from(`${len} ${k}=${v}\n`, 'utf8');
  });
  return Buffer.concat(parts);
}

export interface ParsedHeader {
  name: Uint8Array;
  linkname: Uint8Array;
  mode: number;
  size: number;
  typeflag: string;
}

/** Decodes a header block after verifying its checksum. */
export function parseHeader(b: Buffer): ParsedHeader {
  const stored = parseNumber(b, 148, 8, 'checksum');
  const sum = checksum(b, true);
  // Some old writers summed signed bytes; accept either, as GNU tar does.
  if (stored !== sum.unsigned && stored !== sum.signed) throw new CorruptArchiveError('header checksum mismatch');
  const ustar = b.toString('latin1', 257, 263) === 'ustar\0'; // POSIX; GNU's 'ustar  ' has no prefix
  let name: Uint8Array = field(b, 0, 100);
  if (ustar) {
    const prefix = field(b, 345, 155);
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  return {
    name,
    linkname: field(b, 157, 100),
    mode: parseNumber(b, 100, 8, 'mode'),
    size: parseNumber(b, 124, 12, 'size'),
    typeflag: b.toString('latin1', 156, 157),
  };
}

/** Parses a pax body into key -> raw value bytes (values are UTF-8 by the standard). */
export function parsePax(body: Buffer): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    const lenText = space < 0 ? '' : body.toString('latin1', pos, space);
    if (!/^[1-9][0-9]{0,8}$/.test(lenText)) throw new CorruptArchiveError('bad pax record length');
    const end = pos + Number(lenText);
    if (end > body.length || body[end - 1] !== 0x0a) throw new CorruptArchiveError('bad pax record');
    const rec = body.subarray(space + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new CorruptArchiveError('bad pax record');
    out.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1));
    pos = end;
  }
  return out;
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function checksum(b: Buffer): number;
function checksum(b: Buffer, both: true): { unsigned: number; signed: number };
function checksum(b: Buffer, both?: true): number | { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return both ? { unsigned, signed } : unsigned;
}

/** Octal, or GNU base-256 (high bit set) which GNU tar uses for sizes of 8 GiB and more. */
function parseNumber(b: Buffer, off: number, len: number, what: string): number {
  if (b[off]! & 0x80) {
    if (b[off]! & 0x40) throw new CorruptArchiveError(`negative ${what}`);
    let v = b[off]! & 0x3f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + b[off + i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw new CorruptArchiveError(`${what} too large`);
    }
    return v;
  }
  const text = b.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new CorruptArchiveError(`bad ${what} field`);
  return parseInt(text, 8);
}

/** A NUL-terminated (or full-width) byte field. */
function field(b: Buffer, off: number, len: number): Buffer {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return nul < 0 ? f : f.subarray(0, nul);
}

function writeString(b: Buffer, off: number, len: number, s: string): void {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > len) throw new Error(`tar field overflow: ${JSON.stringify(s)}`);
  bytes.copy(b, off);
}

function writeOctal(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}
