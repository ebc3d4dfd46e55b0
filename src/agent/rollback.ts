import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportRequest } from '../protocol/index.js';
import type { AgentResult } from './agent-result.js';
import { RollbackUnavailableError } from './errors.js';
import { switchCurrent } from './install.js';
import { agentPaths } from './paths.js';
import { withSafeFolderLock } from './folder-safety.js';
import { trySendReport } from './report.js';
import { deviceAuthFetch } from './auth-fetch.js';
import { lightFetch } from './light-fetch.js';
import { loadState, saveState } from './state.js';
import { updateInProgress } from './update-in-progress.js';

export interface RollbackOptions {
  dir: string;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** How long to wait for another command working on the folder (default 10 s). */
  lockWaitMs?: number;
}

/** What `patchwire rollback` did, in the fields `check` uses too (agent-result.ts). */
export interface RollbackResult extends AgentResult {
  result: 'rolled-back';
  /** The version `current` points at now. */
  version: string;
  /** The version the device left (= `previousVersion`); held back from now on (`heldBack`). */
  rolledBackFrom?: string;
  /** False when the `rolled-back` report could not be sent; it goes out before the next check. */
  reported: boolean;
}

/**
 * Switches `current` back to the previous version and records that the device rolled back from
 * the version it left, then reports `rolled-back`. Throws RollbackUnavailableError when there is
 * no previous version, or its folder is gone.
 */
export async function rollback(opts: RollbackOptions): Promise<RollbackResult> {
  return withSafeFolderLock(opts.dir, { command: 'rollback', waitMs: opts.lockWaitMs, signal: opts.signal }, () => rollbackLocked(opts));
}

async function rollbackLocked(opts: RollbackOptions): Promise<RollbackResult> {
  const paths = agentPaths(opts.dir);
  let state = await loadState(paths.state);
  const busy = await updateInProgress(paths, opts.dir);
  if (busy) throw new RollbackUnavailableError(busy);
  const previous = state.previousVersion;
  if (previous === null) {
    throw new RollbackUnavailableError(`there is no previous version to roll back to in ${paths.dir} (the agent keeps one after an update): nothing was changed`);
  }
  const folder = join(paths.versions, previous);
  if (!(await stat(folder).then((s) => s.isDirectory(), () => false))) {
    throw new RollbackUnavailableError(`the previous version ${previous} is no longer on disk (${folder} is missing): cannot roll back; nothing was changed`);
  }
  await switchCurrent(paths.dir, previous);
  const left = state.version;
  const report: ReportRequest = {
    deviceId: state.deviceId,
    product: state.product,
    channel: state.channel,
    event: 'rolled-back',
    version: previous,
    previousVersion: left,
  };
  state = { ...state, version: previous, previousVersion: null, rolledBack: left, pendingReport: report };
  await saveState(paths.state, state);
  const fetchFn = deviceAuthFetch(opts.fetch ?? lightFetch(), { meta: paths.meta, deviceId: state.deviceId, product: state.product, channel: state.channel, now: () => new Date() });
  const reported = await trySendReport(fetchFn, state.server, report, opts.signal);
  if (reported) await saveState(paths.state, { ...state, pendingReport: null });
  const hold = left === null ? {} : { rolledBackFrom: left, heldBack: left };
  return { result: 'rolled-back', version: previous, previousVersion: left, ...hold, server: state.server, reported };
}
