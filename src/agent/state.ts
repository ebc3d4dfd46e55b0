import { readFile } from 'node:fs/promises';
import { isName, isReportEvent, isVersion, normaliseMac, normaliseServerUrl, type ReportRequest } from '../protocol/index.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { AgentStateError } from './errors.js';

export const STATE_FORMAT = 1;

/** `.patchwire/state.json`, format 1. A frozen on-disk format: add fields, never rename them. */
export interface AgentState {
  format: 1;
  /** The server address, updated only after a verified moved notice. */
  server: string;
  product: string;
  channel: string;
  deviceId: string;
  intervalSeconds: number;
  /** The applied version, or null before the first update. */
  version: string | null;
  /** The version before the last update, kept for `patchwire rollback`. */
  previousVersion: string | null;
  /** ISO-8601 UTC; null means due at once. */
  nextCheckAt: string | null;
  lastCheckAt: string | null;
  /** The version the device rolled back from: that version and lower ones are held back until `patchwire retry` clears this. */
  rolledBack: string | null;
  /** A report that could not be delivered yet; sent before the next check. */
  pendingReport: ReportRequest | null;
  /**
   * Optional (absent in states written before it existed): a shell command run after each switch
   * with cwd `INSTALL_DIR/current` and env PATCHWIRE_VERSION; non-zero exit or timeout rolls back.
   */
  healthCmd?: string;
  /** Optional: seconds before the health command counts as failed (default 30). */
  healthTimeoutSeconds?: number;
  /** Optional: how many previous versions stay in `versions/` after an update (default 2). */
  keep?: number;
  /**
   * Optional (issue 9): the server URLs that signed their check answers (at most
   * MAX_SIGNING_SERVERS, newest last). An unsigned answer from one of them is refused.
   */
  signingServers?: string[];
}

/** Most servers remembered in `signingServers`. */
export const MAX_SIGNING_SERVERS = 16;

export const DEFAULT_HEALTH_TIMEOUT_SECONDS = 30;
export const DEFAULT_KEEP = 2;
/** Longest health command accepted, in characters. */
export const MAX_HEALTH_CMD = 4096;
/** Longest health timeout accepted: one day. */
export const MAX_HEALTH_TIMEOUT_SECONDS = 86400;
/** Most previous versions that can be kept. */
export const MAX_KEEP = 1000;

const REINIT = 'delete the folder .patchwire and run `patchwire init` again';

/**
 * Reads and validates the state. Throws AgentStateError, naming the path, what is wrong and what
 * to do, when the file is missing, not JSON or has an invalid field (never a crash on bad state).
 */
export async function loadState(path: string): Promise<AgentState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new AgentStateError(`no agent state at ${path}: run \`patchwire init\` for this folder first`, path, { cause: err });
    }
    throw new AgentStateError(`cannot read the agent state ${path} (${code ?? String(err)}): check the file's permissions`, path, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AgentStateError(`the agent state ${path} is corrupt (not valid JSON): ${REINIT}`, path, { cause: err });
  }
  const problem = stateProblem(value);
  if (problem) throw new AgentStateError(`the agent state ${path} is invalid: ${problem}; ${REINIT}`, path);
  return value as AgentState;
}

/** Writes the state atomically (temporary file, fsync, rename, fsync folder). */
export async function saveState(path: string, state: AgentState): Promise<void> {
  const problem = stateProblem(state);
  // A bug must not persist a state that the next start would refuse.
  if (problem) throw new AgentStateError(`refusing to save an invalid agent state to ${path}: ${problem}`, path);
  await writeFileAtomic(path, JSON.stringify(state, null, 2) + '\n', 0o600);
}

