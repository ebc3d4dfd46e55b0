import type { CheckResponse } from '../../protocol/index.js';
import { UnverifiedAnswerError } from '../errors.js';
import { MAX_SIGNING_SERVERS } from '../state.js';
import type { TrustedRepository } from '../tuf-client.js';
import type { UpdateContext } from './context.js';
import { verifyDeferredThroughTuf, verifyUpToDateThroughTuf } from './tuf-up-to-date.js';
import { verifySignedAnswer } from './verify-answer.js';

/**
 * Decides whether this run's check answer may be believed (docs/design.md section 3, "Signed
 * check answers"). Signed: verified (verify-answer.ts), and the server is remembered in the state
 * as one that signs (written with the rest of the state when the check completes). Unsigned from a server remembered as signing: refused (a stripped signature,
 * a downgrade). Unsigned otherwise (a mirror, or a server from before issue 9): an "up-to-date"
 * is confirmed through TUF (tuf-up-to-date.ts); an "update" is verified through TUF anyway.
 * Throws UnverifiedAnswerError (or TufVerificationError) and then changes nothing.
 */
export async function trustAnswer(
  ctx: UpdateContext,
  o: { server: string; response: CheckResponse; repo: TrustedRepository; nonce: string },
): Promise<void> {
  const known = ctx.state.signingServers ?? [];
  const signs = known.includes(o.server);
  if (o.response.signed === undefined) {
    if (signs) {
      throw new UnverifiedAnswerError(
        `the check answer of ${o.server} carries no signature, but this server signed its answers before (recorded in .patchwire/state.json, "signingServers"): ` +
          'a man in the middle may have stripped it; the agent keeps its version. If the server was really replaced by one that does not sign (a mirror), remove it from "signingServers"',
        o.server,
      );
    }
    if (o.response.status === 'up-to-date') await verifyUpToDateThroughTuf(o.repo, ctx.state, o.server, ctx.signal);
    if (o.response.status === 'deferred') await verifyDeferredThroughTuf(o.repo, ctx.state, o.server, o.response.rollout!.version, ctx.signal);
    return;
  }
  const sent = { deviceId: ctx.state.deviceId, product: ctx.state.product, channel: ctx.state.channel, nonce: o.nonce };
  await verifySignedAnswer({
    server: o.server, response: o.response, sent, tufDir: o.repo.metadataDir, now: ctx.now(), refresh: () => o.repo.refresh(ctx.signal),
  });
  // Kept in memory: the run's next state write (the next check time, at the end of a check that
  // went well) persists it, so a check that fails later leaves state.json exactly as it was.
  if (!signs) ctx.state = { ...ctx.state, signingServers: [...known, o.server].slice(-MAX_SIGNING_SERVERS) };
}
