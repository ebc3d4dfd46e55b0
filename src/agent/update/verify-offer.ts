import { parseReleaseCustom, type ReleaseOffer, type ReleaseTargetCustom } from '../../protocol/index.js';
import { VerificationError } from '../errors.js';
import type { AgentState } from '../state.js';
import type { TrustedRepository } from '../tuf-client.js';

export interface VerifiedRelease {
  path: string;
  length: number;
  sha256: string;
  custom: ReleaseTargetCustom;
}

/**
 * Looks the offered release up in verified TUF metadata and checks its signed custom field: the
 * offer itself is only a hint from a server that may be compromised. Throws VerificationError.
 */
export async function verifyOffer(repo: TrustedRepository, offer: ReleaseOffer, state: AgentState, signal?: AbortSignal): Promise<VerifiedRelease> {
  const target = await repo.getTarget(offer.target, signal);
  if (!target) {
    throw new VerificationError(`the server offers ${offer.target} (version ${offer.version}) but the signed TUF targets do not list it: refused; the server may be compromised or out of date`);
  }
  const parsed = parseReleaseCustom(target.custom, { product: state.product, channel: state.channel, version: offer.version });
  if (!parsed.ok) {
    throw new VerificationError(`signed target ${target.path} does not match the offer: ${parsed.problem}; refused`);
  }
  return { path: target.path, length: target.length, sha256: target.sha256, custom: { patchwire: parsed.patchwire } };
}
