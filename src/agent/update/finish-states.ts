import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportRequest } from '../../protocol/index.js';
import { pruneVersions, removeLeftovers } from '../housekeeping.js';
import { readCurrent, removeVersion } from '../install.js';
import { trySendReport } from '../report.js';
import { computeNextCheck } from '../schedule.js';
import { DEFAULT_KEEP } from '../state.js';
import { need, save, type UpdateContext } from './context.js';
import { reportDetail, updateReport } from './progress.js';
import type { StateHandler } from './machine.js';
import { outcomeOf, removeUpdateRecord, saveUpdateRecord } from './update-record.js';

/**
 * `report`: `applied`, `rolled-back` (and, as `failed`, a first install's failed health check) are
 * queued as the pending report first (state.json, then `reported` in the record: a kill still
 * reports them, once), then sent; any other `failed` is sent once, best effort, and not kept.
 */
export const report: StateHandler<UpdateContext> = async (ctx) => {
  const r = need(ctx);
  // After the progress reports of this run (bounded: a slow server does not hold the update).
  await ctx.progress?.settle();
  if (!r.reported) {
    const outcome = outcomeOf(r);
    // Every report names the release (toVersion) and, when one failed, the state it failed in.
    const base = { ...updateReport(ctx.state, r), ...(r.failure ? { state: r.failure.state } : {}) };
    if (outcome === 'failed' || outcome === 'retry') {
      const detail = reportDetail(`update to ${r.toVersion} failed in ${r.failure?.state ?? '?'}: ${r.failure?.message ?? ''}`);
      await trySendReport(ctx.fetch, r.server, { ...base, event: 'failed', version: r.fromVersion, previousVersion: r.fromVersion, detail }, ctx.signal);
      r.reported = true;
      return 'success';
    }
    const detail = reportDetail(r.failure?.message ?? '');
    // A first install whose health check failed left nothing installed: the server takes that as
    // `failed` with no version (it refuses a `rolled-back` without the version the device runs).
    const rep: ReportRequest = outcome === 'applied'
      ? { ...base, event: 'applied', version: r.toVersion, previousVersion: r.fromVersion }
      : r.fromVersion === null
        ? { ...base, event: 'failed', version: null, previousVersion: null, detail: reportDetail(`first install: ${detail}`) }
        : { ...base, event: 'rolled-back', version: r.fromVersion, previousVersion: r.toVersion, detail };
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
export const cleanup: StateHandler<UpdateContext> = async (ctx) => {
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
export const done: StateHandler<UpdateContext> = async (ctx) => {
  const r = ctx.record;
  const outcome = r ? outcomeOf(r) : ctx.error === undefined ? 'applied' : 'failed';
  if (outcome === 'applied' || outcome === 'rolled-back') {
    const schedule = ctx.response ? ctx.response.schedule : r?.schedule ?? null;
    const opens = ctx.response?.rollout?.opensAt;
    const next = computeNextCheck({
      now: ctx.now(),
      intervalSeconds: ctx.state.intervalSeconds,
      schedule: schedule ? { at: new Date(schedule.at), spreadSeconds: schedule.spreadSeconds } : null,
      deviceId: ctx.state.deviceId,
      rolloutOpens: opens ? { at: new Date(opens), spreadSeconds: ctx.response!.rollout!.spreadSeconds } : null,
    });
    await save(ctx, { lastCheckAt: ctx.checkedAt ?? ctx.state.lastCheckAt, nextCheckAt: next.toISOString() });
  }
  if (r) await removeUpdateRecord(ctx.paths.update);
  return 'success';
};
