/**
 * Staged rollouts (issue 11, docs/design.md "Staged rollouts"): the pure rules both sides share.
 * A device's place in a release's rollout is a hash of (device id, product, version) mapped to
 * 0.00-99.99; it is offered the release while its place is below the current phase's percent.
 * Phases only go up, so a device offered the release in one phase is offered it in every later one.
 */
import { createHash } from 'node:crypto';

export const ROLLOUT_STATES = ['active', 'paused', 'halted', 'aborted', 'complete'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

export const ROLLOUT_ACTIONS = ['pause', 'resume', 'advance', 'abort'] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

/** Bounds of a plan: phases per rollout, and the shortest --every (a phase per second is a typo). */
export const ROLLOUT_LIMITS = { maxPhases: 20, minEverySeconds: 1, maxEverySeconds: 365 * 86400, maxMinDevices: 1_000_000 } as const;

/** `publish --min-devices` default: attempts needed before the failure rate can halt a rollout. */
export const DEFAULT_MIN_DEVICES = 20;

/** What `publish --rollout` sends in the upload's metadata (`rollout` field). */
export interface RolloutPlan {
  /** Percents, strictly increasing, each in (0, 100] with at most two decimals; the last is 100. */
  phases: number[];
  /** Seconds between phases, or null: phases advance only by `patchwire rollout advance`. */
  every: number | null;
  /** Failure percent (failed + rolled back among devices that attempted) that halts it, or null: never. */
  haltAt: number | null;
  minDevices: number;
}

/** The state a rollout is in, as the store keeps it (its phase is materialised at `phaseStartedAt`). */
export interface RolloutProgress {
  phases: number[];
  phase: number;
  state: RolloutState;
  every: number | null;
  phaseStartedAt: Date;
}

/**
 * This device's place in the rollout of one release: sha256 of `deviceId \n product \n version`,
 * first 4 bytes as an unsigned 32-bit integer, mod 10000, as a percent with two decimals (0-99.99).
 * Independent of the spread offset (schedule.ts), which hashes the device id alone.
 */
export function rolloutPlacement(deviceId: string, product: string, version: string): number {
  const n = createHash('sha256').update(`${deviceId}\n${product}\n${version}`).digest().readUInt32BE(0);
  return (n % 10000) / 100;
}

/** True when a device at `placement` is inside `percent` (100 holds every device). */
export function insidePercent(placement: number, percent: number): boolean {
  return placement < percent;
}

/**
 * The rollout as it stands at `now`: an active rollout with `every` moves one phase per `every`
 * seconds from `phaseStartedAt` (so every server, primary or mirror, computes the same phase from
 * the same record without waiting for the background job to write it); the last phase is
 * `complete`. Paused, halted, aborted and complete rollouts stand still.
 */
export function rolloutAt(r: RolloutProgress, now: Date): RolloutProgress {
  const last = r.phases.length - 1;
  if (r.state !== 'active') return r;
  if (r.phase >= last) return { ...r, phase: last, state: 'complete' };
  if (r.every === null || r.every <= 0) return r;
  const steps = Math.floor((now.getTime() - r.phaseStartedAt.getTime()) / (r.every * 1000));
  if (steps <= 0) return r;
  const phase = Math.min(r.phase + steps, last);
  const phaseStartedAt = new Date(r.phaseStartedAt.getTime() + (phase - r.phase) * r.every * 1000);
  return { ...r, phase, phaseStartedAt, state: phase === last ? 'complete' : 'active' };
}

/** When the phase after the current one opens, or null (not active, no `every`, or the last phase). */
export function nextPhaseAt(r: RolloutProgress): Date | null {
  if (r.state !== 'active' || r.every === null || r.phase >= r.phases.length - 1) return null;
  return new Date(r.phaseStartedAt.getTime() + r.every * 1000);
}

/**
 * When the first phase that holds a device at `placement` opens, for a device outside the current
 * phase: null when that time is unknown (paused, halted, aborted, or no `every`: the device keeps
 * its interval) or the device is already inside.
 */
export function phaseOpensAt(r: RolloutProgress, placement: number): Date | null {
  if (r.state !== 'active' || r.every === null) return null;
  const i = r.phases.findIndex((p) => insidePercent(placement, p));
  if (i <= r.phase) return null;
  return new Date(r.phaseStartedAt.getTime() + (i - r.phase) * r.every * 1000);
}

/**
 * The spread a device outside the phase wakes within after its phase opens: the channel's
 * schedule spread when it has a schedule, else a tenth of `every`, at most 15 minutes (so the
 * devices a phase adds do not all check in the same second).
 */
export function rolloutSpreadSeconds(every: number | null, scheduleSpread: number | null): number {
  if (scheduleSpread !== null) return scheduleSpread;
  if (every === null) return 0;
  return Math.min(Math.floor(every / 10), 900);
}

/** Parses `5%,25%,100%` (or `5,25,100`); returns the percents or a problem phrased for the user. */
export function parsePhases(text: string): number[] | string {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length > ROLLOUT_LIMITS.maxPhases) return `at most ${ROLLOUT_LIMITS.maxPhases} phases`;
  const out: number[] = [];
  for (const p of parts) {
    const n = parsePercent(p);
    if (n === undefined) return `'${p}' is not a percent such as 5% (0.01-100, at most two decimals)`;
    out.push(n);
  }
  return checkPhases(out) ?? out;
}

/** A percent such as `5%`, `0.5%` or `5`: (0, 100] with at most two decimals. */
export function parsePercent(text: string): number | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,2})?)%?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return n > 0 && n <= 100 ? n : undefined;
}

/** A problem with a list of phases, or undefined when it is a valid plan's. */
export function checkPhases(phases: unknown): string | undefined {
  if (!Array.isArray(phases) || phases.length === 0) return 'give at least one phase, e.g. 5%,25%,100%';
  if (phases.length > ROLLOUT_LIMITS.maxPhases) return `at most ${ROLLOUT_LIMITS.maxPhases} phases`;
  let prev = 0;
  for (const p of phases) {
    if (typeof p !== 'number' || !(p > 0 && p <= 100) || !hasTwoDecimals(p)) return `phase ${String(p)} is not a percent in (0, 100] with at most two decimals`;
    if (p <= prev) return `phases must go up: ${String(p)}% after ${prev}%`;
    prev = p;
  }
  if (prev !== 100) return `the last phase must be 100% (it is ${prev}%): a rollout ends with every device offered the release`;
  return undefined;
}

/** True when `n` has at most two decimals (81.85 * 100 is 8185.000000000001 in floating point). */
export function hasTwoDecimals(n: number): boolean {
  return Math.abs(Math.round(n * 100) - n * 100) < 1e-6;
}
