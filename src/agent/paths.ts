import { join, resolve } from 'node:path';

/** Where the agent keeps things inside an install folder (docs/design.md section 6). */
export interface AgentPaths {
  dir: string;
  /** `.patchwire/`: the agent's own files. */
  meta: string;
  state: string;
  /** `.patchwire/update.json`: the update in progress (the update machine's saved state). */
  update: string;
  /** TUF metadata folder (`root.json` and the cached timestamp/snapshot/targets). */
  tuf: string;
  root: string;
  downloads: string;
  versions: string;
  /** The relative symlink to `versions/<version>`. */
  current: string;
}

export function agentPaths(dir: string): AgentPaths {
  const abs = resolve(dir);
  const meta = join(abs, '.patchwire');
  return {
    dir: abs,
    meta,
    state: join(meta, 'state.json'),
    update: join(meta, 'update.json'),
    tuf: join(meta, 'tuf'),
    root: join(meta, 'tuf', 'root.json'),
    downloads: join(meta, 'downloads'),
    versions: join(abs, 'versions'),
    current: join(abs, 'current'),
  };
}
