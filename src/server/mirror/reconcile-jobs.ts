import type { Store } from '../../store/store.js';
import type { ReconcileJobStart, ReconcileJobView } from '../../protocol/wire.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import { errorText } from '../../util/error-text.js';
import type { ReconcileJob } from './reconcile-job.js';

/** The setting that holds the progress of the latest job (one: a job's progress is kept until the next starts). */
const SETTING = 'reconcile_job';
/** How often a running job's progress is written down, so every process on the database can answer for it. */
export const JOB_BEAT_MS = 2000;
/** A running job whose progress was last written longer ago than this: its process stopped (killed, restarted). */
export const JOB_STALE_MS = 30_000;
const JOB_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Written { view: ReconcileJobView; writtenAt: number }

/** What ReconcileJobs needs of the consolidation (consolidation.ts). */
export interface JobRunner {
  readonly running: ReconcileJob | undefined;
  readonly last: ReconcileJob | undefined;
  begin(): ReconcileJob;
}

/**
 * Reconcile as a job (POST /v1/admin/reconcile/jobs, GET /v1/admin/reconcile/jobs/:id): a start
 * answers at once with the job's id, and the caller polls its progress, so no request stays open
 * while a million records are consolidated (the server closes a socket silent for 120 s).
 *
 * One run at a time across every process on the database (the `consolidate` lock the timer takes
 * too): a start while a run is in progress joins it, in this process or another. The running
 * process writes the job's progress to the store every JOB_BEAT_MS and when it ends, so behind a
 * load balancer a poll that reaches another process is answered too; a running job not written
 * for JOB_STALE_MS is reported failed (its process stopped).
 */
export class ReconcileJobs {
  constructor(
    private readonly runner: JobRunner,
    private readonly store: Store,
    private readonly now: Clock,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {}

  /** Starts a run, or joins the one in progress here or in another process of the database. */
  async start(): Promise<ReconcileJobStart> {
    if (this.runner.running) return { job: this.runner.running.view(), joined: true };
    const began = await new Promise<ReconcileJob | null>((resolve, reject) => {
      this.store.coordination.tryLock('consolidate', async () => {
        const job = this.runner.begin();
        resolve(job);
        await job.done;
      }).then((r) => { if (!r.ran) resolve(null); }, reject);
    });
    if (began) return { job: began.view(), joined: false };
    // Another holds the lock: this process's timer (its run is `running` once it began), or another process.
    const late = this.runner.running as ReconcileJob | undefined; // (not narrowed: it changed while we waited)
    if (late) return { job: late.view(), joined: true };
    const other = await this.written();
    if (other?.view.state === 'running' && !this.stale(other)) return { job: other.view, joined: true };
    throw new ApiError('PW_RECONCILE_BUSY', 'another server process of this database is starting a consolidation; start again in a few seconds to join it');
  }

  /** The job's progress: from this process when it runs or ran it, else as its process wrote it down. */
  async get(id: string): Promise<ReconcileJobView> {
    if (!JOB_ID_RE.test(id)) throw new ApiError('PW_BAD_REQUEST', 'the job id is not one POST /v1/admin/reconcile/jobs answers (a UUID)');
    for (const job of [this.runner.running, this.runner.last]) if (job?.id === id) return job.view();
    const w = await this.written();
    if (w?.view.id !== id) {
      throw new ApiError('PW_UNKNOWN_JOB', `no reconcile job ${id} is known here: only the latest job is kept (a newer one started), or its server restarted before writing it; \`patchwire reconcile\` starts one`);
    }
    if (w.view.state === 'running' && this.stale(w)) {
      const at = new Date(w.writtenAt).toISOString();
      return { ...w.view, state: 'failed', error: `the server process running this job stopped reporting its progress (last at ${at}); \`patchwire reconcile\` starts another, which resumes from the mirrors' cursors`, errors: [...w.view.errors, { mirror: null, error: `stopped reporting at ${at}` }] };
    }
    return w.view;
  }

  /** Writes a job's progress every JOB_BEAT_MS while it runs, and once when it ends (consolidation's onStart). */
  track(job: ReconcileJob): void {
    // One write at a time, in order (on PostgreSQL two could commit out of order on two connections).
    let chain = Promise.resolve();
    const write = () => (chain = chain.then(() => this.store.setSetting(SETTING, JSON.stringify({ view: job.view(), writtenAt: this.now().getTime() } satisfies Written)))
      .catch((err: unknown) => this.log.warn({ job: job.id, err: errorText(err) }, 'writing the reconcile job\'s progress failed; polls reaching other processes may see it stale')));
    void write();
    const beat = setInterval(write, JOB_BEAT_MS);
    beat.unref();
    void job.done.finally(() => {
      clearInterval(beat);
      return write();
    });
  }

  private async written(): Promise<Written | undefined> {
    const text = await this.store.getSetting(SETTING);
    if (!text) return undefined;
    try {
      const w = JSON.parse(text) as Written;
      return typeof w?.view?.id === 'string' && typeof w.writtenAt === 'number' ? w : undefined;
    } catch {
      return undefined;
    }
  }

  private stale(w: Written): boolean {
    return this.now().getTime() - w.writtenAt > JOB_STALE_MS;
  }
}
