import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { checkUrl, metadataBaseUrl, type CheckResponse } from '../../protocol/index.js';
import { parseCheckResponse } from '../check-response.js';
import { MovedNoticeError } from '../errors.js';
import { postJson } from '../http-json.js';
import type { AgentPaths } from '../paths.js';
import type { AgentState } from '../state.js';
import { TrustedRepository } from '../tuf-client.js';
import { verifyMovedNotice } from './moved-notice.js';

/** At most this many moved notices are followed in one check (patent flow step 3). */
export const MAX_MOVED_HOPS = 3;

/**
 * Sends the check, following verified moved notices (at most MAX_MOVED_HOPS, no loops). Each hop
 * verifies in a scratch metadata folder that starts from the trusted root, so a chain that fails
 * (a loop, an unreachable or unsigned server) leaves `.patchwire/tuf` exactly as it was. Only a
 * chain that verified to the end resets the real folder's freshness for the new server; the
 * caller then persists the new address.
 */
export async function checkFollowingMoves(
  state: AgentState,
  paths: AgentPaths,
  fetchFn: typeof fetch,
  signal: AbortSignal | undefined,
  installId?: string,
): Promise<{ server: string; response: CheckResponse; repo: TrustedRepository; nonce: string }> {
  const repoAt = (server: string, metadataDir: string) =>
    new TrustedRepository({ metadataDir, metadataBaseUrl: metadataBaseUrl(server, state.product) });
  // A fresh nonce per request (each hop too): the server signs it into its answer (verify-answer.ts).
  let nonce = '';
  const ask = async (server: string): Promise<CheckResponse> => {
    const url = checkUrl(server);
    nonce = randomBytes(16).toString('hex');
    // `deferred`: this agent understands a staged rollout's "not yet for you" (issue 11).
    const body = { deviceId: state.deviceId, product: state.product, channel: state.channel, version: state.version, nonce, deferred: true, ...(installId ? { installId } : {}) };
    return parseCheckResponse(await postJson(fetchFn, url, body, signal), url, state);
  };

  let server = state.server;
  let repo = repoAt(server, paths.tuf);
  let response = await ask(server);
  if (!response.moved) return { server, response, repo, nonce };

  await removeStaleMoveScratch(paths.tuf);
  const scratch = await mkdtemp(`${paths.tuf}.moves-`);
  try {
    const visited = [server];
    while (response.moved) {
      const url = await verifyMovedNotice({
        server, product: state.product, repo, target: response.moved.target, downloadsDir: paths.downloads, fetch: fetchFn, signal,
      });
      // A notice naming the server we are talking to: we are where it says.
      if (url === server) break;
      if (visited.includes(url)) {
        throw new MovedNoticeError(`moved notices form a loop (${[...visited, url].join(' -> ')}): the agent stays with ${state.server}; ask the operator to fix the notices`, server);
      }
      if (visited.length > MAX_MOVED_HOPS) {
        throw new MovedNoticeError(`more than ${MAX_MOVED_HOPS} moved notices in a row (${[...visited, url].join(' -> ')}): the agent stays with ${state.server}; ask the operator to point the notice at the final address`, server);
      }
      visited.push(url);
      server = url;
      // The new server's timestamp/snapshot/targets counters start anew; the trusted root stays.
      const hopDir = join(scratch, String(visited.length));
      await mkdir(hopDir);
      await copyFile(paths.root, join(hopDir, 'root.json'));
      repo = repoAt(server, hopDir);
      response = await ask(server);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  if (server === state.server) return { server, response, repo: repoAt(server, paths.tuf), nonce };
  repo = repoAt(server, paths.tuf);
  await repo.resetFreshness();
  return { server, response, repo, nonce };
}

/** Scratch folders of a chain that a kill interrupted. */
export async function removeStaleMoveScratch(tufDir: string): Promise<void> {
  const prefix = `${basename(tufDir)}.moves-`;
  for (const name of await readdir(dirname(tufDir))) {
    if (name.startsWith(prefix)) await rm(join(dirname(tufDir), name), { recursive: true, force: true });
  }
}
