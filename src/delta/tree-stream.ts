import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packTree } from '../util/archive-pack.js';

/**
 * The "tree stream" of a folder: the uncompressed deterministic tar that `packTree` writes
 * (the release archive, gunzipped). Deltas turn one release's tree stream into the next one's;
 * the server has both archives, and an agent re-creates the old stream from its installed,
 * verified `versions/<old>/` folder with this function.
 */
export async function treeStream(dir: string, signal?: AbortSignal): Promise<Buffer> {
  const tmp = await mkdtemp(join(tmpdir(), 'patchwire-tree-'));
  try {
    const file = join(tmp, 'tree.tar');
    await packTree(dir, file, signal, { gzip: false });
    return await readFile(file, { signal });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
