import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BLOCK, encodeHeader, padding } from '../../../util/tar-format.js';
import { storedGzipMember } from './gzip-stored.js';

/**
 * A Mender artifact, format v3, for the `directory` update module (docs/compat.md, "Mender"),
 * written without the mender-artifact tool. An uncompressed ustar of, in the order the client
 * reads them (mender-artifact areader/reader.go):
 *
 *   version             {"format":"mender","version":3}
 *   manifest            "<sha256>  <name>" of version, header.tar and each data/0000/<file>
 *   header.tar          header-info and headers/0000/type-info (uncompressed: the reader takes
 *                       the compression from the name, and none is one of its choices)
 *   data/0000.tar.gz    a tar of update.tar (the release's tree archive, uncompressed) and
 *                       dest_dir (the product's --mender-dest)
 *
 * data/0000.tar.gz is three gzip members: a stored one holding update.tar's tar header, the
 * release's own .tar.gz verbatim (its members decompress to update.tar's bytes), and a stored one
 * with the padding, dest_dir and the end of the archive. So the tree is never recompressed (the
 * build is one pass to hash it and one to copy it), and nothing depends on a zlib version: the
 * same release, product and folder give the same bytes on any server (tar headers are the
 * packer's deterministic ones: mtime 0, uid/gid 0).
 *
 * Integrity is the manifest's sha256 lines, which the client checks while it installs; the
 * artifact is not signed (no `manifest.sig`): a signature would need the vendor's Mender key on the
 * server (docs/security.md).
 */
export interface MenderArtifactInput {
  /** artifact_name: the release's plain version, e.g. `1.1.0`. */
  artifactName: string;
  /** The device type it installs on: the product's name. */
  deviceType: string;
  /** The folder the `directory` module installs into. */
  destDir: string;
  /** The release's tree archive (.tar.gz) from the start, and its length. */
  tree: () => Promise<Readable>;
  treeLength: number;
}

/** What measureTree found: update.tar's hash and length. */
export interface TreeDigest {
  sha256: string;
  length: number;
}

/** The decompressed tree's sha256 and length; refuses more than `maxBytes` (a bound on a decompression bomb). */
export async function measureTree(gz: Readable, maxBytes: number): Promise<TreeDigest> {
  const hash = createHash('sha256');
  let length = 0;
  const gunzip = createGunzip();
  gz.on('error', (err) => gunzip.destroy(err));
  for await (const chunk of gz.pipe(gunzip) as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > maxBytes) {
      gz.destroy();
      throw new Error(`the release's tree is more than ${maxBytes} bytes uncompressed, the most a Mender artifact is built from`);
    }
    hash.update(chunk);
  }
  return { sha256: hash.digest('hex'), length };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A tar entry's header, bytes and padding. */
function entry(name: string, data: Buffer): Buffer {
  return Buffer.concat([encodeHeader({ name, mode: 0o644, size: data.length, typeflag: '0' }), data, Buffer.alloc(padding(data.length))]);
}

/** Every field the client reads is checked where it is set: refuse here what it would refuse there. */
function checkInput(i: MenderArtifactInput): void {
  if (!/^[\x21-\x7e]{1,256}$/.test(i.artifactName)) throw new Error(`artifact name ${JSON.stringify(i.artifactName)} must be 1-256 printable ASCII characters`);
  if (!/^[\x21-\x7e]{1,256}$/.test(i.deviceType)) throw new Error(`device type ${JSON.stringify(i.deviceType)} must be 1-256 printable ASCII characters`);
  if (!i.destDir.startsWith('/') || i.destDir === '/' || /[\0\n]/.test(i.destDir)) throw new Error(`dest_dir ${JSON.stringify(i.destDir)} must be an absolute folder other than /`);
}

/**
 * The artifact's bytes as a stream, and their total length (known before the first byte, so a
 * store can be told the size). `digest` is measureTree's answer for `input.tree`.
 */
export function menderArtifact(input: MenderArtifactInput, digest: TreeDigest): { length: number; stream: () => AsyncGenerator<Buffer> } {
  checkInput(input);
  const version = Buffer.from('{"format":"mender","version":3}');
  const headerInfo = Buffer.from(JSON.stringify({
    payloads: [{ type: 'directory' }],
    artifact_provides: { artifact_name: input.artifactName },
    artifact_depends: { device_type: [input.deviceType] },
  }));
  const typeInfo = Buffer.from(JSON.stringify({
    type: 'directory',
    artifact_provides: { 'rootfs-image.directory.version': input.artifactName },
    clears_artifact_provides: ['rootfs-image.directory.*'],
  }));
  const headerTar = Buffer.concat([entry('header-info', headerInfo), entry('headers/0000/type-info', typeInfo), Buffer.alloc(2 * BLOCK)]);
  const dest = Buffer.from(input.destDir);
  const manifest = Buffer.from([
    `${digest.sha256}  data/0000/update.tar`,
    `${sha256(dest)}  data/0000/dest_dir`,
    `${sha256(headerTar)}  header.tar`,
    `${sha256(version)}  version`,
  ].join('\n') + '\n');

  // data/0000.tar.gz: [update.tar's header] [the release's gzip verbatim] [padding, dest_dir, end].
  const before = storedGzipMember(encodeHeader({ name: 'update.tar', mode: 0o644, size: digest.length, typeflag: '0' }));
  const after = storedGzipMember(Buffer.concat([Buffer.alloc(padding(digest.length)), entry('dest_dir', dest), Buffer.alloc(2 * BLOCK)]));
  const dataLength = before.length + input.treeLength + after.length;

  const head = Buffer.concat([
    entry('version', version),
    entry('manifest', manifest),
    entry('header.tar', headerTar),
    encodeHeader({ name: 'data/0000.tar.gz', mode: 0o644, size: dataLength, typeflag: '0' }),
  ]);
  const tail = Buffer.concat([Buffer.alloc(padding(dataLength)), Buffer.alloc(2 * BLOCK)]);
  return {
    length: head.length + dataLength + tail.length,
    async *stream() {
      yield head;
      yield before;
      let seen = 0;
      for await (const chunk of await input.tree() as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > input.treeLength) break;
        yield chunk;
      }
      if (seen !== input.treeLength) throw new Error(`the release's archive is ${seen} bytes, not the ${input.treeLength} recorded`);
      yield after;
      yield tail;
    },
  };
}
