import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminRequest, adminTarget, printJson, withAdminOptions, type AdminTarget } from './admin-client.js';
import { CliError } from './cli-error.js';
import type { ReconcileJobStart, ReconcileJobView, ReconcileView } from '../protocol/wire.js';

/** Polls start quick (a small fleet converges in well under a second) and settle at one a second. */
const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 1000;
/** Progress lines (text mode, on stderr) at most this often. */
const PROGRESS_EVERY_MS = 2000;
/** Polls that may fail to reach the server in a row (it restarts, a load balancer moves) before the CLI gives up. */
const UNREACHABLE_POLLS = 10;

export function register(program: Command): void {
  withAdminOptions(program
    .command('reconcile')
    .description("consolidate now: pull every mirror's device records, merge them, push the merged records and the schedules back (a job on the server; progress on stderr)"), 'the primary patchwire server URL (required)')
    .option('--json', 'print one JSON document')
    .action(async (o: { server?: string; token?: string; json?: boolean }) => {
      const t = adminTarget(o);
      const r = await runJob(t, o.json ? undefined : (line) => process.stderr.write(`${line}\n`));
      if (o.json) printJson(r);
      else if (r.mirrors.length === 0 && !r.pending?.length) process.stdout.write('no mirrors have announced themselves to this server\n');
      else {
        for (const m of r.mirrors) {
          const skipped = m.skipped ? `; skipped ${m.skipped} invalid records: ${m.skippedWhy}` : '';
          process.stdout.write(`${m.url}: ${m.error ? `FAILED: ${m.error}` : `pulled ${m.pulled}, pushed ${m.pushed}`}${skipped}\n`);
        }
        for (const url of r.pending ?? []) process.stdout.write(`${url}: pending, not contacted (\`patchwire mirrors approve ${url}\`)\n`);
      }
      // A failed mirror is reported (exit 1) after the others were consolidated; the next run retries.
      if (r.mirrors.some((m) => m.error)) throw new CliError('', 1);
    });
}

/**
 * Starts a reconcile job (or joins the one running) and polls it until it ends, so no request
 * stays open for the length of the run. A server from before jobs (no such route) gets the old
 * single request. A job that failed as a whole is exit 1 with its error.
 */
async function runJob(t: AdminTarget, progress?: (line: string) => void): Promise<ReconcileView> {
  let start: ReconcileJobStart;
  try {
    start = await adminRequest<ReconcileJobStart>(t, 'POST', '/reconcile/jobs');
  } catch (err) {
    if (err instanceof CliError && err.code === 'PW_NOT_FOUND') return adminRequest<ReconcileView>(t, 'POST', '/reconcile');
    throw err;
  }
  let job = start.job;
  progress?.(`reconcile job ${job.id} ${start.joined ? 'joined (it was running already)' : 'started'}`);
  let wait = POLL_FIRST_MS;
  let shownAt = Date.now();
  let shown = '';
  let unreachable = 0;
  while (job.state === 'running') {
    await sleep(wait);
    wait = Math.min(wait * 2, POLL_MAX_MS);
    try {
      job = (await adminRequest<{ job: ReconcileJobView }>(t, 'GET', `/reconcile/jobs/${job.id}`)).job;
      unreachable = 0;
    } catch (err) {
      if (!(err instanceof CliError && err.code === 'PW_UNREACHABLE') || ++unreachable >= UNREACHABLE_POLLS) throw err;
      continue;
    }
    const line = progressLine(job);
    if (progress && line !== shown && Date.now() - shownAt >= PROGRESS_EVERY_MS) {
      progress(line);
      shown = line;
      shownAt = Date.now();
    }
  }
  if (job.state === 'failed' || !job.result) throw new CliError(`reconcile job ${job.id} failed: ${job.error ?? 'it ended without a result'}`, 1);
  return job.result;
}

/** `mirror http://m1:8081 pulling (2 pages, 10000 merged); http://m2:8081 waiting` */
function progressLine(job: ReconcileJobView): string {
  return `reconcile job ${job.id}: ${job.mirrors.map((m) => {
    const counts = m.phase === 'pulling' ? ` (${m.pulledPages} pages, ${m.pulled} merged)`
      : m.phase === 'pushing' ? ` (pulled ${m.pulled}; pushed ${m.pushedPages} pages, ${m.pushed} records)`
        : m.phase === 'failed' ? `: ${m.error}` : '';
    return `${m.url} ${m.phase}${counts}`;
  }).join('; ') || 'no approved mirrors'}`;
}
