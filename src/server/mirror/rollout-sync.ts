import type { RolloutRecord, Store } from '../../store/store.js';
import type { RolloutSync } from '../../protocol/wire.js';
import { checkPhases, ROLLOUT_STATES } from '../../protocol/rollout.js';
import { isName } from '../../protocol/names.js';
import { isVersion } from '../../protocol/version.js';

/** Rollouts one catalog may carry; beyond, the rest wait for a later pass. */
const MAX_ROLLOUTS = 100_000;

/**
 * Stores the rollouts handed down by the primary (its catalog) as they are, so a device gets the
 * same answer here as there (the phase of an active one is computed from the record: rolloutAt).
 * A record that is not a well-formed rollout is skipped. Returns true when any changed.
 */
export async function applyRollouts(store: Store, list: RolloutSync[]): Promise<boolean> {
  const local = new Map((await store.listRollouts()).map((r) => [`${r.product}\u0000${r.channel}\u0000${r.version}`, r]));
  let changed = false;
  for (const s of list.slice(0, MAX_ROLLOUTS)) {
    const r = toRecord(s);
    if (!r) continue;
    const cur = local.get(`${r.product}\u0000${r.channel}\u0000${r.version}`);
    if (cur && sameRollout(cur, r)) continue;
    await store.putRollout(r);
    changed = true;
  }
  return changed;
}

function toRecord(s: RolloutSync): RolloutRecord | undefined {
  const phaseStartedAt = new Date(s.phaseStartedAt);
  const updatedAt = new Date(s.updatedAt);
  const ok = isName(s.product) && isName(s.channel) && isVersion(s.version) && checkPhases(s.phases) === undefined
    && Number.isSafeInteger(s.phase) && s.phase >= 0 && s.phase < s.phases.length && (ROLLOUT_STATES as readonly string[]).includes(s.state)
    && (s.every === null || (Number.isSafeInteger(s.every) && s.every > 0)) && (s.haltAt === null || typeof s.haltAt === 'number')
    && Number.isSafeInteger(s.minDevices) && !Number.isNaN(phaseStartedAt.getTime()) && !Number.isNaN(updatedAt.getTime());
  if (!ok) return undefined;
  return {
    product: s.product, channel: s.channel, version: s.version, phases: s.phases, phase: s.phase, state: s.state,
    every: s.every, haltAt: s.haltAt, minDevices: s.minDevices, phaseStartedAt, updatedAt,
  };
}

function sameRollout(a: RolloutRecord, b: RolloutRecord): boolean {
  return a.phase === b.phase && a.state === b.state && a.phaseStartedAt.getTime() === b.phaseStartedAt.getTime()
    && a.updatedAt.getTime() === b.updatedAt.getTime() && JSON.stringify(a.phases) === JSON.stringify(b.phases)
    && a.every === b.every && a.haltAt === b.haltAt && a.minDevices === b.minDevices;
}
