import type { ReportRequest } from '../../protocol/index.js';
import { REPORT_DETAIL_MAX } from '../../protocol/wire.js';
import { errorText } from '../../util/error-text.js';
import { sendReport } from '../report.js';
import type { UpdateStateName } from './machine.js';
import type { UpdateRecord } from './update-record.js';

export type ProgressEvent = 'downloading' | 'installing';

/**
 * The progress report each update state announces when it is entered (once per run: a delta that
 * falls back to the full archive is still one `downloading`). The update never waits for one to
 * arrive: they go out alongside the states' work, in order, and one that fails is a warning.
 */
export const PROGRESS_AT: Readonly<Partial<Record<UpdateStateName, ProgressEvent>>> = {
  delta: 'downloading',
  download: 'downloading',
  stage: 'installing',
};

/** How long the outcome report (applied, failed, ...) waits for the progress reports before it, at most. */
export const PROGRESS_SETTLE_MS = 5_000;

/** The fields every report of an update carries: who, and the release it installs (the server keeps it as the history's version). */
export function updateReport(base: { deviceId: string; product: string; channel: string }, r: UpdateRecord): Pick<ReportRequest, 'deviceId' | 'product' | 'channel' | 'toVersion'> {
  return { deviceId: base.deviceId, product: base.product, channel: base.channel, toVersion: r.toVersion };
}

/**
 * An error text cut to what a report carries (REPORT_DETAIL_MAX characters). A NUL (a health
 * command's binary output) becomes U+FFFD: the server refuses a detail holding one (PostgreSQL
 * text cannot store it), and the report would stay pending forever.
 */
export function reportDetail(text: string): string {
  const clean = text.replaceAll('\u0000', '\uFFFD');
  return clean.length > REPORT_DETAIL_MAX ? `${clean.slice(0, REPORT_DETAIL_MAX - 1)}…` : clean;
}

/**
 * The progress reports of one run of the update machine. `enter` starts a state's report without
 * waiting for it (each one after the one before, so the server receives them in order); `settle`
 * waits for those in flight, at most PROGRESS_SETTLE_MS, so the outcome report comes after them;
 * `close` stops whatever is still in flight. A report that fails (server down, an older server
 * that does not know the event) is passed to `warn` and changes nothing else.
 */
export class ProgressReports {
  readonly #sent = new Set<ProgressEvent>();
  readonly #stop = new AbortController();
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly send: (report: ReportRequest, signal: AbortSignal) => Promise<void>,
    private readonly warn: (message: string) => void,
    private readonly signal?: AbortSignal,
  ) {}

  /** Sends a report with sendReport to `server` through `fetchFn`. */
  static to(fetchFn: typeof fetch, server: () => string, warn: (message: string) => void, signal?: AbortSignal): ProgressReports {
    return new ProgressReports((report, s) => sendReport(fetchFn, server(), report, s), warn, signal);
  }

  enter(state: UpdateStateName, report: (event: ProgressEvent) => ReportRequest): void {
    const event = PROGRESS_AT[state];
    if (event === undefined || this.#sent.has(event)) return;
    this.#sent.add(event);
    const body = report(event);
    const signal = this.signal ? AbortSignal.any([this.signal, this.#stop.signal]) : this.#stop.signal;
    this.#chain = this.#chain.then(() => this.send(body, signal)).catch((err: unknown) => {
      if (signal.aborted) return;
      this.warn(`the progress report '${event}' of ${body.toVersion ?? 'the update'} did not reach the server (${errorText(err)}); the update goes on without it`);
    });
  }

  async settle(ms = PROGRESS_SETTLE_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#chain, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.#stop.abort();
  }
}
