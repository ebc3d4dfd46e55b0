import { createHash } from 'node:crypto';

/**
 * When a device checks next (patent flow step 6), as a pure function of the clock: the agent's
 * schedule (src/agent/schedule.ts re-exports these) and the server's answer to devices that let
 * the server set their poll interval (the hawkBit DDI's `config.polling.sleep`) share it.
 */
/** A published release schedule, as the agent uses it. */
export interface Schedule {
  at: Date;
  /** Width of the spread window in seconds; 0 means every device wakes at `at`. */
  spreadSeconds: number;
}

export interface NextCheckInput {
  now: Date;
  intervalSeconds: number;
  schedule: Schedule | null;
  deviceId: string;
  /**
   * Issue 11: when the staged-rollout phase that holds this device opens (the check answer's
   * `rollout.opensAt` and `spreadSeconds`), or null/absent: unknown (paused, halted, aborted, or
   * no `--every`), and the device keeps its interval.
   */
  rolloutOpens?: Schedule | null;
}

/**
 * This device's offset into a spread window: sha256 of the device id, first 4 bytes as an
 * unsigned 32-bit integer, scaled into [0, spreadSeconds) and floored to whole seconds. The same
 * device always gets the same offset, so a fleet wakes spread out but reproducibly.
 */
export function spreadOffsetSeconds(deviceId: string, spreadSeconds: number): number {
  if (!(spreadSeconds > 0)) return 0;
  const n = createHash('sha256').update(deviceId).digest().readUInt32BE(0);
  return Math.floor((n / 2 ** 32) * spreadSeconds);
}

/**
 * Patent flow step 6: next check = now + interval; when the schedule time plus this device's
 * spread offset is in the future and earlier than that, the next check is pulled in to it. A
 * staged rollout's phase opening for this device (plus its offset in that spread) pulls it in
 * the same way (the earlier of the two wins): the device need not poll for a release it may not
 * have yet, and wakes when its wave opens. Neither ever pushes the check past the interval.
 */
export function computeNextCheck({ now, intervalSeconds, schedule, deviceId, rolloutOpens }: NextCheckInput): Date {
  let next = now.getTime() + intervalSeconds * 1000;
  for (const s of [schedule, rolloutOpens ?? null]) {
    if (!s) continue;
    const at = s.at.getTime() + spreadOffsetSeconds(deviceId, s.spreadSeconds) * 1000;
    if (at > now.getTime() && at < next) next = at;
  }
  return new Date(next);
}
