import { reportUrl, type ReportRequest } from '../protocol/index.js';
import { postJson } from './http-json.js';
import { ServerError } from './errors.js';

/**
 * Refusals that are final for this report: the server will never take it, so keeping it pending
 * would only resend it before every check. `PW_NOT_OFFERED`: a report about a staged release that
 * its rollout never offered this device (docs/errors.md).
 */
const FINAL_REFUSALS = new Set(['PW_NOT_OFFERED']);

/** POSTs a report (`applied`, `rolled-back`, `failed`) to `{server}/v1/report`; throws as postJson does. */
export async function sendReport(fetchFn: typeof fetch, server: string, report: ReportRequest, signal?: AbortSignal): Promise<void> {
  await postJson(fetchFn, reportUrl(server), report, signal);
}

/**
 * Sends a report and says whether it is settled: it arrived, or the server refused it for good
 * (FINAL_REFUSALS). Another failure is not an error for the caller: the report stays pending in
 * the state and goes out before the next check. An abort rethrows.
 */
export async function trySendReport(fetchFn: typeof fetch, server: string, report: ReportRequest, signal?: AbortSignal): Promise<boolean> {
  try {
    await sendReport(fetchFn, server, report, signal);
    return true;
  } catch (err) {
    if (signal?.aborted) throw err;
    return err instanceof ServerError && err.code !== undefined && FINAL_REFUSALS.has(err.code);
  }
}

/**
 * Whether the server can take this report: it needs the version the device now runs for every
 * event but `failed` and `delta-failed` (POST /v1/report), so a refusal would keep it pending forever.
 */
export function isAcceptable(report: ReportRequest): boolean {
  return report.event === 'failed' || report.event === 'delta-failed' || report.version !== null;
}

/**
 * A report the server cannot take, as the `failed` it describes: agents before this one queued a
 * `rolled-back` with no version after a first install failed its health check.
 */
export function asFailedReport(report: ReportRequest): ReportRequest {
  return { ...report, event: 'failed', version: null, previousVersion: null, detail: report.detail ?? `${report.event} with no installed version` };
}
