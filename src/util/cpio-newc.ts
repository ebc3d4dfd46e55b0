/**
 * The cpio "newc" format (magic 070701, ASCII hex header fields, 4-byte alignment, closed by a
 * `TRAILER!!!` entry), as SWUpdate's .swu images use it. Writing: `cpioEntry` and `cpioTrailer`
 * give the bytes of one entry; reading: `readCpioHeader` parses one header. Deterministic: mtime,
 * uid, gid, inode and device numbers are fixed, so the same files give the same bytes.
 */
export const CPIO_MAGIC = '070701';
export const CPIO_HEADER = 110;
export const CPIO_TRAILER = 'TRAILER!!!';
/** newc stores the size in 8 hex digits. */
export const CPIO_MAX_FILE = 0xffffffff;

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** One header, as readCpioHeader returns it. */
export interface CpioHeader {
  name: string;
  size: number;
  mode: number;
  /** Bytes from the header's start to the file's data (header, name, padding). */
  dataOffset: number;
  /** Bytes from the header's start to the next header. */
  next: number;
}

function header(name: string, size: number, mode: number, ino: number): Buffer {
  const nameBytes = Buffer.from(name + '\0', 'utf8');
  const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameBytes.length, 0];
  const head = Buffer.from(CPIO_MAGIC + fields.map(hex8).join(''), 'ascii');
  return Buffer.concat([head, nameBytes, Buffer.alloc(pad4(CPIO_HEADER + nameBytes.length))]);
}

/** The header of a regular file entry (mode 0644) and the padding that must follow its `size` bytes. */
export function cpioEntry(name: string, size: number, ino: number): { head: Buffer; tail: Buffer } {
  if (size > CPIO_MAX_FILE) throw new Error(`${name} is ${size} bytes: cpio newc holds at most ${CPIO_MAX_FILE} bytes per file`);
  return { head: header(name, size, 0o100644, ino), tail: Buffer.alloc(pad4(size)) };
}

export function cpioTrailer(): Buffer {
  return header(CPIO_TRAILER, 0, 0, 0);
}

/** Parses the header at the start of `buf` (at least CPIO_HEADER bytes plus the name); a reason when it is not one. */
export function readCpioHeader(buf: Buffer, maxName = 255): CpioHeader | string {
  if (buf.length < CPIO_HEADER) return 'it ends inside a cpio header';
  if (buf.toString('ascii', 0, 6) !== CPIO_MAGIC) return 'an entry does not start with the cpio newc magic 070701';
  const field = (i: number): number => {
    const s = buf.toString('ascii', 6 + i * 8, 14 + i * 8);
    return /^[0-9a-fA-F]{8}$/.test(s) ? parseInt(s, 16) : NaN;
  };
  const mode = field(1);
  const size = field(6);
  const nameSize = field(11);
  if (![mode, size, nameSize].every(Number.isFinite)) return 'a cpio header holds a field that is not hex';
  if (nameSize < 2 || nameSize > maxName + 1) return `a cpio entry name is ${nameSize - 1} bytes (1 to ${maxName} allowed)`;
  if (buf.length < CPIO_HEADER + nameSize) return 'it ends inside a cpio entry name';
  if (buf[CPIO_HEADER + nameSize - 1] !== 0) return 'a cpio entry name is not NUL-terminated';
  const name = buf.toString('utf8', CPIO_HEADER, CPIO_HEADER + nameSize - 1);
  const dataOffset = CPIO_HEADER + nameSize + pad4(CPIO_HEADER + nameSize);
  return { name, size, mode, dataOffset, next: dataOffset + size + pad4(size) };
}
