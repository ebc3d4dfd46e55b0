import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isHigher, type CheckResponse, type ReleaseTargetCustom, type ReportRequest } from '../protocol/index.js';
import { parseCheckResponse } from './check-response.js';
import { fetchTarget, verifyDownload } from './download.js';
import { MovedNoticeError, NetworkError, RollbackRefusedError, ServerError, VerificationError } from './errors.js';
import { runHealthCheck } from './health.js';
import { acceptDelta, runDeltaState } from './delta-state.js';
import { pruneVersions, removeLeftovers } from './housekeeping.js';
import { postJson } from './http-json.js';
import { readCurrent, removeCurrent, removeVersion, stageRelease, switchCurrent } from './install.js';
import type { StateHandler, UpdateStateName } from './machine.js';
import { verifyMovedNotice } from './moved-notice.js';
import type { AgentPaths } from './paths.js';
import { trySendReport } from './report.js';
import { computeNextCheck } from './schedule.js';
import { DEFAULT_HEALTH_TIMEOUT_SECONDS, DEFAULT_KEEP, saveState, type AgentState } from './state.js';
import { targetUrl } from './target-url.js';
import { TrustedRepository } from './tuf-client.js';
import { outcomeOf, removeUpdateRecord, saveUpdateRecord, type UpdateRecord } from './update-record.js';

/** At most this many moved notices are followed in one check (patent flow step 3). */
export const MAX_MOVED_HOPS = 3;

/** What the states share during one run of the machine. */
export interface UpdateContext {
  paths: AgentPaths;
  state: AgentState;
  /** The update in progress (created by `check`, loaded from disk on a resume). */
  record: UpdateRecord | null;
  /** The error of the state that failed last in this run. */
  error?: unknown;
  now: () => Date;
  fetch: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (received: number, total: number) => void;
  /** When this run's check was sent (`lastCheckAt`); null for a resumed update without a check. */
  checkedAt: string | null;
  /** The server and answer of this run's check. */
  server: string;
  response: CheckResponse | null;
  /** The health command's verdict, for the `rolled-back` report. */
  healthDetail?: string;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function save(ctx: UpdateContext, update: Partial<AgentState>): Promise<void> {
  ctx.state = { ...ctx.state, ...update };
  await saveState(ctx.paths.state, ctx.state);
}

function custom(ctx: UpdateContext, r: UpdateRecord): ReleaseTargetCustom {
  return {
    patchwire: { kind: 'full', product: ctx.state.product, channel: ctx.state.channel, version: r.toVersion, treeHash: r.treeHash, treeBytes: r.treeBytes, treeFiles: r.treeFiles },
  };
}

function need(ctx: UpdateContext): UpdateRecord {
  if (!ctx.record) throw new Error('internal error: an update state ran without an update record');
  return ctx.record;
}

function downloadOpts(ctx: UpdateContext, r: UpdateRecord) {
  return {
    url: targetUrl(r.server, ctx.state.product, r.target, r.sha256),
    downloadsDir: ctx.paths.downloads,
    sha256: r.sha256,
    length: r.length,
    fetch: ctx.fetch,
    signal: ctx.signal,
    onProgress: ctx.onProgress,
  };
}

/**
 * `check`: send a pending report, ask the server (following verified moved notices), refuse a
 * lower offer, skip a version the device rolled back from, and verify the offer through TUF.
 */
const check: StateHandler<UpdateContext> = async (ctx) => {
  const { paths, fetch: fetchFn, signal } = ctx;
  if (ctx.state.pendingReport && (await trySendReport(fetchFn, ctx.state.server, ctx.state.pendingReport, signal))) {
    await save(ctx, { pendingReport: null });
  }
  ctx.checkedAt = ctx.now().toISOString();
  const { server, response, repo } = await checkFollowingMoves(ctx.state, paths, fetchFn, signal);
  // The whole chain of moved notices verified: from now on the device talks to the new address.
  if (server !== ctx.state.server) await save(ctx, { server });
  ctx.server = server;
  ctx.response = response;

  const offer = response.status === 'update' ? response.release : null;
  if (!offer) return 'nothing-to-do';
  const { state } = ctx;
  if (!isHigher(offer.version, state.version)) {
    throw new RollbackRefusedError(
      `the server at ${server} offers version ${offer.version}, which is not higher than the applied ${state.version}: refused (rollback protection); check the server's releases`,
      offer.version,
      state.version,
    );
  }
  // The device rolled back from this version (or a higher one): never reinstall it or lower.
  if (state.rolledBack !== null && !isHigher(offer.version, state.rolledBack)) return 'nothing-to-do';
  const release = await verifyOffer(repo, response, state, signal);
  const c = release.custom.patchwire;
  // A delta from the version this device runs, if the delegated deltas role signed it; an
  // unusable offer is ignored (the full archive is always there).
  let delta: UpdateRecord['delta'] = null;
  if (offer.delta && state.version !== null && offer.delta.from === state.version) {
    const t = await repo.getTarget(offer.delta.target, signal).catch(() => undefined);
    const accepted = acceptDelta(t, state, state.version, offer.version);
    if (typeof accepted !== 'string') delta = accepted;
  }
  ctx.record = {
    format: 1,
    state: 'download',
    server,
    fromVersion: state.version,
    fromPreviousVersion: state.previousVersion,
    toVersion: offer.version,
    target: release.path,
    sha256: release.sha256,
    length: release.length,
    treeHash: c.treeHash,
    treeBytes: c.treeBytes,
    treeFiles: Number.isSafeInteger(c.treeFiles) && c.treeFiles >= 0 ? c.treeFiles : 0,
    schedule: response.schedule ? { at: response.schedule.at, spreadSeconds: response.schedule.spreadSeconds } : null,
    startedAt: ctx.now().toISOString(),
    failure: null,
    reported: false,
    delta,
  };
  return 'success';
};

/** `delta`: rebuild the new tree from a delta (see delta-state.ts); any failure falls back to `download`. */
const deltaState: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  return runDeltaState({ paths: ctx.paths, state: ctx.state, record: r, custom: custom(ctx, r), fetch: ctx.fetch, signal: ctx.signal });
};

