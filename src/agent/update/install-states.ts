import { join } from 'node:path';
import { isHigher } from '../../protocol/index.js';
import { fetchTarget, verifyDownload } from '../download.js';
import { NetworkError, ServerError } from '../errors.js';
import { runHealthCheck } from '../health.js';
import { readCurrent, removeCurrent, stageRelease, switchCurrent } from '../install.js';
import { DEFAULT_HEALTH_TIMEOUT_SECONDS } from '../state.js';
import { downloadOpts, need, releaseCustom, save, type UpdateContext } from './context.js';
import { runDeltaState } from './delta-state.js';
import type { StateHandler } from './machine.js';
import { outcomeOf } from './update-record.js';

/** `delta`: rebuild the new tree from a delta (see delta-state.ts); any failure falls back to `download`. */
export const deltaState: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  return runDeltaState({
    paths: ctx.paths, state: ctx.state, record: r, custom: releaseCustom(ctx, r), fetch: ctx.fetch, signal: ctx.signal,
    onTransfer: (t) => (ctx.transfer = t),
  });
};

/** `download`: fetch the archive into `downloads/<sha256>.part`, resuming by Range. */
export const download: StateHandler<UpdateContext> = async (ctx) => {
  try {
    ctx.transfer = await fetchTarget(downloadOpts(ctx, need(ctx)));
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
export const verify: StateHandler<UpdateContext> = async (ctx) => {
  await verifyDownload(downloadOpts(ctx, need(ctx)));
  return 'success';
};

/** `stage`: build `versions/<to>` (via `.partial`) and check its tree hash; `current` is untouched. */
export const stage: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  await stageRelease(ctx.paths.dir, join(ctx.paths.downloads, r.sha256), releaseCustom(ctx, r), { signal: ctx.signal });
  return 'success';
};

/** `switch`: point `current` at the new version (atomic rename), then record it as applied. */
export const switchState: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  if ((await readCurrent(ctx.paths.dir)) !== r.toVersion) await switchCurrent(ctx.paths.dir, r.toVersion);
  if (ctx.state.version !== r.toVersion || ctx.state.previousVersion !== r.fromVersion) {
    await save(ctx, { version: r.toVersion, previousVersion: r.fromVersion });
  }
  return 'success';
};

/** `health`: run the configured health command in the new version; no command is healthy. */
export const health: StateHandler<UpdateContext> = async (ctx) => {
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
 * so it holds it (and anything lower) back until `patchwire retry`; after a first install too,
 * so a broken release is not downloaded and failed again at every check.
 */
export const rollbackState: StateHandler<UpdateContext> = async (ctx) => {
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
