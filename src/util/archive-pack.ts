import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { realpath, rm } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { checkEntryPath, linkTargetProblem } from './archive-paths.js';
import { BLOCK, MAX_OCTAL_SIZE, encodeHeader, encodePax, padding } from './tar-format.js';
import { fileChunks, walkTree, type TreeEntry } from './tree-walk.js';

/**
 * Packs a folder into a deterministic gzip-compressed tar (ustar, with pax headers for paths
 * longer than ustar allows): entries sorted by path, mtime 0, uid/gid 0, modes 0644/0755 for
 * files and 0755 for folders; symbolic links kept as links. Same tree -> same bytes.
 * Used on the publisher's side by `patchwire publish`.
 */
export interface PackResult {
  /** sha256 hex of the written archive bytes. */
  sha256: string;
  length: number;
}

export interface PackOptions {
  /**
   * false writes the plain tar (the "tree stream" that deltas are computed on) instead of gzip;
   * the tar bytes are the same either way. Default true.
   */
  gzip?: boolean;
}

export async function packTree(dir: string, outFile: string, signal?: AbortSignal, options: PackOptions = {}): Promise<PackResult> {
  // An archive written inside the tree would pack itself, half-written.
  const realDir = await realpath(dir);
  const realOut = join(await realpath(dirname(outFile)), basename(outFile));
  if (realOut.startsWith(realDir + sep)) throw new Error(`cannot write the archive ${outFile} inside the folder being packed`);

  const entries = await walkTree(dir, signal);
  // Refuse here what every agent would refuse on extraction, so a bad tree fails at publish time.
  for (const e of entries) {
    const p = checkEntryPath(e.rel);
    const problem = 'problem' in p ? p.problem : e.kind === 'link' ? linkTargetProblem(e.rel, e.target) : undefined;
    if (problem) throw new Error(`cannot pack ${JSON.stringify(e.rel)}: ${problem}`);
  }

  const hash = createHash('sha256');
  let length = 0;
  try {
    await pipeline(
      Readable.from(tarStream(entries, signal)),
      // Fixed level: the bytes (and so the signed hash) must not depend on zlib defaults.
      options.gzip === false ? async function* (tar: AsyncIterable<Buffer>) { yield* tar; } : createGzip({ level: 9 }),
      async function* (gz: AsyncIterable<Buffer>) {
        for await (const chunk of gz) {
          hash.update(chunk);
          length += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(outFile, { flags: 'w' }),
      { signal },
    );
  } catch (err) {
    await rm(outFile, { force: true }); // no half-written archive that looks like a real one
    throw err;
  }
  return { sha256: hash.digest('hex'), length };
}

async function* tarStream(entries: TreeEntry[], signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const e of entries) {
    signal?.throwIfAborted();
    const name = e.kind === 'dir' ? `${e.rel}/` : e.rel;
    const link = e.kind === 'link' ? e.target : '';
    const size = e.kind === 'file' ? e.size : 0;
    const pax: Array<[string, string]> = [];
    if (!fitsUstar(name)) pax.push(['path', name]);
    if (!fitsUstar(link)) pax.push(['linkpath', link]);
    if (size > MAX_OCTAL_SIZE) pax.push(['size', String(size)]);
    if (pax.length > 0) {
      const body = encodePax(pax);
      yield encodeHeader({ name: asciiStub(`PaxHeaders/${name}`), mode: 0o644, size: body.length, typeflag: 'x' });
      yield body;
      yield Buffer.alloc(padding(body.length));
    }
    yield encodeHeader({
      // With a pax record the ustar field holds only an ASCII stand-in for readers without pax.
      name: fitsUstar(name) ? name : asciiStub(name),
      linkname: fitsUstar(link) ? link : asciiStub(link),
      mode: e.kind === 'link' ? 0o777 : e.kind === 'dir' || (e.kind === 'file' && e.exec) ? 0o755 : 0o644,
      size: size > MAX_OCTAL_SIZE ? 0 : size,
      typeflag: e.kind === 'dir' ? '5' : e.kind === 'link' ? '2' : '0',
    });
    if (e.kind === 'file') {
      yield* fileData(e.abs, e.size, signal);
      yield Buffer.alloc(padding(e.size));
    }
  }
  yield Buffer.alloc(2 * BLOCK); // end-of-archive marker
}

/** Streams a file; it must still have the size written in its header. */
async function* fileData(abs: string, size: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of fileChunks(abs, signal)) {
    seen += chunk.length;
    if (seen > size) break;
    yield chunk;
  }
  if (seen !== size) throw new Error(`${abs} changed size while being packed`);
}

function fitsUstar(s: string): boolean {
  return s.length <= 100 && /^[\x20-\x7e]*$/.test(s);
}

function asciiStub(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
}
