import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isHigher, type CheckResponse, type ReleaseTargetCustom, type ReportRequest } from '../protocol/index.js';
import { parseCheckResponse } from './check-response.js';
import { downloadTarget } from './download.js';
import { MovedNoticeError, RollbackRefusedError, VerificationError } from './errors.js';
import { postJson } from './http-json.js';
import { applyRelease } from './install.js';
import { verifyMovedNotice } from './moved-notice.js';
import { agentPaths, type AgentPaths } from './paths.js';
import { trySendReport } from './report.js';
import { computeNextCheck, isDue } from './schedule.js';
import { loadState, saveState, type AgentState } from './state.js';
import { targetUrl } from './target-url.js';
import { TrustedRepository } from './tuf-client.js';

/** At most this many moved notices are followed in one check (patent flow step 3). */
export const MAX_MOVED_HOPS = 3;

export interface CheckOptions {
  dir: string;
  /** Check even when the next-check time has not come. */
  force?: boolean;
  now?: () => Date;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (received: number, total: number) => void;
}

/** What one check did; `check --json` prints it as is. */
export interface CheckResult {
  result: 'updated' | 'up-to-date' | 'not-due';
  /** The version applied after the check. */
  version: string | null;
  /** The version before this check. */
  previousVersion: string | null;
  server: string;
  nextCheckAt: string;
  patch?: { kind: 'full'; bytes: number };
}

/**
 * One pass of the agent flow (DESIGN.md section 2): stop when not due; send a pending report;
 * ask the server (following verified moved notices); when it offers a higher version, verify it
 * through TUF, download, apply and report `applied`; persist the next check time.
 * Throws AgentStateError, NetworkError, ServerError, BadResponseError, TufVerificationError,
 * VerificationError, MovedNoticeError or RollbackRefusedError; the state then keeps its server,
 * version and next-check time, so the next attempt starts over cleanly.
 */
export async function runCheck(opts: CheckOptions): Promise<CheckResult> {
  const now = opts.now ?? (() => new Date());
  const fetchFn = opts.fetch ?? fetch;
  const { signal } = opts;
  const paths = agentPaths(opts.dir);
  let state = await loadState(paths.state);
  const before = state.version;

  if (!opts.force && !isDue(now(), state.nextCheckAt)) {
    return { result: 'not-due', version: before, previousVersion: before, server: state.server, nextCheckAt: state.nextCheckAt! };
  }
  const checkedAt = now().toISOString();

  if (state.pendingReport && (await trySendReport(fetchFn, state.server, state.pendingReport, signal))) {
    state = { ...state, pendingReport: null };
    await saveState(paths.state, state);
  }

  const { server, response, repo } = await checkFollowingMoves(state, paths, fetchFn, signal);
  if (server !== state.server) {
    // The whole chain of moved notices verified: from now on the device talks to the new address.
    state = { ...state, server };
    await saveState(paths.state, state);
  }
  const finish = async (update: Partial<AgentState>): Promise<AgentState> => {
    const next = computeNextCheck({
      now: now(),
      intervalSeconds: state.intervalSeconds,
      schedule: response.schedule ? { at: new Date(response.schedule.at), spreadSeconds: response.schedule.spreadSeconds } : null,
      deviceId: state.deviceId,
    });
    state = { ...state, ...update, server, lastCheckAt: checkedAt, nextCheckAt: next.toISOString() };
    await saveState(paths.state, state);
    return state;
  };

  const offer = response.status === 'update' ? response.release : null;
  if (offer && !isHigher(offer.version, state.version)) {
    throw new RollbackRefusedError(
      `the server at ${server} offers version ${offer.version}, which is not higher than the applied ${state.version}: refused (rollback protection); check the server's releases`,
      offer.version,
      state.version,
    );
  }
  // The device rolled back from this version (or a higher one): never reinstall it or lower.
  const refused = offer !== null && state.rolledBack !== null && !isHigher(offer.version, state.rolledBack);
  if (offer && !refused) {
    const release = await verifyOffer(repo, response, state, signal);
    const archive = await downloadTarget({
      url: targetUrl(server, state.product, release.path, release.sha256),
      downloadsDir: paths.downloads,
      sha256: release.sha256,
      length: release.length,
      fetch: fetchFn,
      signal,
      onProgress: opts.onProgress,
    });
    await applyRelease(paths.dir, archive, release.custom, { signal });
    await rm(archive, { force: true });

    const report: ReportRequest = {
      deviceId: state.deviceId,
      product: state.product,
      channel: state.channel,
      event: 'applied',
      version: offer.version,
      previousVersion: before,
    };
    // Saved before reporting, with the report pending: a kill now still reports later.
    await finish({ version: offer.version, previousVersion: before, pendingReport: report });
    if (await trySendReport(fetchFn, server, report, signal)) {
      state = { ...state, pendingReport: null };
      await saveState(paths.state, state);
    }
    return { result: 'updated', version: offer.version, previousVersion: before, server, nextCheckAt: state.nextCheckAt!, patch: { kind: 'full', bytes: release.length } };
  }

  await finish({});
  return { result: 'up-to-date', version: before, previousVersion: before, server, nextCheckAt: state.nextCheckAt! };
}

