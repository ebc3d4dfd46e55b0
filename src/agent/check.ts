import { removeLeftovers } from './housekeeping.js';
import { errorText } from '../util/error-text.js';
import { isSavedState, RESUME_AT, runMachine, type UpdateStateName } from './update/machine.js';
import { agentPaths } from './paths.js';
import { withSafeFolderLock } from './folder-safety.js';
import { ensureInstallId } from './install-id.js';
import { ensureDeviceKey } from './device-key.js';
import { deviceAuthFetch } from './auth-fetch.js';
import { lightFetch } from './light-fetch.js';
import { isDue } from './schedule.js';
import { loadState } from './state.js';
import { loadUpdateRecord, outcomeOf, saveUpdateRecord } from './update/update-record.js';
import type { UpdateContext } from './update/context.js';
import { STATE_HANDLERS } from './update/states.js';
import { ProgressReports, updateReport } from './update/progress.js';
import type { AgentResult } from './agent-result.js';

export { MAX_MOVED_HOPS } from './update/moved-chain.js';

export interface CheckOptions {
  dir: string;
  /** Check even when the next-check time has not come. */
  force?: boolean;
  now?: () => Date;
  fetch?: typeof fetch;
  /** Aborting stops the run at once, like a kill (the saved update state resumes it next time). */
  signal?: AbortSignal;
  onProgress?: (received: number, total: number) => void;
  /**
   * How long to wait when another process (a cron `check`, an `agent`) works on the folder
   * (default 10 s); then FolderLockedError names it.
   */
  lockWaitMs?: number;
  /**
   * Fault injection for tests: called with the state's name at the start of each state of the
   * update machine (after the state saved itself). A throw counts as the state's failure;
   * aborting `signal` from it simulates a crash.
   */
  faults?: (state: string) => void | Promise<void>;
}

/** What one check did (the shared fields are described in agent-result.ts); `check --json` prints it as is. */
export interface CheckResult extends AgentResult {
  result: 'updated' | 'up-to-date' | 'deferred' | 'not-due' | 'held-back' | 'rolled-back' | 'install-failed';
  /** With `deferred`: the release a staged rollout holds back, and when this device's phase opens (null: not known). */
  deferred?: { version: string; opensAt: string | null };
  nextCheckAt: string;
  /**
   * With `updated`: how the new version came. `bytes`: what this run transferred for the patch;
   * `resumedFrom`: the bytes of an earlier, interrupted download this run resumed from (Range),
   * 0 when it started from scratch.
   */
  patch?: { kind: 'full' | 'delta'; bytes: number; resumedFrom: number };
  /** The server's warnings about this device (e.g. another install folder sharing its device id). */
  warnings?: string[];
}

/**
 * One pass of the agent flow (docs/design.md section 2) as the update state machine of machine.ts:
 * first finish (or clean up) an update that a kill interrupted, as saved in
 * `.patchwire/update.json`, and remove leftovers; stop when not due; send a pending report; ask
 * the server (following verified moved notices); when it offers a higher version, verify it
 * through TUF, download, verify, stage, switch, run the health check (rolling back on failure),
 * report and clean up; persist the next check time.
 * Throws AgentStateError, NetworkError, ServerError, BadResponseError, TufVerificationError,
 * VerificationError, MovedNoticeError, RollbackRefusedError, DeviceAdmissionError or FolderLockedError; the state then keeps its server,
 * version and next-check time, so the next attempt starts over cleanly.
 */
export async function runCheck(opts: CheckOptions): Promise<CheckResult> {
  // One command at a time per folder (two would write the same download and state), in a safe folder.
  return withSafeFolderLock(opts.dir, { command: 'check', waitMs: opts.lockWaitMs, signal: opts.signal }, () => checkLocked(opts));
}

