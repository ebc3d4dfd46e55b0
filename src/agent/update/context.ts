import { targetUrl, type CheckResponse, type ReleaseTargetCustom } from '../../protocol/index.js';
import type { AgentPaths } from '../paths.js';
import { saveState, type AgentState } from '../state.js';
import type { UpdateRecord } from './update-record.js';
import type { ProgressReports } from './progress.js';

/** What the states share during one run of the machine. */
export interface UpdateContext {
  paths: AgentPaths;
  state: AgentState;
  /** The update in progress (created by `check`, loaded from disk on a resume). */
  record: UpdateRecord | null;
  /** The error of the state that failed last in this run. */
  error?: unknown;
  now: () => Date;
  fetch: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (received: number, total: number) => void;
  /** When this run's check was sent (`lastCheckAt`); null for a resumed update without a check. */
  checkedAt: string | null;
  /** The server and answer of this run's check. */
  server: string;
  response: CheckResponse | null;
  /** The folder's random install id, sent with the check (install-id.ts). */
  installId?: string;
  /** What this run downloaded for the patch (full archive or delta), for `patch` in the result. */
  transfer?: { bytes: number; resumedFrom: number };
  /** The health command's verdict, for the `rolled-back` report. */
  healthDetail?: string;
  /** The agent's own warnings of this run (e.g. a refused delta), shown with the server's. */
  notes?: string[];
  /** This run's progress reports (downloading, installing), sent without waiting (progress.ts). */
  progress?: ProgressReports;
  /** Set by `check` when the offered version is one the device rolled back from (or lower): not installed. */
  heldBack?: string;
}

/** Updates the agent state in the context and on disk. */
export async function save(ctx: UpdateContext, update: Partial<AgentState>): Promise<void> {
  ctx.state = { ...ctx.state, ...update };
  await saveState(ctx.paths.state, ctx.state);
}

/** The record of the update in progress; every state after `check` has one. */
export function need(ctx: UpdateContext): UpdateRecord {
  if (!ctx.record) throw new Error('internal error: an update state ran without an update record');
  return ctx.record;
}

/** The signed custom field of the release being installed, as verified at check time. */
export function releaseCustom(ctx: UpdateContext, r: UpdateRecord): ReleaseTargetCustom {
  return {
    patchwire: { kind: 'full', product: ctx.state.product, channel: ctx.state.channel, version: r.toVersion, treeHash: r.treeHash, treeBytes: r.treeBytes, treeFiles: r.treeFiles },
  };
}

/** What fetchTarget and verifyDownload need for the release's full archive. */
export function downloadOpts(ctx: UpdateContext, r: UpdateRecord) {
  return {
    url: targetUrl(r.server, ctx.state.product, r.target, r.sha256),
    downloadsDir: ctx.paths.downloads,
    sha256: r.sha256,
    length: r.length,
    fetch: ctx.fetch,
    signal: ctx.signal,
    onProgress: ctx.onProgress,
  };
}
