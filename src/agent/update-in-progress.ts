import type { AgentPaths } from './paths.js';
import { loadUpdateRecord } from './update/update-record.js';

/**
 * Why a local command (`rollback`, `retry`) must not change the state now: an update record says
 * an update is half done, and its next run would overwrite what the command set. Undefined when
 * there is none.
 */
export async function updateInProgress(paths: AgentPaths, dir: string): Promise<string | undefined> {
  const update = await loadUpdateRecord(paths.update);
  if (!update) return undefined;
  return `an update to ${update.toVersion} is in progress in ${paths.dir} (saved state "${update.state}" in ${paths.update}): run \`patchwire check --dir ${dir}\` to finish it first; nothing was changed`;
}
