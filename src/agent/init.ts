import { mkdir, readFile, stat } from 'node:fs/promises';
import { DEFAULT_CHANNEL, isName, normaliseMac, normaliseServerUrl } from '../protocol/index.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { detectDeviceId } from './device-id.js';
import { AlreadyInitialisedError, InvalidInputError } from './errors.js';
import { agentPaths } from './paths.js';
import { withFolderLock } from './folder-lock.js';
import { ensureInstallId } from './install-id.js';
import { ensureDeviceKey } from './device-key.js';
import { MAX_HEALTH_CMD, MAX_HEALTH_TIMEOUT_SECONDS, MAX_KEEP, saveState, STATE_FORMAT, type AgentState } from './state.js';

export interface InitOptions {
  /** The install folder; created when missing. */
  dir: string;
  server: string;
  product: string;
  channel?: string;
  /** The product's signed TUF root metadata (`patchwire product create --root-out`). */
  rootFile: string;
  intervalSeconds?: number;
  /** A MAC address; detected from the network interfaces when omitted. */
  deviceId?: string;
  /**
   * A shell command run after each switch (cwd `INSTALL_DIR/current`, env PATCHWIRE_VERSION);
   * a non-zero exit or a timeout switches back and reports `rolled-back`.
   */
  healthCmd?: string;
  /** Seconds the health command may take (default 30). */
  healthTimeoutSeconds?: number;
  /** How many previous versions stay in `versions/` after an update (default 2). */
  keep?: number;
  /** How long to wait for another command working on the folder (default 10 s). */
  lockWaitMs?: number;
}

/** Longest check interval accepted: one year. */
const MAX_INTERVAL_SECONDS = 366 * 86400;

/**
 * Prepares an install folder for the agent: `.patchwire/tuf/root.json` (the exact bytes of the
 * root file), `versions/`, and a state with no version that is due at once. Every input is
 * validated before anything is written, so bad input changes nothing. Throws InvalidInputError,
 * DeviceIdError, or AlreadyInitialisedError when the folder holds a state already.
 */
export async function initAgent(opts: InitOptions): Promise<AgentState> {
  const paths = agentPaths(opts.dir);
  const server = normaliseServerUrl(opts.server);
  if (!server) {
    throw new InvalidInputError(`server URL ${JSON.stringify(opts.server)} is invalid: give an http:// or https:// URL without query or fragment, e.g. http://updates.example.com:8080`, 'server');
  }
  if (!isName(opts.product)) {
    throw new InvalidInputError(`product ${JSON.stringify(opts.product)} is invalid: use 1-64 lower-case letters, digits, '.', '_' or '-'`, 'product');
  }
  const channel = opts.channel ?? DEFAULT_CHANNEL;
  if (!isName(channel)) {
    throw new InvalidInputError(`channel ${JSON.stringify(channel)} is invalid: use 1-64 lower-case letters, digits, '.', '_' or '-'`, 'channel');
  }
  const intervalSeconds = opts.intervalSeconds ?? 3600;
  if (!Number.isSafeInteger(intervalSeconds) || intervalSeconds < 1 || intervalSeconds > MAX_INTERVAL_SECONDS) {
    throw new InvalidInputError(`check interval ${intervalSeconds} is invalid: give a whole number of seconds from 1 to ${MAX_INTERVAL_SECONDS} (e.g. 1h)`, 'interval');
  }
  let deviceId: string;
  if (opts.deviceId !== undefined) {
    const mac = normaliseMac(opts.deviceId);
    if (!mac) {
      throw new InvalidInputError(`device id ${JSON.stringify(opts.deviceId)} is not a MAC address: give one like aa:bb:cc:dd:ee:ff (not all zeros)`, 'deviceId');
    }
    deviceId = mac;
  } else {
    deviceId = detectDeviceId();
  }
  if (opts.healthCmd !== undefined && (typeof opts.healthCmd !== 'string' || opts.healthCmd.trim() === '' || opts.healthCmd.length > MAX_HEALTH_CMD)) {
    throw new InvalidInputError(`health command ${JSON.stringify(opts.healthCmd)} is invalid: give a non-empty shell command of at most ${MAX_HEALTH_CMD} characters`, 'healthCmd');
  }
  const t = opts.healthTimeoutSeconds;
  if (t !== undefined && (!Number.isSafeInteger(t) || t < 1 || t > MAX_HEALTH_TIMEOUT_SECONDS)) {
    throw new InvalidInputError(`health timeout ${t} is invalid: give a whole number of seconds from 1 to ${MAX_HEALTH_TIMEOUT_SECONDS} (e.g. 30s)`, 'healthTimeout');
  }
  if (opts.keep !== undefined && (!Number.isSafeInteger(opts.keep) || opts.keep < 0 || opts.keep > MAX_KEEP)) {
    throw new InvalidInputError(`keep ${opts.keep} is invalid: give how many previous versions to keep, a whole number from 0 to ${MAX_KEEP}`, 'keep');
  }
  const root = await readRootFile(opts.rootFile);

  const dirStat = await stat(paths.dir).catch(() => undefined);
  if (dirStat && !dirStat.isDirectory()) {
    throw new InvalidInputError(`${paths.dir} exists and is not a folder: choose another --dir`, 'dir');
  }
  const initialised = () => new AlreadyInitialisedError(
    `${paths.dir} is already initialised (${paths.state} exists): use \`patchwire check\`, or delete the folder .patchwire to start over`,
    paths.state,
  );
  if (await exists(paths.state)) throw initialised();

  // The state is written last: a folder without state.json is not initialised and may be redone.
  await mkdir(paths.tuf, { recursive: true, mode: 0o700 });
  // Two inits at once (or an init beside a check) must not interleave: the same lock as check.
  return withFolderLock(paths.meta, { command: 'init', waitMs: opts.lockWaitMs }, async () => {
    if (await exists(paths.state)) throw initialised();
    await mkdir(paths.downloads, { recursive: true });
    await mkdir(paths.versions, { recursive: true });
    await writeFileAtomic(paths.root, root);
    await ensureInstallId(paths.meta);
    await ensureDeviceKey(paths.meta);
    const state: AgentState = {
      format: STATE_FORMAT,
      server,
      product: opts.product,
      channel,
      deviceId,
      intervalSeconds,
      version: null,
      previousVersion: null,
      nextCheckAt: null,
      lastCheckAt: null,
      rolledBack: null,
      pendingReport: null,
      // Written only when given, so a state without them reads as the defaults.
      ...(opts.healthCmd !== undefined ? { healthCmd: opts.healthCmd } : {}),
      ...(t !== undefined ? { healthTimeoutSeconds: t } : {}),
      ...(opts.keep !== undefined ? { keep: opts.keep } : {}),
    };
    await saveState(paths.state, state);
    return state;
  });
}

/** Reads the root file and checks it looks like signed TUF root metadata; returns its exact bytes. */
async function readRootFile(file: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new InvalidInputError(`cannot read the root file ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the product's root.json written by \`patchwire product create --root-out\``, 'root', { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`the root file ${file} is not JSON: give the product's root.json written by \`patchwire product create --root-out\``, 'root', { cause: err });
  }
  const d = doc as { signed?: { _type?: unknown; version?: unknown }; signatures?: unknown };
  if (typeof d !== 'object' || d === null || typeof d.signed !== 'object' || d.signed === null || d.signed._type !== 'root' || !Array.isArray(d.signatures)) {
    throw new InvalidInputError(`the root file ${file} is not signed TUF root metadata (signed._type must be "root"): give the product's root.json written by \`patchwire product create --root-out\``, 'root');
  }
  return bytes;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
