import { setTimeout as delay } from 'node:timers/promises';
import type { CheckResult } from './check.js';
import { describeResult } from './describe-result.js';
import { errorText } from '../util/error-text.js';
import { agentPaths } from './paths.js';
import { loadState } from './state.js';
import { listenForReleases } from './push/push-listener.js';
import { PushPlan } from './push/push-plan.js';

export interface AgentLoopOptions {
  dir: string;
  /** Aborting it stops the loop after the current step; runAgent then resolves. */
  signal: AbortSignal;
  now?: () => Date;
  fetch?: typeof fetch;
  /** Waits `ms` or until `signal` aborts (whichever first); must not reject on abort. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  log?: (line: string) => void;
  /** Called after each successful check (embedding programs, tests). */
  onCheck?: (result: CheckResult) => void;
  /**
   * Runs one check (`force`: even though not due, because the event stream announced a release).
   * Default: runCheck in this process. `patchwire agent` runs each check in a short-lived child
   * process instead, so the long-lived agent stays small while it waits.
   */
  check?: (o: { force: boolean }) => Promise<CheckResult>;
  /**
   * Hold the server's event stream open while waiting and check soon after it announces a
   * release (default true; docs/design.md, "Push and pull"). Off, or while the stream is down,
   * the agent checks on its schedule alone.
   */
  push?: boolean;
}

const FIRST_BACKOFF_SECONDS = 60;
/** Longest single sleep: re-reading the state at least daily survives clock jumps and timer limits. */
const MAX_SLEEP_MS = 86_400_000;

/**
 * Runs the agent forever: a check whenever due, then sleep until the next check time. A failed
 * check (server down, bad state, refused metadata) is logged and retried after a backoff that
 * starts at 60 s and doubles up to the check interval, so the agent never crash-loops.
 * `signal` also aborts the check in progress (the saved update state resumes it next time).
 */
export async function runAgent(opts: AgentLoopOptions): Promise<void> {
  const { signal } = opts;
  const now = opts.now ?? (() => new Date());
  const sleep = opts.sleep ?? defaultSleep;
  const log = opts.log ?? ((line: string) => console.log(line));
  // Loaded on first use: a caller that brings its own `check` never loads the TUF client.
  const check = opts.check ?? (async ({ force }: { force: boolean }) => (await import('./check.js')).runCheck({ dir: opts.dir, now, fetch: opts.fetch, signal, force }));
  const plan = new PushPlan();
  let lastCheckEnd = 0;
  let wake: (() => void) | undefined;
  const listening = opts.push === false ? undefined : listenForReleases({
    dir: opts.dir, signal, now, log,
    onRelease: (a) => void loadState(agentPaths(opts.dir).state).then((s) => {
      if (!plan.announce(a, s, now().getTime(), lastCheckEnd)) return;
      log(`${now().toISOString()} push: ${a.version} announced; checking in ${Math.max(0, Math.round((plan.dueAt! - now().getTime()) / 1000))} s`);
      wake?.();
    }, () => {}),
  });
  let backoff = FIRST_BACKOFF_SECONDS;
  let force = false;
  while (!signal.aborted) {
    let waitMs: number;
    try {
      const r = await check({ force });
      force = false;
      log(`${now().toISOString()} ${describeResult(r, opts.dir)}`);
      opts.onCheck?.(r);
      plan.checked(r, now().getTime());
      backoff = FIRST_BACKOFF_SECONDS;
      waitMs = Date.parse(r.nextCheckAt) - now().getTime();
    } catch (err) {
      if (signal.aborted) break; // Stopped, not failed: no retry to announce.
      // A failed push-triggered check stays forced: its retry must not find it "not due".
      const interval = await loadState(agentPaths(opts.dir).state).then((s) => s.intervalSeconds, () => 3600);
      const wait = Math.min(backoff, Math.max(interval, FIRST_BACKOFF_SECONDS));
      log(`${now().toISOString()} check failed: ${errorText(err)} (retrying in ${wait} s)`);
      waitMs = wait * 1000;
      backoff = Math.min(backoff * 2, Math.max(interval, FIRST_BACKOFF_SECONDS));
    }
    lastCheckEnd = now().getTime();
    if (signal.aborted) break;
    // At least one second between checks, so a clock that stands still cannot make a busy loop.
    const wakeAt = lastCheckEnd + Math.min(Math.max(waitMs, 1000), MAX_SLEEP_MS);
    // Sleeps until the scheduled time, or the push-planned one when earlier (an announcement wakes the sleep to re-plan).
    while (!signal.aborted) {
      const target = Math.min(wakeAt, plan.dueAt ?? Infinity);
      const ms = target - now().getTime();
      if (ms <= 0) break;
      const woken = new AbortController();
      wake = () => woken.abort();
      await sleep(ms, AbortSignal.any([signal, woken.signal]));
      wake = undefined;
      if (!woken.signal.aborted) break;
    }
    if (plan.dueAt !== undefined && plan.dueAt <= now().getTime()) {
      plan.take();
      force = true;
    }
  }
  await listening;
}

async function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => {});
}