/**
 * Sends the check, following verified moved notices (at most MAX_MOVED_HOPS, no loops). Each hop
 * verifies in a scratch metadata folder that starts from the trusted root, so a chain that fails
 * (a loop, an unreachable or unsigned server) leaves `.patchwire/tuf` exactly as it was. Only a
 * chain that verified to the end resets the real folder's freshness for the new server; the
 * caller then persists the new address.
 */
async function checkFollowingMoves(
  state: AgentState,
  paths: AgentPaths,
  fetchFn: typeof fetch,
  signal: AbortSignal | undefined,
): Promise<{ server: string; response: CheckResponse; repo: TrustedRepository }> {
  const repoAt = (server: string, metadataDir: string) =>
    new TrustedRepository({ metadataDir, metadataBaseUrl: `${server}/v1/products/${encodeURIComponent(state.product)}/tuf/` });
  const ask = async (server: string): Promise<CheckResponse> => {
    const url = `${server}/v1/check`;
    const body = { deviceId: state.deviceId, product: state.product, channel: state.channel, version: state.version };
    return parseCheckResponse(await postJson(fetchFn, url, body, signal), url, state);
  };

  let server = state.server;
  let repo = repoAt(server, paths.tuf);
  let response = await ask(server);
  if (!response.moved) return { server, response, repo };

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
  if (server === state.server) return { server, response, repo: repoAt(server, paths.tuf) };
  repo = repoAt(server, paths.tuf);
  await repo.resetFreshness();
  return { server, response, repo };
}

/** Scratch folders of a chain that a kill interrupted. */
async function removeStaleMoveScratch(tufDir: string): Promise<void> {
  const prefix = `${basename(tufDir)}.moves-`;
  for (const name of await readdir(dirname(tufDir))) {
    if (name.startsWith(prefix)) await rm(join(dirname(tufDir), name), { recursive: true, force: true });
  }
}

interface VerifiedRelease {
  path: string;
  length: number;
  sha256: string;
  custom: ReleaseTargetCustom;
}

/** Looks the offered release up in verified TUF metadata and checks its signed custom field. */
async function verifyOffer(repo: TrustedRepository, response: CheckResponse, state: AgentState, signal?: AbortSignal): Promise<VerifiedRelease> {
  const offer = response.release!;
  const target = await repo.getTarget(offer.target, signal);
  if (!target) {
    throw new VerificationError(`the server offers ${offer.target} (version ${offer.version}) but the signed TUF targets do not list it: refused; the server may be compromised or out of date`);
  }
  const c = (target.custom as { patchwire?: Record<string, unknown> }).patchwire;
  const problem =
    !c ? 'it has no patchwire custom field'
    : c.kind !== 'full' ? `its kind is ${String(c.kind)}, this agent applies "full" releases`
    : c.product !== state.product || c.channel !== state.channel ? `it is signed for ${String(c.product)}/${String(c.channel)}, not ${state.product}/${state.channel}`
    : c.version !== offer.version ? `it is signed as version ${String(c.version)}, not ${offer.version}`
    : typeof c.treeHash !== 'string' || !/^[0-9a-f]{64}$/.test(c.treeHash) ? 'its treeHash is malformed'
    : !Number.isSafeInteger(c.treeBytes) || (c.treeBytes as number) < 0 ? 'its treeBytes is malformed'
    : undefined;
  if (problem) {
    throw new VerificationError(`signed target ${target.path} does not match the offer: ${problem}; refused`);
  }
  return { path: target.path, length: target.length, sha256: target.sha256, custom: { patchwire: c as ReleaseTargetCustom['patchwire'] } };
}
