// The schedule arithmetic is shared with the server's hawkBit poll answer (issue 12).
export { computeNextCheck, spreadOffsetSeconds, type NextCheckInput, type Schedule } from '../protocol/next-check.js';

/** True when a check is due: never checked (null) or the next-check time has come. */
export function isDue(now: Date, nextCheckAt: Date | string | null): boolean {
  if (nextCheckAt === null) return true;
  const t = typeof nextCheckAt === 'string' ? Date.parse(nextCheckAt) : nextCheckAt.getTime();
  // An unreadable time must not stop the device from checking forever.
  return Number.isNaN(t) || now.getTime() >= t;
}
