import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { targetUrl, type DeltaCustom, type ReleaseTargetCustom } from '../../protocol/index.js';
import { decodeContainer } from '../../delta/format.js';
import { applyDelta } from '../../delta/patch.js';
import { treeStream } from '../../delta/tree-stream.js';
import { fetchTarget, verifyDownload } from '../download.js';
import { VerificationError } from '../errors.js';
import { stageRelease } from '../install.js';
import { trySendReport } from '../report.js';
import type { VerifiedTarget } from '../tuf-client.js';
import type { UpdateRecord } from './update-record.js';
import { saveUpdateRecord } from './update-record.js';
import type { AgentPaths } from '../paths.js';
import type { AgentState } from '../state.js';
import { errorText } from '../../util/error-text.js';

type Delta = NonNullable<UpdateRecord['delta']>;

/**
 * Checks a delta offer against the delegated deltas role's signed target (looked up by the
 * caller): it must turn exactly `from` into `to` of this product and channel. Returns what the
 * update record keeps, or a reason to ignore it.
 */
export function acceptDelta(target: VerifiedTarget | undefined, state: AgentState, from: string, to: string, fullLength: number): Delta | string {
  if (!target) return 'the signed metadata does not list it';
  // Checked before a byte is read: the deltas key is online, and a delta longer than the full
  // archive it replaces is never worth downloading (a compromised key could declare 300 MB).
  if (target.length > fullLength) return `its signed length ${target.length} is larger than the full archive's ${fullLength} bytes`;
  // Unverified until checked: each field may be anything.
  const c = (target.custom as { patchwire?: { [K in keyof DeltaCustom['patchwire']]?: unknown } }).patchwire;
  if (!c || c.kind !== 'delta' || c.product !== state.product || c.channel !== state.channel || c.from !== from || c.to !== to) {
    return `its signed custom field does not describe ${state.product}/${state.channel} ${from} -> ${to}`;
  }
  if (!Number.isSafeInteger(c.newStreamLength) || (c.newStreamLength as number) <= 0) return 'its signed newStreamLength is malformed';
  return { target: target.path, sha256: target.sha256, length: target.length, newStreamLength: c.newStreamLength as number, failed: false, applied: false };
}

export interface DeltaContext {
  paths: AgentPaths;
  state: AgentState;
  record: UpdateRecord;
  custom: ReleaseTargetCustom;
  fetch: typeof fetch;
  signal?: AbortSignal;
  /** Told what downloading the delta transferred. */
  onTransfer?: (t: { bytes: number; resumedFrom: number }) => void;
}

/** Thrown when the installed old tree is not the one the delta was made for (a local change): no report. */
class LocalTreeMismatch extends Error {
  override name = 'LocalTreeMismatch';
}

/**
 * The `delta` state: download the delta (verified against its signed length and sha256), rebuild
 * the old tree stream from `versions/<from>`, apply (bounded by the signed new stream length),
 * and build `versions/<to>` from the result, which stageRelease checks against the publisher's
 * tree hash. A throw is the state's `fallback` (machine.ts): the full archive follows; a delta
 * that is itself bad (not a locally changed old tree) is reported as `delta-failed` first, so
 * the server stops offering it.
 */
export async function runDeltaState(ctx: DeltaContext): Promise<'success' | 'nothing-to-do'> {
  const r = ctx.record;
  const d = r.delta;
  if (!d || d.failed || r.fromVersion === null) return 'nothing-to-do';
  const fromDir = join(ctx.paths.versions, r.fromVersion);
  if (!(await stat(fromDir).then((s) => s.isDirectory(), () => false))) return 'nothing-to-do';
  const file = join(ctx.paths.downloads, d.sha256);
  const tar = join(ctx.paths.downloads, `${r.toVersion}.tar`);
  try {
    const opts = {
      url: targetUrl(r.server, ctx.state.product, d.target, d.sha256),
      downloadsDir: ctx.paths.downloads, sha256: d.sha256, length: d.length, fetch: ctx.fetch, signal: ctx.signal,
    };
    ctx.onTransfer?.(await fetchTarget(opts));
    await verifyDownload(opts);
    const delta = await readFile(file);
    const old = await treeStream(fromDir, ctx.signal);
    const header = decodeContainer(delta);
    const oldSha = createHash('sha256').update(old).digest('hex');
    if (header.oldLength !== old.length || Buffer.from(header.oldSha256).toString('hex') !== oldSha) {
      throw new LocalTreeMismatch(`versions/${r.fromVersion} differs from the tree the delta was made for (changed on this device?)`);
    }
    // Bounded twice: by the length the server's deltas role signed, and by what the publisher's
    // signed tree can take as a tar stream (file bytes + a header and padding per file, plus
    // room for folder entries), so not even the server's key can make the agent allocate more.
    const publisherBound = r.treeBytes + (r.treeFiles + 1) * 2048 + 8 * 1024 * 1024;
    await writeFile(tar, applyDelta(old, delta, { maxOutput: Math.min(d.newStreamLength, publisherBound) }));
    await stageRelease(ctx.paths.dir, tar, ctx.custom, { signal: ctx.signal, gzip: false });
    d.applied = true;
    await saveUpdateRecord(ctx.paths.update, r);
    return 'success';
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    d.failed = true;
    await saveUpdateRecord(ctx.paths.update, r);
    if (!(err instanceof LocalTreeMismatch)) {
      const detail = d.target;
      await trySendReport(ctx.fetch, r.server, {
        deviceId: ctx.state.deviceId, product: ctx.state.product, channel: ctx.state.channel,
        event: 'delta-failed', version: r.fromVersion, previousVersion: r.fromVersion, detail, toVersion: r.toVersion, state: 'delta',
      }, ctx.signal);
    }
    throw new VerificationError(`the delta ${d.target} could not be applied (${errorText(err)}); falling back to the full archive`, d.target, { cause: err });
  } finally {
    await rm(tar, { force: true });
    await rm(file, { force: true });
    await rm(`${file}.part`, { force: true });
  }
}
