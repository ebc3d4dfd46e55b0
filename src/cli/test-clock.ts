import { readFileSync } from 'node:fs';
import type { Clock } from '../server/clock.js';

/** PATCHWIRE_CLOCK_FILE holds something that is not a number of milliseconds. */
export class TestClockError extends Error {
  override name = 'TestClockError';
}

/**
 * TEST HOOK, not for production: with PATCHWIRE_ENABLE_FAULTS=1, PATCHWIRE_CLOCK_FILE names a file
 * holding how many milliseconds the server's clock runs ahead of the system clock. It is read at
 * every reading of the clock, so a test moves a running `patchwire serve` past a scheduled time by
 * rewriting the file instead of waiting for it (test/helpers/server-clock.ts); a missing or empty
 * file means 0. Without PATCHWIRE_ENABLE_FAULTS=1 the variable is ignored.
 */
export function testClock(env: NodeJS.ProcessEnv): Clock | undefined {
  const file = env.PATCHWIRE_CLOCK_FILE;
  if (env.PATCHWIRE_ENABLE_FAULTS !== '1' || !file) return undefined;
  return () => new Date(Date.now() + offsetMs(file));
}

function offsetMs(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const n = Number(text);
  if (!Number.isFinite(n)) throw new TestClockError(`PATCHWIRE_CLOCK_FILE ${file} holds ${JSON.stringify(text)}, not a number of milliseconds`);
  return n;
}
