import type { FastifyInstance } from 'fastify';
import { loadOnlineKeys } from './online-keys-setting.js';
import type { Store } from '../store/store.js';
import { buildApp } from './app.js';
import { createServices, type DeviceAuthOptions, type Log, type Services } from './services/index.js';
import { hashToken, newToken } from './admin-auth.js';
import { settingOnce } from './setting-once.js';
import { systemClock, type Clock } from './clock.js';
import { deltaInWorker } from './services/delta-in-worker.js';
import { DELTA_DEFAULTS } from './services/deltas.js';
import { openStorage, type Storage } from './open-storage.js';
import { targetRedirect } from './routes/target-redirect.js';
import { lockDataFolder, type DataLock } from './data-lock.js';
import { checkPortFree } from './port-probe.js';
import { startBackgroundJobs } from './background-jobs.js';
import type { SlowClientLimits } from './slow-clients.js';
import type { PushOptions } from './services/push-hub.js';
import { DashboardSessions } from './dashboard/dashboard-sessions.js';
import type { FleetHistoryOptions } from './services/fleet-history.js';

// Thrown by startServer; importable from here, where the CLI takes both.
export { ServerConfigError, StorageUnavailableError } from './config-error.js';
export { DataFolderInUseError } from './data-lock.js';
export { PortInUseError } from './port-probe.js';

export interface StartOptions {
  dataDir: string;
  host: string;
  port: number;
  /** `sqlite:` or a path (default `<data>/patchwire.db`). */
  db?: string;
  /** `file:` or a path (default `<data>/artifacts`), or `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`. */
  artifactStore?: string;
  /** `--store-redirect`: downloads answer 302 to a presigned URL of the store (S3 only). */
  storeRedirect?: boolean;
  publicUrl?: string;
  /** The admin token from PATCHWIRE_TOKEN; when absent the server keeps (or makes) its own. */
  token?: string;
  timestampExpirySeconds?: number;
  snapshotExpirySeconds?: number;
  sightingFlushMs?: number;
  /** Several processes on one database: the periodic full reload of the cached catalog (default 30 s). */
  cacheReloadMs?: number;
  maxUploadBytes?: number;
  logLevel?: string;
  /** `--metrics-token`: GET /metrics needs `Authorization: Bearer <it>`; absent: /metrics is open. */
  metricsToken?: string;
  /** Primary: the token mirrors use (and this server sends to them); enables consolidation. */
  mirrorToken?: string;
  /** Primary: mirror URLs (normalised, as announced) approved when they announce (`--mirror-allow`). */
  mirrorAllow?: string[];
  /** TEST HOOK: records per page the primary asks its mirrors for (default PULL_LIMITS). */
  mirrorPageRecords?: number;
  /** Mirror mode: the primary's URL and the mirror token. */
  upstream?: { url: string; token: string };
  /** How often a primary consolidates its mirrors (default 60 s). */
  reconcileIntervalMs?: number;
  /** How often a mirror replicates from its primary (default 30 s). */
  syncIntervalMs?: number;
  alarmWebhook?: string;
  /** Issue 12: `serve --hawkbit-interval`, the hawkBit DDI devices' poll interval in seconds. */
  hawkbitIntervalSeconds?: number;
  /** Deltas from this many of the most common applied versions (plus the previous release); 0 turns deltas off. Default 5. */
  deltaFromMostCommon?: number;
  /** Offer a delta only when it is at most (1 - margin) of the full archive. Default 0.2. */
  deltaMargin?: number;
  /** No delta from or to a tree stream larger than this many bytes (default 64 MiB). */
  deltaMaxBytes?: number;
  /** Above this tree stream size, the lower-cost delta mode (default 16 MiB). */
  deltaLowCostAbove?: number;
  /** One delta computation is stopped past this (default 10 minutes). */
  deltaTimeoutMs?: number;
  /** Distinct devices whose `delta-failed` reports withdraw a delta (default 3). */
  deltaFailThreshold?: number;
  /** TEST HOOK (PATCHWIRE_ENABLE_FAULTS=1): every delta worker waits this long before computing. */
  deltaTestDelayMs?: number;
  /** Timeouts and the connection limit (default: SLOW_CLIENT_DEFAULTS). */
  slowClients?: SlowClientLimits;
  /** Where the one-time admin token is printed. */
  print?: (line: string) => void;
  /** Device tokens and enrolment limits (DEVICE_AUTH_DEFAULTS when absent). */
  deviceAuth?: Partial<DeviceAuthOptions>;
  /** Event stream limits (push; PUSH_DEFAULTS when absent). */
  push?: Partial<PushOptions>;
  /** The dashboard's fleet snapshots: how often, kept how long (FLEET_HISTORY_DEFAULTS when absent). */
  fleetHistory?: Partial<FleetHistoryOptions>;
  /** The time every service and the store read (default: the system clock), so tests can drive it. */
  clock?: Clock;
  /** TEST HOOK: storage opened by the caller (several in-process servers on one database); closed with the server. */
  storage?: Storage;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  services: Services;
  close(): Promise<void>;
}

const TOKEN_SETTING = 'admin_token_sha256';

/**
 * The admin token's hash: PATCHWIRE_TOKEN's when set (stored, so it replaces the stored one: the
 * way to rotate a lost token; `replaced` says it did), else the stored one, else a new token
 * printed once.
 */
