import type { AgentResult } from './agent-result.js';
import { RetryUnavailableError } from './errors.js';
import { agentPaths } from './paths.js';
import { withSafeFolderLock } from './folder-safety.js';
import { loadState, saveState } from './state.js';
import { updateInProgress } from './update-in-progress.js';

export interface RetryOptions {
  dir: string;
  /** How long to wait for another command working on the folder (default 10 s). */
  lockWaitMs?: number;
}

/** What `patchwire retry` did, in the fields `check` uses too (agent-result.ts). */
export interface RetryResult extends AgentResult {
  result: 'hold-cleared';
  /** The version that was held back: the next check installs it again when the server offers it. */
  cleared: string;
  /** Null: the next check is due at once. */
  nextCheckAt: null;
}

/**
 * Clears the hold on the version the device rolled back from (after a failed health check or
 * `patchwire rollback`) and makes the next check due at once, so that check tries it again.
 * Changes nothing on disk but the state; talks to no server. Throws RetryUnavailableError when
 * nothing is held back or an update is in progress.
 */
export async function retry(opts: RetryOptions): Promise<RetryResult> {
  // A check running meanwhile would save its state over the cleared hold: one command at a time.
  return withSafeFolderLock(opts.dir, { command: 'retry', waitMs: opts.lockWaitMs }, () => retryLocked(opts));
}

async function retryLocked(opts: RetryOptions): Promise<RetryResult> {
  const paths = agentPaths(opts.dir);
  const state = await loadState(paths.state);
  const busy = await updateInProgress(paths, opts.dir);
  if (busy) throw new RetryUnavailableError(busy);
  const held = state.rolledBack;
  if (held === null) {
    throw new RetryUnavailableError(`nothing is held back in ${paths.dir} (no version failed its health check or was rolled back from): \`patchwire check --dir ${opts.dir}\` installs what the server offers; nothing was changed`);
  }
  await saveState(paths.state, { ...state, rolledBack: null, nextCheckAt: null });
  return { result: 'hold-cleared', version: state.version, previousVersion: state.version, server: state.server, cleared: held, nextCheckAt: null };
}