/** `download`: fetch the archive into `downloads/<sha256>.part`, resuming by Range. */
const download: StateHandler<UpdateContext> = async (ctx) => {
  try {
    await fetchTarget(downloadOpts(ctx, need(ctx)));
    return 'success';
  } catch (err) {
    if (err instanceof NetworkError || err instanceof ServerError) {
      ctx.error = err;
      return 'retry';
    }
    throw err;
  }
};

/** `verify`: the downloaded bytes against the signed length and sha256. */
const verify: StateHandler<UpdateContext> = async (ctx) => {
  await verifyDownload(downloadOpts(ctx, need(ctx)));
  return 'success';
};

/** `stage`: build `versions/<to>` (via `.partial`) and check its tree hash; `current` is untouched. */
const stage: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  await stageRelease(ctx.paths.dir, join(ctx.paths.downloads, r.sha256), custom(ctx, r), { signal: ctx.signal });
  return 'success';
};

/** `switch`: point `current` at the new version (atomic rename), then record it as applied. */
const switchState: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  if ((await readCurrent(ctx.paths.dir)) !== r.toVersion) await switchCurrent(ctx.paths.dir, r.toVersion);
  if (ctx.state.version !== r.toVersion || ctx.state.previousVersion !== r.fromVersion) {
    await save(ctx, { version: r.toVersion, previousVersion: r.fromVersion });
  }
  return 'success';
};

/** `health`: run the configured health command in the new version; no command is healthy. */
const health: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  const cmd = ctx.state.healthCmd;
  if (!cmd) return 'success';
  const verdict = await runHealthCheck(cmd, {
    cwd: ctx.paths.current,
    version: r.toVersion,
    timeoutMs: (ctx.state.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT_SECONDS) * 1000,
  });
  ctx.healthDetail = verdict.detail;
  if (verdict.ok) return 'success';
  ctx.error = new Error(`version ${r.toVersion} failed its health check: ${verdict.detail}`);
  return 'failure';
};

/**
 * `rollback`: point `current` back at the old version (or remove it after a first install), and
 * restore the state. After a failed health check the device also remembers the version it left,
 * so it never installs it (or anything lower) again.
 */
const rollbackState: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  const current = await readCurrent(ctx.paths.dir);
  if (r.fromVersion === null) {
    if (current !== null) await removeCurrent(ctx.paths.dir);
  } else if (current !== r.fromVersion) {
    await switchCurrent(ctx.paths.dir, r.fromVersion);
  }
  const rolledBack = outcomeOf(r) === 'rolled-back' && isHigher(r.toVersion, ctx.state.rolledBack) ? r.toVersion : ctx.state.rolledBack;
  await save(ctx, { version: r.fromVersion, previousVersion: r.fromPreviousVersion, rolledBack });
  return 'success';
};