async function adminTokenHash(store: Store, opts: StartOptions): Promise<{ hash: Buffer; replaced: boolean }> {
  if (opts.token) {
    const hash = hashToken(opts.token);
    const hex = hash.toString('hex');
    const stored = await store.getSetting(TOKEN_SETTING);
    if (stored === hex) return { hash, replaced: false };
    await store.setSetting(TOKEN_SETTING, hex);
    return { hash, replaced: Boolean(stored) };
  }
  // Made once for the database (several processes may start together on an empty one): only the
  // process that stored it prints it.
  let token = '';
  const { value, created } = await settingOnce(store, TOKEN_SETTING, () => hashToken((token = newToken())).toString('hex'));
  // Printed once: only the hash is kept, so this is the operator's one chance to copy it.
  if (created) (opts.print ?? console.log)(`patchwire: admin token (shown once, store it safely): ${token}`);
  return { hash: Buffer.from(value, 'hex'), replaced: false };
}

/** Opens the data folder (SQLite + artifacts on disk by default), then listens. */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const clock = opts.clock ?? systemClock;
  // Nothing is created before these two: a start that cannot listen, or finds another server
  // writing the data folder, leaves no trace.
  await checkPortFree(opts.host, opts.port);
  const lock = await lockDataFolder(opts.dataDir);
  try {
    return await startLocked(opts, clock, lock);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function startLocked(opts: StartOptions, clock: Clock, lock: DataLock): Promise<RunningServer> {
  const { store, artifacts } = opts.storage ?? await openStorage({ dataDir: opts.dataDir, db: opts.db, artifactStore: opts.artifactStore, clock });
  let redirect;
  try {
    redirect = opts.storeRedirect ? targetRedirect(artifacts) : undefined;
  } catch (err) {
    await store.close();
    throw err;
  }
  // A mirror never signs, so it holds no online keys at all.
  const keys = opts.upstream ? null : await loadOnlineKeys(store, opts.dataDir);
  const { hash: tokenHash, replaced: tokenReplaced } = await adminTokenHash(store, opts);
  let url = opts.publicUrl ?? '';
  let app: FastifyInstance | undefined;
  const log: Log = { info: (o, m) => app?.log.info(o, m), warn: (o, m) => app?.log.warn(o, m), error: (o, m) => app?.log.error(o, m) };
  const services = createServices({
    store,
    artifacts,
    keys,
    clock,
    publicUrl: () => url,
    expiry: { snapshotSeconds: opts.snapshotExpirySeconds ?? 7 * 86400, timestampSeconds: opts.timestampExpirySeconds ?? 86400 },
    sightingFlushMs: opts.sightingFlushMs ?? 1000,
    cacheReloadMs: opts.cacheReloadMs,
    log,
    mirrorToken: opts.mirrorToken,
    mirrorAllow: opts.mirrorAllow,
    mirrorPageRecords: opts.mirrorPageRecords,
    upstream: opts.upstream,
    alarmWebhook: opts.alarmWebhook,
    deltaFailThreshold: opts.deltaFailThreshold,
    deviceAuth: opts.deviceAuth,
    push: opts.push,
    fleetHistory: opts.fleetHistory,
    hawkbitIntervalSeconds: opts.hawkbitIntervalSeconds,
    deltas: opts.deltaFromMostCommon === 0 ? undefined : {
      fromMostCommon: opts.deltaFromMostCommon ?? 5,
      margin: opts.deltaMargin ?? 0.2,
      maxBytes: opts.deltaMaxBytes ?? DELTA_DEFAULTS.maxBytes,
      lowCostAbove: opts.deltaLowCostAbove ?? DELTA_DEFAULTS.lowCostAbove,
      timeoutMs: opts.deltaTimeoutMs ?? DELTA_DEFAULTS.timeoutMs,
      queueLength: DELTA_DEFAULTS.queueLength,
      computeDelta: deltaInWorker(opts.deltaTestDelayMs),
    },
  });
  await services.load();
  const mirrorToken = opts.upstream?.token ?? opts.mirrorToken;
  const sessions = await DashboardSessions.open(store, tokenHash, clock);
  app = await buildApp({
    dashboard: { sessions, https: (opts.publicUrl ?? '').startsWith('https:') },
    services,
    targetRedirect: redirect,
    adminTokenHash: tokenHash,
    mirrorTokenHash: mirrorToken ? hashToken(mirrorToken) : null,
    role: opts.upstream ? 'mirror' : 'primary',
    maxUploadBytes: opts.maxUploadBytes,
    slowClients: opts.slowClients,
    logger: { level: opts.logLevel ?? 'info' },
    metrics: { tokenHash: opts.metricsToken ? hashToken(opts.metricsToken) : null, processMetrics: true },
  });
  if (tokenReplaced) app.log.warn('the admin token was replaced by PATCHWIRE_TOKEN (the token stored before no longer works)');
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const listenUrl = `http://${host}:${port}`;
  if (!url) url = listenUrl;
  const jobs = startBackgroundJobs(services, { syncIntervalMs: opts.syncIntervalMs, reconcileIntervalMs: opts.reconcileIntervalMs, log });
  let closing: Promise<void> | undefined;
  return {
    app,
    url: listenUrl,
    services,
    close() {
      closing ??= (async () => {
        jobs.stop();
        await app!.close();
        await services.close();
        await store.close();
        await lock.release();
      })();
      return closing;
    },
  };
}
