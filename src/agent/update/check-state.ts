import { isHigher } from '../../protocol/index.js';
import { RollbackRefusedError } from '../errors.js';
import { asFailedReport, isAcceptable, trySendReport } from '../report.js';
import { save, type UpdateContext } from './context.js';
import { acceptDelta } from './delta-state.js';
import type { StateHandler } from './machine.js';
import { checkFollowingMoves } from './moved-chain.js';
import type { UpdateRecord } from './update-record.js';
import { verifyOffer } from './verify-offer.js';
import { trustAnswer } from './answer-trust.js';

/**
 * `check`: send a pending report, ask the server (following verified moved notices), refuse a
 * lower offer, skip a version the device rolled back from, and verify the offer through TUF.
 */
export const checkState: StateHandler<UpdateContext> = async (ctx) => {
  const { paths, fetch: fetchFn, signal } = ctx;
  if (ctx.state.pendingReport && !isAcceptable(ctx.state.pendingReport)) await save(ctx, { pendingReport: asFailedReport(ctx.state.pendingReport) });
  if (ctx.state.pendingReport && (await trySendReport(fetchFn, ctx.state.server, ctx.state.pendingReport, signal))) {
    await save(ctx, { pendingReport: null });
  }
  ctx.checkedAt = ctx.now().toISOString();
  const { server, response, repo, nonce } = await checkFollowingMoves(ctx.state, paths, fetchFn, signal, ctx.installId);
  // Believed only when signed for this request, or (unsigned, from a mirror) confirmed by TUF.
  await trustAnswer(ctx, { server, response, repo, nonce });
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
  // The device rolled back from this version (or a higher one): held back until `patchwire retry`.
  if (state.rolledBack !== null && !isHigher(offer.version, state.rolledBack)) {
    ctx.heldBack = offer.version;
    return 'nothing-to-do';
  }
  const release = await verifyOffer(repo, offer, state, signal);
  const c = release.custom.patchwire;
  // A delta from the version this device runs, if the delegated deltas role signed it; an
  // unusable offer is ignored (the full archive is always there).
  let delta: UpdateRecord['delta'] = null;
  if (offer.delta && state.version !== null && offer.delta.from === state.version) {
    const t = await repo.getTarget(offer.delta.target, signal).catch(() => undefined);
    const accepted = acceptDelta(t, state, state.version, offer.version, release.length);
    if (typeof accepted !== 'string') delta = accepted;
    else if (t) ctx.notes = [...(ctx.notes ?? []), `the delta ${offer.delta.target} was refused (${accepted}); the full archive is downloaded instead`];
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
    treeFiles: c.treeFiles,
    schedule: response.schedule ? { at: response.schedule.at, spreadSeconds: response.schedule.spreadSeconds } : null,
    startedAt: ctx.now().toISOString(),
    failure: null,
    reported: false,
    delta,
  };
  return 'success';
};
