import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECK_ANSWER_TYPE, type CheckResponse } from '../../protocol/index.js';
import { UnverifiedAnswerError } from '../errors.js';
import { signedByTimestampRole } from './answer-signature.js';

/** What the agent sent: the signed block must name exactly this. */
export interface SentCheck {
  deviceId: string;
  product: string;
  channel: string;
  nonce: string;
}

type Signed = Record<string, unknown>;

/**
 * Verifies the signed block of a check answer (docs/protocol.md, "Signed check answer"): signed by
 * the timestamp role of the trusted root in `tufDir` (its keys and threshold), for this device,
 * product, channel and nonce, not expired on this device's clock, with a timestamp version not
 * lower than the one this device trusts and an unexpired timestamp, and saying what the unsigned
 * fields say. `refresh` (a TUF refresh) runs once when no trusted key signed it: the server may
 * have rotated its root since this device last looked. Throws UnverifiedAnswerError.
 */
export async function verifySignedAnswer(o: {
  server: string; response: CheckResponse; sent: SentCheck; tufDir: string; now: Date; refresh: () => Promise<void>;
}): Promise<void> {
  const fail = (what: string): never => {
    throw new UnverifiedAnswerError(`the check answer of ${o.server} cannot be trusted: ${what}; ` +
      'the agent keeps its version and does not believe it (a man in the middle or a bad server may be freezing this device); check the network path to the server and the server itself', o.server);
  };
  const env = o.response.signed as unknown;
  if (!isObject(env) || !isObject(env.signed) || !Array.isArray(env.signatures)) return fail('its signed block is malformed');
  const s: Signed = env.signed;
  if (!(await signedByTimestampRole(o.tufDir, s, env.signatures))) {
    await o.refresh().catch((err: Error) => fail(`it is not signed by this product's timestamp key, and refreshing the trusted metadata failed (${err.message})`));
    if (!(await signedByTimestampRole(o.tufDir, s, env.signatures))) fail("it is not signed by the timestamp key of this product's trusted root (forged or altered)");
  }
  if (s._type !== CHECK_ANSWER_TYPE) fail(`its signed block is of type ${JSON.stringify(s._type)}, not ${CHECK_ANSWER_TYPE}`);
  if (s.deviceId !== o.sent.deviceId) fail(`it was signed for device ${String(s.deviceId)}, not this device ${o.sent.deviceId}`);
  if (s.product !== o.sent.product || s.channel !== o.sent.channel) fail(`it was signed for ${String(s.product)}/${String(s.channel)}, not ${o.sent.product}/${o.sent.channel}`);
  if (s.nonce !== o.sent.nonce) fail('it was signed for another request (its nonce is not the one this check sent): a replayed answer');
  const expires = timeOf(s.expires);
  if (expires === undefined) return fail('its "expires" is not a time');
  if (expires <= o.now.getTime()) fail(`it expired at ${String(s.expires)} (this device's clock says ${o.now.toISOString()}): a delayed answer, or a wrong clock here or on the server`);
  const ts = s.timestamp;
  if (!isObject(ts) || !Number.isSafeInteger(ts.version) || timeOf(ts.expires) === undefined) return fail('its "timestamp" is malformed');
  if (timeOf(ts.expires)! <= o.now.getTime()) fail(`the server's timestamp metadata it names expired at ${String(ts.expires)}: the server stopped re-signing, or this device's clock is wrong`);
  const trusted = await cachedTimestampVersion(o.tufDir);
  if (trusted !== undefined && (ts.version as number) < trusted) fail(`it names timestamp version ${String(ts.version)}, older than version ${trusted} this device already trusts (a rollback of the server's metadata)`);
  const r = o.response;
  const release = r.release ? { version: r.release.version, target: r.release.target } : null;
  const sr = isObject(s.release) ? { version: s.release.version, target: s.release.target } : s.release;
  const rollout = r.rollout ? { version: r.rollout.version, opensAt: r.rollout.opensAt } : null;
  const srl = isObject(s.rollout) ? { version: s.rollout.version, opensAt: s.rollout.opensAt } : s.rollout ?? null;
  if (JSON.stringify(srl) !== JSON.stringify(rollout)) fail('its staged-rollout hint (release held back, phase time) differs from the signed block: altered in transit');
  if (s.status !== r.status || s.latest !== r.latest || JSON.stringify(sr) !== JSON.stringify(release)) {
    fail(`the unsigned answer says ${r.status} (latest ${String(r.latest)}) but the signed block says ${String(s.status)} (latest ${String(s.latest)}): altered in transit`);
  }
}

/** The version of the timestamp metadata this device trusts (verified when it was stored), if any. */
async function cachedTimestampVersion(tufDir: string): Promise<number | undefined> {
  const text = await readFile(join(tufDir, 'timestamp.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const v = (JSON.parse(text) as { signed?: { version?: unknown } }).signed?.version;
  return typeof v === 'number' ? v : undefined;
}

function timeOf(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
