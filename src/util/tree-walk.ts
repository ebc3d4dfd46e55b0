import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One entry below a walked folder. `rel` uses `/` separators whatever the platform, so that the
 * tree hash and the archive paths are the same everywhere.
 */
export type TreeEntry =
  | { kind: 'dir'; rel: string; abs: string }
  | { kind: 'file'; rel: string; abs: string; size: number; exec: boolean }
  | { kind: 'link'; rel: string; abs: string; target: string };

/**
 * Lists every entry below `root` (not `root` itself), sorted by relative path in UTF-8 byte
 * order. Uses lstat so symbolic links are reported, never followed (a link to `/` must not make
 * us hash or pack the whole disk). Sockets, fifos and devices are an error: they cannot be part
 * of a release. `root` itself is followed if it is a link, since callers name it explicitly.
 */
export async function walkTree(root: string, signal?: AbortSignal): Promise<TreeEntry[]> {
  const top = await stat(root);
  if (!top.isDirectory()) throw new Error(`${root} is not a folder`);
  const out: TreeEntry[] = [];
  const pending: string[] = [''];
  while (pending.length > 0) {
    signal?.throwIfAborted();
    const relDir = pending.pop()!;
    const names = await readdir(relDir === '' ? root : join(root, relDir));
    for (const name of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const abs = join(root, rel);
      let st;
      try {
        st = await lstat(abs);
      } catch (err) {
        // readdir gives names as UTF-8 strings; a name that is not valid UTF-8 comes back mangled
        // and cannot be found again. Say so rather than a bare ENOENT.
        throw new Error(`cannot read ${abs} (removed during the walk, or its name is not valid UTF-8)`, { cause: err });
      }
      if (st.isDirectory()) {
        out.push({ kind: 'dir', rel, abs });
        pending.push(rel);
      } else if (st.isFile()) {
        out.push({ kind: 'file', rel, abs, size: st.size, exec: (st.mode & 0o111) !== 0 });
      } else if (st.isSymbolicLink()) {
        out.push({ kind: 'link', rel, abs, target: await readlink(abs) });
      } else {
        const what = st.isSocket() ? 'a socket' : st.isFIFO() ? 'a fifo' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : 'of an unsupported type';
        throw new Error(`${abs} is ${what}; a tree may hold only files, folders and symbolic links`);
      }
    }
  }
  // Byte order of the UTF-8 path, not JS (UTF-16) order, so that other implementations agree.
  const keyed = out.map((e) => ({ e, key: Buffer.from(e.rel, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.e);
}

/**
 * Streams a file's bytes. O_NOFOLLOW: a file swapped for a link since the walk must fail, not
 * pull in whatever the link names.
 */
export async function* fileChunks(abs: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    yield* fh.createReadStream({ autoClose: false, signal }) as AsyncIterable<Buffer>;
  } finally {
    await fh.close();
  }
}
