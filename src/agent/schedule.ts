import { createHash } from 'node:crypto';

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
}

/** True when a check is due: never checked (null) or the next-check time has come. */
export function isDue(now: Date, nextCheckAt: Date | string | null): boolean {
  if (nextCheckAt === null) return true;
  const t = typeof nextCheckAt === 'string' ? Date.parse(nextCheckAt) : nextCheckAt.getTime();
  // An unreadable time must not stop the device from checking forever.
  return Number.isNaN(t) || now.getTime() >= t;
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
 * spread offset is in the future and earlier than that, the next check is pulled in to it.
 */
export function computeNextCheck({ now, intervalSeconds, schedule, deviceId }: NextCheckInput): Date {
  const byInterval = now.getTime() + intervalSeconds * 1000;
  if (schedule) {
    const scheduled = schedule.at.getTime() + spreadOffsetSeconds(deviceId, schedule.spreadSeconds) * 1000;
    if (scheduled > now.getTime() && scheduled < byInterval) return new Date(scheduled);
  }
  return new Date(byInterval);
}
