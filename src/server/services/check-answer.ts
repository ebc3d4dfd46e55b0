import {
  CHECK_ANSWER_LIFETIME_SECONDS, CHECK_ANSWER_TYPE,
  type CheckRequest, type CheckResponse, type SignedCheckAnswer, type SignedCheckEnvelope,
} from '../../protocol/index.js';
import type { TufMetadataService } from './tuf-metadata.js';
import type { KeyPair } from '../../tuf/keys.js';
import { jsonSigner } from '../../tuf/sign-json.js';

/**
 * Signs check answers (docs/protocol.md, "Signed check answer"): what the server told this device,
 * bound to its id and nonce, valid for CHECK_ANSWER_LIFETIME_SECONDS, with the product's current
 * timestamp version and expiry, signed with the online TIMESTAMP key that the product's root
 * names (so the agent needs no new trust anchor and no offline key is involved). A mirror holds
 * no key and never signs; a request without a nonce (an older agent) gets no signed block.
 */
export class CheckAnswerSigner {
  readonly #sign: ((signed: object) => { keyid: string; sig: string }) | undefined;

  constructor(
    private readonly tuf: TufMetadataService,
    timestampKey: KeyPair | null,
  ) {
    this.#sign = timestampKey ? jsonSigner(timestampKey) : undefined;
  }

  async sign(req: CheckRequest, answer: CheckResponse, at: Date): Promise<SignedCheckEnvelope | undefined> {
    if (!this.#sign || req.nonce === undefined) return undefined;
    // One indexed read: the highest timestamp version (re-signed first when due).
    const ts = await this.tuf.currentTimestamp(req.product);
    if (!ts) return undefined;
    const signed: SignedCheckAnswer = {
      _type: CHECK_ANSWER_TYPE,
      deviceId: req.deviceId,
      product: req.product,
      channel: req.channel,
      nonce: req.nonce,
      status: answer.status,
      latest: answer.latest,
      release: answer.release ? { version: answer.release.version, target: answer.release.target } : null,
      ...(answer.rollout ? { rollout: { version: answer.rollout.version, opensAt: answer.rollout.opensAt } } : {}),
      serverTime: at.toISOString(),
      expires: new Date(at.getTime() + CHECK_ANSWER_LIFETIME_SECONDS * 1000).toISOString(),
      timestamp: { version: ts.version, expires: ts.expiresAt.toISOString() },
    };
    return { signed, signatures: [this.#sign(signed)] };
  }
}
