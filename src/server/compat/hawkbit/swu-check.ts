import type { Readable } from 'node:stream';
import { CPIO_HEADER, CPIO_TRAILER, readCpioHeader } from '../../../util/cpio-newc.js';
import { ApiError } from '../../api-error.js';

/** Bounds of an uploaded .swu's structure (its total size is bounded by `serve --max-upload`). */
export const SWU_LIMITS = { maxEntries: 64, maxDescription: 256 * 1024, maxSignature: 64 * 1024, maxName: 255 } as const;

const bad = (why: string) => new ApiError('PW_BAD_SWU', `the .swu is refused: ${why}; build it with \`patchwire publish --swu-cert CERT.pem --swu-key KEY.pem\``);

/**
 * Reads an uploaded .swu once, as a stream, holding at most one header in memory: a cpio newc
 * archive whose first entry is `sw-description` and second `sw-description.sig` (as SWUpdate
 * reads them), at most SWU_LIMITS.maxEntries entries, closed by TRAILER!!! with nothing but zero
 * padding after it. Throws PW_BAD_SWU saying what is wrong. Returns the entry names.
 */
export async function checkSwu(source: Readable): Promise<string[]> {
  const names: string[] = [];
  let buf = Buffer.alloc(0);
  /** Data bytes of the current entry still to skip. */
  let skip = 0;
  let ended = false;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let c = chunk;
    while (c.length > 0) {
      if (ended) {
        if (c.some((b) => b !== 0)) throw bad('bytes follow its TRAILER!!! entry');
        c = c.subarray(c.length);
        continue;
      }
      if (skip > 0) {
        const n = Math.min(skip, c.length);
        skip -= n;
        c = c.subarray(n);
        continue;
      }
      buf = Buffer.concat([buf, c]);
      c = Buffer.alloc(0);
      const h = buf.length >= CPIO_HEADER ? readCpioHeader(buf, SWU_LIMITS.maxName) : 'short';
      if (h === 'short' || h === 'it ends inside a cpio entry name') {
        if (buf.length > CPIO_HEADER + SWU_LIMITS.maxName + 4) throw bad('a cpio header is too long');
        continue;
      }
      if (typeof h === 'string') throw bad(h);
      if (buf.length < h.dataOffset) continue;
      const i = names.length;
      if (i === 0 && h.name !== 'sw-description') throw bad(`its first entry is '${h.name}', not sw-description`);
      if (i === 0 && h.size > SWU_LIMITS.maxDescription) throw bad(`sw-description is ${h.size} bytes (at most ${SWU_LIMITS.maxDescription})`);
      if (i === 1 && h.name !== 'sw-description.sig') throw bad(`its second entry is '${h.name}', not sw-description.sig (SWUpdate takes signed images only)`);
      if (i === 1 && h.size > SWU_LIMITS.maxSignature) throw bad(`sw-description.sig is ${h.size} bytes (at most ${SWU_LIMITS.maxSignature})`);
      if (h.name === CPIO_TRAILER) {
        if (i < 3) throw bad('it holds no payload after sw-description and its signature');
        ended = true;
      } else {
        if (i >= SWU_LIMITS.maxEntries) throw bad(`it holds more than ${SWU_LIMITS.maxEntries} entries`);
        if (h.name.includes('/') || h.name === '.' || h.name === '..') throw bad(`entry '${h.name}' is not a plain file name`);
        if ((h.mode & 0o170000) !== 0o100000) throw bad(`entry '${h.name}' is not a regular file`);
        if (names.includes(h.name)) throw bad(`entry '${h.name}' appears twice`);
      }
      names.push(h.name);
      // What the buffer holds past the header is this entry's data (then padding, then the next header).
      const rest = buf.subarray(h.dataOffset);
      buf = Buffer.alloc(0);
      skip = h.next - h.dataOffset;
      c = rest;
    }
  }
  if (!ended) throw bad(names.length === 0 ? 'it is not a cpio newc archive' : 'it ends before its TRAILER!!! entry');
  if (skip > 0) throw bad('it ends inside an entry');
  return names.filter((n) => n !== CPIO_TRAILER);
}
