import { readFile, rm } from 'node:fs/promises';
import { isDeltaTargetPath, isName, isVersion, normaliseServerUrl } from '../../protocol/index.js';
import { fsyncDir, writeFileAtomic } from '../../util/atomic-write.js';
import { dirname } from 'node:path';
import { AgentStateError } from '../errors.js';
import { SAVED_STATES, type SavedState } from './machine.js';

export const UPDATE_RECORD_FORMAT = 1;

/**
 * `.patchwire/update.json`, format 1: the update in progress, saved by each state of the update
 * machine before it acts (temporary file, fsync, rename). Absent when no update is in progress.
 * A frozen on-disk format: add fields, never rename them; `state` is one of SAVED_STATES.
 */
export interface UpdateRecord {
  format: 1;
  /** The state that saved the record (and then started to act). */
  state: SavedState;
  /** The server the release was offered by (after verified moved notices). */
  server: string;
  /** The version `current` pointed at when the update began (null: first install). */
  fromVersion: string | null;
  /** `previousVersion` of the agent state when the update began (restored by a rollback). */
  fromPreviousVersion: string | null;
  toVersion: string;
  /** The signed TUF target of the full archive, its sha256 and length. */
  target: string;
  sha256: string;
  length: number;
  /** The signed tree hash, size and file count of the release (custom field of the target). */
  treeHash: string;
  treeBytes: number;
  treeFiles: number;
  /** The check answer's schedule, for the next-check time when a resumed update finishes. */
  schedule: { at: string; spreadSeconds: number } | null;
  startedAt: string;
  /** Set when a state failed: which one, with `failure` or `retry`, and the error message. */
  failure: { state: string; event: 'failure' | 'retry'; message: string } | null;
  /** True once the outcome was reported (or queued as the pending report). */
  reported: boolean;
  /**
   * A delta from `fromVersion`, verified through the delegated deltas role at check time; `failed`
   * once applying it failed (the update then continues with the full archive); `applied` once it
   * rebuilt the new tree.
   */
  delta?: { target: string; sha256: string; length: number; newStreamLength: number; failed: boolean; applied: boolean } | null;
}

/** What an update came to, derived from the record. */
export type UpdateOutcome = 'applied' | 'rolled-back' | 'failed' | 'retry';

export function outcomeOf(r: UpdateRecord): UpdateOutcome {
  if (r.failure === null) return 'applied';
  if (r.failure.state === 'health') return 'rolled-back';
  return r.failure.event === 'retry' ? 'retry' : 'failed';
}

const FIX = 'the install folder itself is consistent (`current` is switched atomically): delete that file and run `patchwire check` again';

/** Reads the update record; null when there is none. Throws AgentStateError when it is invalid. */
export async function loadUpdateRecord(path: string): Promise<UpdateRecord | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new AgentStateError(`cannot read the update record ${path} (${code ?? String(err)}): check the file's permissions`, path, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AgentStateError(`the update record ${path} is corrupt (not valid JSON): ${FIX}`, path, { cause: err });
  }
  const problem = updateRecordProblem(value);
  if (problem) throw new AgentStateError(`the update record ${path} is invalid: ${problem}; ${FIX}`, path);
  return value as UpdateRecord;
}

/** Writes the record atomically (temporary file, fsync, rename, fsync folder). */
export async function saveUpdateRecord(path: string, record: UpdateRecord): Promise<void> {
  const problem = updateRecordProblem(record);
  if (problem) throw new AgentStateError(`refusing to save an invalid update record to ${path}: ${problem}`, path);
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + '\n', 0o600);
}

export async function removeUpdateRecord(path: string): Promise<void> {
  await rm(path, { force: true });
  fsyncDir(dirname(path));
}

export function updateRecordProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'it is not a JSON object';
  const r = v as Record<string, unknown>;
  if (r.format !== UPDATE_RECORD_FORMAT) return `unknown format ${JSON.stringify(r.format)} (this agent reads format ${UPDATE_RECORD_FORMAT})`;
  if (!(SAVED_STATES as readonly unknown[]).includes(r.state)) return `unknown state ${JSON.stringify(r.state)} (known: ${SAVED_STATES.join(', ')})`;
  if (normaliseServerUrl(r.server) !== r.server) return 'field "server" must be an http(s) URL';
  for (const k of ['fromVersion', 'fromPreviousVersion'] as const) {
    if (r[k] !== null && !isVersion(r[k])) return `field "${k}" must be a semver version or null`;
  }
  if (!isVersion(r.toVersion)) return 'field "toVersion" must be a semver version';
  if (typeof r.target !== 'string' || r.target === '' || r.target.length > 1024) return 'field "target" must be a target path';
  for (const k of ['sha256', 'treeHash'] as const) {
    if (typeof r[k] !== 'string' || !/^[0-9a-f]{64}$/.test(r[k] as string)) return `field "${k}" must be 64 hex digits`;
  }
  for (const k of ['length', 'treeBytes', 'treeFiles'] as const) {
    if (!Number.isSafeInteger(r[k]) || (r[k] as number) < 0) return `field "${k}" must be a whole number >= 0`;
  }
  if (r.schedule !== null) {
    const s = r.schedule as Record<string, unknown> | undefined;
    if (typeof s !== 'object' || s === null || typeof s.at !== 'string' || Number.isNaN(Date.parse(s.at)) || !Number.isSafeInteger(s.spreadSeconds) || (s.spreadSeconds as number) < 0) {
      return 'field "schedule" must be { at, spreadSeconds } or null';
    }
  }
  if (typeof r.startedAt !== 'string' || Number.isNaN(Date.parse(r.startedAt))) return 'field "startedAt" must be an ISO-8601 time';
  if (r.failure !== null) {
    const f = r.failure as Record<string, unknown> | undefined;
    if (typeof f !== 'object' || f === null || !isName(f.state) || (f.event !== 'failure' && f.event !== 'retry') || typeof f.message !== 'string') {
      return 'field "failure" must be { state, event, message } or null';
    }
  }
  if (typeof r.reported !== 'boolean') return 'field "reported" must be true or false';
  if (r.delta !== undefined && r.delta !== null) {
    const d = r.delta as Record<string, unknown>;
    if (typeof d !== 'object' || typeof d.target !== 'string' || !isDeltaTargetPath(d.target) || typeof d.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(d.sha256)
      || !Number.isSafeInteger(d.length) || !Number.isSafeInteger(d.newStreamLength) || typeof d.failed !== 'boolean' || typeof d.applied !== 'boolean') {
      return 'field "delta" must be { target, sha256, length, newStreamLength, failed, applied } or null';
    }
  }
  return undefined;
}