async function checkLocked(opts: CheckOptions): Promise<CheckResult> {
  const now = opts.now ?? (() => new Date());
  const paths = agentPaths(opts.dir);
  const state = await loadState(paths.state);
  const saved = await loadUpdateRecord(paths.update);
  const before = state.version;

  // A half-done update is finished whether or not a check is due.
  if (!saved && !opts.force && !isDue(now(), state.nextCheckAt)) {
    return { result: 'not-due', version: before, previousVersion: before, server: state.server, nextCheckAt: state.nextCheckAt! };
  }
  await removeLeftovers(paths);
  const installId = await ensureInstallId(paths.meta);
  // A folder initialised by an agent before device keys gets its key here.
  await ensureDeviceKey(paths.meta);
  const fetchFn = deviceAuthFetch(opts.fetch ?? lightFetch(), { meta: paths.meta, deviceId: state.deviceId, product: state.product, channel: state.channel, installId, now });

  const newContext = (s: typeof state): UpdateContext => {
    const ctx: UpdateContext = {
      paths, state: s, record: null, now, fetch: fetchFn, signal: opts.signal, onProgress: opts.onProgress,
      checkedAt: null, server: s.server, response: null, installId,
    };
    // A lost progress report is a warning of this run (check --json `warnings`), never a failure.
    ctx.progress = ProgressReports.to(fetchFn, () => ctx.record?.server ?? ctx.server, (msg) => (ctx.notes = [...(ctx.notes ?? []), msg]), opts.signal);
    return ctx;
  };
  const run = async (ctx: UpdateContext, start: UpdateStateName) => {
    try {
      return await runMachine(start, STATE_HANDLERS, ctx, {
        signal: opts.signal,
        faults: opts.faults,
        // Progress events keep the existing meaning of `version` (what the device runs: the old one)
        // and name the release in `toVersion`.
        enter: (s) => {
          const r = ctx.record;
          if (r) ctx.progress?.enter(s, (event) => ({ ...updateReport(ctx.state, r), event, version: r.fromVersion, previousVersion: r.fromVersion }));
        },
        persist: async (s) => {
          if (!ctx.record || !isSavedState(s)) return;
          ctx.record = { ...ctx.record, state: s };
          await saveUpdateRecord(paths.update, ctx.record);
        },
        onFailure: (s, event, err) => {
          if (ctx.record && ctx.record.failure === null) ctx.record.failure = { state: s, event, message: errorText(err).slice(0, 2000) };
        },
      });
    } finally {
      // A run that ended before its outcome report (a retry, an abort) does not leave one running.
      if (!opts.signal?.aborted) await ctx.progress?.settle();
      ctx.progress?.close();
    }
  };

  if (saved) {
    const ctx = newContext(state);
    ctx.record = saved;
    ctx.server = saved.server;
    await run(ctx, RESUME_AT[saved.state]);
    const outcome = outcomeOf(ctx.record!);
    if (outcome === 'applied' || outcome === 'rolled-back') return resultOf(ctx);
    // A failed update is cleaned up; this run goes on with a fresh check.
    return runFresh(newContext(await loadState(paths.state)), run);
  }
  return runFresh(newContext(state), run);
}

async function runFresh(ctx: UpdateContext, run: (ctx: UpdateContext, start: UpdateStateName) => Promise<string[]>): Promise<CheckResult> {
  const before = ctx.state.version;
  await run(ctx, 'check');
  if (ctx.record) {
    const outcome = outcomeOf(ctx.record);
    if (outcome === 'applied' || outcome === 'rolled-back') return resultOf(ctx);
  }
  if (ctx.error !== undefined) throw ctx.error;
  const base = { version: before, previousVersion: before, server: ctx.server, nextCheckAt: ctx.state.nextCheckAt!, ...warningsOf(ctx) };
  // Not "up to date": the server has a higher version that this device chose not to install.
  if (ctx.heldBack !== undefined) return { result: 'held-back', ...base, heldBack: ctx.heldBack };
  const rollout = ctx.response?.rollout;
  if (ctx.response?.status === 'deferred' && rollout) return { result: 'deferred', ...base, deferred: { version: rollout.version, opensAt: rollout.opensAt } };
  return { result: 'up-to-date', ...base };
}

function warningsOf(ctx: UpdateContext): { warnings?: string[] } {
  const w = [...(ctx.response?.warnings ?? []), ...(ctx.notes ?? [])];
  return w.length > 0 ? { warnings: w } : {};
}

function resultOf(ctx: UpdateContext): CheckResult {
  const r = ctx.record!;
  const base = { server: ctx.state.server, nextCheckAt: ctx.state.nextCheckAt!, ...warningsOf(ctx) };
  if (outcomeOf(r) === 'rolled-back') {
    const reason = healthReason(r.failure?.message ?? '', r.toVersion);
    // A first install has nothing to go back to: nothing is installed, which is not a rollback.
    if (r.fromVersion === null) return { result: 'install-failed', version: null, previousVersion: null, ...base, heldBack: r.toVersion, reason };
    return { result: 'rolled-back', version: r.fromVersion, previousVersion: r.fromVersion, ...base, rolledBackFrom: r.toVersion, heldBack: r.toVersion, reason };
  }
  const t = ctx.transfer ?? { bytes: 0, resumedFrom: 0 };
  const patch = r.delta?.applied ? { kind: 'delta' as const, ...t } : { kind: 'full' as const, ...t };
  return { result: 'updated', version: r.toVersion, previousVersion: r.fromVersion, ...base, patch };
}

/** The health command's verdict from the failure message the `health` state recorded. */
function healthReason(message: string, version: string): string {
  const prefix = `version ${version} failed its health check: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}