/** Describes the first invalid field of a would-be state, or returns undefined when it is valid. */
export function stateProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'it is not a JSON object';
  const s = v as Record<string, unknown>;
  if (s.format !== STATE_FORMAT) return `unknown format ${JSON.stringify(s.format)} (this agent reads format ${STATE_FORMAT})`;
  if (normaliseServerUrl(s.server) !== s.server) return 'field "server" must be an http(s) URL without query or fragment';
  if (!isName(s.product)) return 'field "product" must be a product name';
  if (!isName(s.channel)) return 'field "channel" must be a channel name';
  if (typeof s.deviceId !== 'string' || normaliseMac(s.deviceId) !== s.deviceId) return 'field "deviceId" must be a MAC address like aa:bb:cc:dd:ee:ff';
  if (!Number.isSafeInteger(s.intervalSeconds) || (s.intervalSeconds as number) < 1) return 'field "intervalSeconds" must be a whole number of seconds >= 1';
  for (const k of ['version', 'previousVersion', 'rolledBack'] as const) {
    if (s[k] !== null && !isVersion(s[k])) return `field "${k}" must be a semver version or null`;
  }
  for (const k of ['nextCheckAt', 'lastCheckAt'] as const) {
    if (s[k] !== null && !isIsoTime(s[k])) return `field "${k}" must be an ISO-8601 time or null`;
  }
  if (s.healthCmd !== undefined && (typeof s.healthCmd !== 'string' || s.healthCmd.trim() === '' || s.healthCmd.length > MAX_HEALTH_CMD)) {
    return `field "healthCmd" must be a non-empty command of at most ${MAX_HEALTH_CMD} characters, or absent`;
  }
  if (s.healthTimeoutSeconds !== undefined && (!Number.isSafeInteger(s.healthTimeoutSeconds) || (s.healthTimeoutSeconds as number) < 1 || (s.healthTimeoutSeconds as number) > MAX_HEALTH_TIMEOUT_SECONDS)) {
    return `field "healthTimeoutSeconds" must be a whole number of seconds from 1 to ${MAX_HEALTH_TIMEOUT_SECONDS}, or absent`;
  }
  if (s.keep !== undefined && (!Number.isSafeInteger(s.keep) || (s.keep as number) < 0 || (s.keep as number) > MAX_KEEP)) {
    return `field "keep" must be a whole number from 0 to ${MAX_KEEP}, or absent`;
  }
  if (s.signingServers !== undefined && (!Array.isArray(s.signingServers) || s.signingServers.length > MAX_SIGNING_SERVERS
    || !s.signingServers.every((u) => normaliseServerUrl(u) === u))) {
    return `field "signingServers" must be a list of at most ${MAX_SIGNING_SERVERS} server URLs, or absent`;
  }
  if (s.pendingReport !== null) {
    const p = reportProblem(s.pendingReport);
    if (p) return `field "pendingReport" ${p}`;
  }
  return undefined;
}

function isIsoTime(v: unknown): boolean {
  return typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v));
}

export function reportProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be an object or null';
  const r = v as Record<string, unknown>;
  if (typeof r.deviceId !== 'string' || normaliseMac(r.deviceId) !== r.deviceId) return 'has an invalid deviceId';
  if (!isName(r.product) || !isName(r.channel)) return 'has an invalid product or channel';
  // `delta-failed` and the progress events are sent once, best effort, and never kept pending.
  if (!isReportEvent(r.event) || r.event === 'delta-failed' || r.event === 'downloading' || r.event === 'installing') return 'has an unknown event';
  if (r.version !== null && !isVersion(r.version)) return 'has an invalid version';
  if (r.previousVersion !== null && !isVersion(r.previousVersion)) return 'has an invalid previousVersion';
  if (r.detail !== undefined && (typeof r.detail !== 'string' || r.detail.length > 1000)) return 'has an invalid detail';
  if (r.toVersion !== undefined && r.toVersion !== null && !isVersion(r.toVersion)) return 'has an invalid toVersion';
  if (r.state !== undefined && !isName(r.state)) return 'has an invalid state';
  return undefined;
}
