/**
 * gzip members (RFC 1952) whose deflate data is stored blocks only (RFC 1951 section 3.2.4): no
 * compression, so the bytes depend on nothing but the input (no zlib version, level or OS byte).
 * The Mender artifact writer frames its few small parts with them around a release's own gzip
 * stream: gzip readers, Go's included, read concatenated members as one stream.
 */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, as gzip uses it); not zlib.crc32, which Node 20 has only from 20.15. */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Largest stored block (its LEN field is 16 bits). */
const MAX_STORED = 0xffff;

/** One gzip member holding `data` uncompressed: fixed header (mtime 0, OS 255 "unknown"), stored blocks, CRC and size. */
export function storedGzipMember(data: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])];
  let pos = 0;
  do {
    const len = Math.min(MAX_STORED, data.length - pos);
    const head = Buffer.alloc(5);
    head[0] = pos + len >= data.length ? 1 : 0; // BFINAL on the last block, BTYPE 00
    head.writeUInt16LE(len, 1);
    head.writeUInt16LE(~len & 0xffff, 3);
    parts.push(head, data.subarray(pos, pos + len));
    pos += len;
  } while (pos < data.length);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  parts.push(trailer);
  return Buffer.concat(parts);
}
