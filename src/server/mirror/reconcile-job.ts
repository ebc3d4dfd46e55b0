import type { ReconcileJobMirrorView, ReconcileJobView, ReconcileView } from '../../protocol/wire.js';

/**
 * The progress of one consolidation run (consolidation.ts), as GET /v1/admin/reconcile/jobs/:id
 * shows it: the run updates its mirrors' counters page by page; `view()` is a copy for the wire.
 * A run started by the timer is a job too, so an operator's start during it joins it.
 */
export class ReconcileJob {
  state: ReconcileJobView['state'] = 'running';
  updatedAt: Date;
  finishedAt: Date | null = null;
  readonly mirrors = new Map<string, ReconcileJobMirrorView>();
  pending: string[] = [];
  result?: ReconcileView;
  error?: string;
  /** Settles when the run ends (never rejects: a broken run is `failed` with `error`). */
  done: Promise<void> = Promise.resolve();

  constructor(readonly id: string, readonly startedAt: Date) {
    this.updatedAt = startedAt;
  }

  /** The mirror's progress entry (made in the order the run meets the mirrors). */
  mirror(url: string): ReconcileJobMirrorView {
    let m = this.mirrors.get(url);
    if (!m) this.mirrors.set(url, (m = { url, phase: 'waiting', pulledPages: 0, pulled: 0, pushedPages: 0, pushed: 0, skipped: 0 }));
    return m;
  }

  view(): ReconcileJobView {
    const mirrors = [...this.mirrors.values()].map((m) => ({ ...m }));
    const errors: ReconcileJobView['errors'] = mirrors.filter((m) => m.error).map((m) => ({ mirror: m.url, error: m.error! }));
    if (this.error) errors.push({ mirror: null, error: this.error });
    return {
      id: this.id, state: this.state, startedAt: this.startedAt.toISOString(), updatedAt: this.updatedAt.toISOString(),
      finishedAt: this.finishedAt?.toISOString() ?? null, mirrors, pending: [...this.pending], errors,
      ...(this.result ? { result: this.result } : {}), ...(this.error ? { error: this.error } : {}),
    };
  }
}
