import type { Log, Services } from './services/index.js';

export interface JobOptions {
  /** How often a primary consolidates its mirrors (default 60 s). */
  reconcileIntervalMs?: number;
  /** How often a mirror replicates from its primary (default 30 s). */
  syncIntervalMs?: number;
  log: Log;
}

export interface BackgroundJobs {
  /** Stops the timers (a run in progress finishes on its own). */
  stop(): void;
}

/**
 * The server's work that no request starts: re-signing timestamps before they expire and logging
 * alarms (every minute, even when nobody asks); on a mirror, replication from the primary; on a
 * primary with a mirror token, consolidation of its mirrors; everywhere, the dashboard's fleet
 * snapshots (services/fleet-history.ts).
 */
export function startBackgroundJobs(services: Services, o: JobOptions): BackgroundJobs {
  const resign = setInterval(() => {
    for (const p of services.products.list()) services.tuf.refresh(p).catch((err) => o.log.error({ err }, 'timestamp re-signing failed'));
    services.status.alarms();
  }, 60_000);
  resign.unref();
  const timers = [resign];
  // The dashboard's chart over time; one process of a shared database counts per interval.
  const { fleetHistory } = services;
  timers.push(every(fleetHistory.o.intervalMs, () => services.catalog.coordination.tryLock('fleet-snapshot', () => fleetHistory.snapshot()), (err) => o.log.error({ err }, 'the fleet snapshot failed')));
  // Mirror: replicate now (without waiting: a mirror serves what it has while the primary is
  // away) and then periodically. Primary: consolidate the mirrors periodically.
  const { replicator, consolidation } = services;
  if (replicator) {
    timers.push(every(o.syncIntervalMs ?? 30_000, () => replicator.sync(), (err) => o.log.warn({ err: (err as Error).message }, 'replication from the primary failed; serving what this mirror has')));
  } else {
    // Staged rollouts: phases that --every moved on are written down (checks already offer them:
    // rolloutAt), one process of a shared database at a time. A mirror copies its primary's.
    const coordination = services.catalog.coordination;
    timers.push(every(5_000, () => coordination.tryLock('rollouts', () => services.rollouts.tick()), (err) => o.log.error({ err }, 'advancing rollouts failed'), false));
  }
  if (!replicator && consolidation) {
    // One process of a shared database consolidates at a time; the others skip that round.
    const coordination = services.catalog.coordination;
    timers.push(every(o.reconcileIntervalMs ?? 60_000, () => coordination.tryLock('consolidate', () => consolidation.reconcile()), (err) => o.log.error({ err }, 'consolidation failed'), false));
  }
  return { stop: () => { for (const t of timers) clearInterval(t); } };
}

/** Runs `job` every `ms` (and once now when `now`), never two at a time; errors go to `onError`. */
function every(ms: number, job: () => Promise<unknown>, onError: (err: unknown) => void, now = true): NodeJS.Timeout {
  let busy = false;
  const run = () => {
    if (busy) return;
    busy = true;
    job().catch(onError).finally(() => { busy = false; });
  };
  if (now) run();
  const t = setInterval(run, ms);
  t.unref();
  return t;
}