/**
 * `report`: `applied` and `rolled-back` are queued as the pending report first (state.json, then
 * `reported` in the record: a kill still reports them, once), then sent; `failed` is sent once,
 * best effort, and not kept.
 */
const report: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  if (!r.reported) {
    const outcome = outcomeOf(r);
    const base = { deviceId: ctx.state.deviceId, product: ctx.state.product, channel: ctx.state.channel };
    if (outcome === 'failed' || outcome === 'retry') {
      const detail = `update to ${r.toVersion} failed in ${r.failure?.state ?? '?'}: ${r.failure?.message ?? ''}`.slice(0, 1000);
      await trySendReport(ctx.fetch, r.server, { ...base, event: 'failed', version: r.fromVersion, previousVersion: r.fromVersion, detail }, ctx.signal);
      r.reported = true;
      return 'success';
    }
    const rep: ReportRequest = outcome === 'applied'
      ? { ...base, event: 'applied', version: r.toVersion, previousVersion: r.fromVersion }
      : { ...base, event: 'rolled-back', version: r.fromVersion, previousVersion: r.toVersion, detail: (r.failure?.message ?? '').slice(0, 1000) };
    await save(ctx, { pendingReport: rep });
    r.reported = true;
    await saveUpdateRecord(ctx.paths.update, r);
  }
  const pending = ctx.state.pendingReport;
  if (pending && (await trySendReport(ctx.fetch, r.server, pending, ctx.signal))) await save(ctx, { pendingReport: null });
  return 'success';
};

/**
 * `cleanup`: remove the download (kept after a `retry`, for the Range resume), temporary files and
 * `.partial` folders; after a rollback, the version left; after an applied update, the versions
 * beyond the `keep` previous ones (never `current`, never the rollback target).
 */
const cleanup: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  const outcome = outcomeOf(r);
  await removeLeftovers(ctx.paths);
  if (outcome !== 'retry') {
    for (const name of await readdir(ctx.paths.downloads).catch(() => [] as string[])) {
      if (name === r.sha256 || name === `${r.sha256}.part` || outcome === 'applied') await rm(join(ctx.paths.downloads, name), { recursive: true, force: true });
    }
  }
  if (outcome === 'rolled-back' && (await readCurrent(ctx.paths.dir)) !== r.toVersion) await removeVersion(ctx.paths.dir, r.toVersion);
  if (outcome === 'applied') {
    await pruneVersions(ctx.paths, { current: r.toVersion, rollbackTarget: r.fromVersion, keep: ctx.state.keep ?? DEFAULT_KEEP });
  }
  return 'success';
};

/**
 * `done`: the end. After a completed check or update, persist the next check time (patent flow
 * step 6); after a failed one, leave the state as it was. Then the update record goes.
 */
const done: StateHandler<UpdateContext> = async (ctx) => {
  const r = ctx.record;
  const outcome = r ? outcomeOf(r) : ctx.error === undefined ? 'applied' : 'failed';
  if (outcome === 'applied' || outcome === 'rolled-back') {
    const schedule = ctx.response ? ctx.response.schedule : r?.schedule ?? null;
    const next = computeNextCheck({
      now: ctx.now(),
      intervalSeconds: ctx.state.intervalSeconds,
      schedule: schedule ? { at: new Date(schedule.at), spreadSeconds: schedule.spreadSeconds } : null,
      deviceId: ctx.state.deviceId,
    });
    await save(ctx, { lastCheckAt: ctx.checkedAt ?? ctx.state.lastCheckAt, nextCheckAt: next.toISOString() });
  }
  if (r) await removeUpdateRecord(ctx.paths.update);
  return 'success';
};

/** The handler of every state; the wiring between them is TRANSITIONS in machine.ts. */
export const STATE_HANDLERS: Readonly<Record<UpdateStateName, StateHandler<UpdateContext>>> = {
  check,
  delta: deltaState,
  download,
  verify,
  stage,
  switch: switchState,
  health,
  rollback: rollbackState,
  report,
  cleanup,
  done,
};

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
export async function removeStaleMoveScratch(tufDir: string): Promise<void> {
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

export { errorText };
