import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPhases, isHigher, parseReleaseCustom, releaseTargetPath } from '../../protocol/index.js';
import { UnverifiedAnswerError } from '../errors.js';
import type { AgentState } from '../state.js';
import type { TrustedRepository } from '../tuf-client.js';

/** Targets looked at, at most: the signed targets of one product stay far below this. */
const MAX_TARGETS = 100_000;

/**
 * An UNSIGNED "up-to-date" (from a mirror, which holds no online key) is checked through TUF:
 * the metadata is refreshed and verified (a fresh, unexpired timestamp, so a freeze lasts at most
 * the timestamp lifetime), and the highest release the publisher signed for this channel must not
 * be higher than what runs (or than a version held back after a rollback). If it is, the agent
 * fails loudly rather than install it: a yank is not signed, so the answer may be right (the
 * release was yanked) or a freeze; the operator resolves it. Throws UnverifiedAnswerError or
 * TufVerificationError.
 */
export async function verifyUpToDateThroughTuf(repo: TrustedRepository, state: AgentState, server: string, signal?: AbortSignal): Promise<void> {
  await repo.refresh(signal);
  const targets = JSON.parse(await readFile(join(repo.metadataDir, 'targets.json'), 'utf8')) as { signed?: { targets?: Record<string, { custom?: unknown }> } };
  let highest: string | null = null;
  let n = 0;
  for (const [path, t] of Object.entries(targets.signed?.targets ?? {})) {
    if (++n > MAX_TARGETS) break;
    const c = (t.custom as { patchwire?: { kind?: unknown; version?: unknown } } | undefined)?.patchwire;
    if (c?.kind !== 'full' || typeof c.version !== 'string') continue;
    const parsed = parseReleaseCustom(t.custom, { product: state.product, channel: state.channel, version: c.version });
    if (parsed.ok && path.startsWith(`${state.channel}/`) && isHigher(c.version, highest)) highest = c.version;
  }
  if (highest === null || !isHigher(highest, state.version)) return;
  if (state.rolledBack !== null && !isHigher(highest, state.rolledBack)) return;
  throw new UnverifiedAnswerError(
    `${server} (which does not sign its answers: a mirror) says ${state.product}/${state.channel} is up to date at ${state.version ?? 'nothing installed'}, ` +
      `but the publisher signed ${highest}: either ${highest} was yanked (then publish a higher version to replace it) or this server or the network is freezing the device; ` +
      'the agent keeps its version; check the mirror against its primary',
    server,
  );
}

/**
 * An UNSIGNED "deferred" (a mirror says a staged rollout holds `version` back from this device) is
 * checked through TUF as an unsigned "up-to-date" is: after a refresh, `version` must be a release
 * the publisher signed for this channel, higher than what runs, and signed as staged
 * (`custom.patchwire.rollout`). So a server that does not sign can hold back only what the
 * publisher chose to stage, never freeze the device on a release meant for everyone.
 */
export async function verifyDeferredThroughTuf(repo: TrustedRepository, state: AgentState, server: string, version: string, signal?: AbortSignal): Promise<void> {
  await repo.refresh(signal);
  const targets = JSON.parse(await readFile(join(repo.metadataDir, 'targets.json'), 'utf8')) as { signed?: { targets?: Record<string, { custom?: unknown }> } };
  const t = targets.signed?.targets?.[releaseTargetPath(state.channel, version)];
  const parsed = t ? parseReleaseCustom(t.custom, { product: state.product, channel: state.channel, version }) : undefined;
  const staged = parsed?.ok === true && checkPhases(parsed.patchwire.rollout?.phases) === undefined;
  if (staged && isHigher(version, state.version)) return;
  throw new UnverifiedAnswerError(
    `${server} (which does not sign its answers: a mirror) says a staged rollout holds ${state.product}/${state.channel} ${version} back from this device, ` +
      `but the publisher ${parsed?.ok ? 'did not stage that release' : 'signed no such release'}${staged ? ` higher than ${state.version ?? 'nothing installed'}` : ''}: ` +
      'the agent keeps its version; check the mirror against its primary',
    server,
  );
}
