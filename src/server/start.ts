import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { DiskArtifactStore } from '../artifacts/disk/disk-artifact-store.js';
import { loadOrCreateOnlineKeys } from '../tuf/repository.js';
import type { Store } from '../store/store.js';
import { buildApp } from './app.js';
import { createServices, type Services } from './services/index.js';
import { hashToken, newToken } from './admin-auth.js';
import { systemClock, type Clock } from './clock.js';
import { computeDeltaInWorker } from './services/delta-in-worker.js';

export interface StartOptions {
  dataDir: string;
  host: string;
  port: number;
  /** `sqlite:` or a path (default `<data>/patchwire.db`). */
  db?: string;
  /** `file:` or a path (default `<data>/artifacts`). */
  artifactStore?: string;
  publicUrl?: string;
  /** The admin token from PATCHWIRE_TOKEN; when absent the server keeps (or makes) its own. */
  token?: string;
  timestampExpirySeconds?: number;
  snapshotExpirySeconds?: number;
  sightingFlushMs?: number;
  maxUploadBytes?: number;
  logLevel?: string;
  /** Primary: the token mirrors use (and this server sends to them); enables consolidation. */
  mirrorToken?: string;
  /** Mirror mode: the primary's URL and the mirror token. */
  upstream?: { url: string; token: string };
  /** How often a primary consolidates its mirrors (default 60 s). */
  reconcileIntervalMs?: number;
  /** How often a mirror replicates from its primary (default 30 s). */
  syncIntervalMs?: number;
  alarmWebhook?: string;
  /** Deltas from this many of the most common applied versions (plus the previous release); 0 turns deltas off. Default 5. */
  deltaFromMostCommon?: number;
  /** Offer a delta only when it is at most (1 - margin) of the full archive. Default 0.2. */
  deltaMargin?: number;
  /** Where the one-time admin token is printed. */
  print?: (line: string) => void;
  /** The services' time (default: the system clock); tests drive it. */
  clock?: Clock;
}

/** Thrown for a server option that cannot work (the CLI exits 2 with the message). */
export class ServerConfigError extends Error {
  override name = 'ServerConfigError';
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  services: Services;
  close(): Promise<void>;
}

const TOKEN_SETTING = 'admin_token_sha256';

async function openStore(opts: StartOptions): Promise<Store> {
  const db = opts.db ?? 'sqlite:';
  if (db.startsWith('postgres://') || db.startsWith('postgresql://')) {
    throw new ServerConfigError('--db postgres:// is not supported yet (planned); leave --db out to use the embedded SQLite store');
  }
  const file = db === 'sqlite:' ? join(opts.dataDir, 'patchwire.db') : resolve(db.replace(/^sqlite:/, ''));
  return SqliteStore.open(file);
}

async function adminTokenHash(store: Store, opts: StartOptions): Promise<Buffer> {
  if (opts.token) return hashToken(opts.token);
  const stored = await store.getSetting(TOKEN_SETTING);
  if (stored) return Buffer.from(stored, 'hex');
  const token = newToken();
  const hash = hashToken(token);
  await store.setSetting(TOKEN_SETTING, hash.toString('hex'));
  // Printed once: only the hash is kept, so this is the operator's one chance to copy it.
  (opts.print ?? console.log)(`patchwire: admin token (shown once, store it safely): ${token}`);
  return hash;
}

/** Opens the data folder (SQLite + artifacts on disk by default), then listens. */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  if (opts.artifactStore && !/^(file:)?[^:]*$/.test(opts.artifactStore)) {
    throw new ServerConfigError(`--store ${opts.artifactStore} is not supported yet (planned: s3://); leave it out to keep artifacts under --data`);
  }
  await mkdir(opts.dataDir, { recursive: true });
  const store = await openStore(opts);
  await store.migrate();
  const artifacts = await DiskArtifactStore.open(opts.artifactStore ? resolve(opts.artifactStore.replace(/^file:/, '')) : join(opts.dataDir, 'artifacts'));
  // A mirror never signs, so it holds no online keys at all.
  const keys = opts.upstream ? null : await loadOrCreateOnlineKeys(opts.dataDir);
  const tokenHash = await adminTokenHash(store, opts);
  let url = opts.publicUrl ?? '';
  let app: FastifyInstance | undefined;
  const services = createServices({
    store,
    artifacts,
    keys,
    clock: opts.clock ?? systemClock,
    publicUrl: () => url,
    expiry: { snapshotSeconds: opts.snapshotExpirySeconds ?? 7 * 86400, timestampSeconds: opts.timestampExpirySeconds ?? 86400 },
    sightingFlushMs: opts.sightingFlushMs ?? 1000,
    log: { info: (o, m) => app?.log.info(o, m), warn: (o, m) => app?.log.warn(o, m), error: (o, m) => app?.log.error(o, m) },
    mirrorToken: opts.mirrorToken,
    upstream: opts.upstream,
    alarmWebhook: opts.alarmWebhook,
    deltas: opts.deltaFromMostCommon === 0 ? undefined : {
      fromMostCommon: opts.deltaFromMostCommon ?? 5,
      margin: opts.deltaMargin ?? 0.2,
      computeDelta: computeDeltaInWorker,
    },
  });
  await services.load();
  const mirrorToken = opts.upstream?.token ?? opts.mirrorToken;
  app = await buildApp({
    services,
    adminTokenHash: tokenHash,
    mirrorTokenHash: mirrorToken ? hashToken(mirrorToken) : null,
    role: opts.upstream ? 'mirror' : 'primary',
    maxUploadBytes: opts.maxUploadBytes,
    logger: { level: opts.logLevel ?? 'info' },
  });
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const listenUrl = `http://${host}:${port}`;
  if (!url) url = listenUrl;
  // Re-sign timestamps before they expire and log alarms even when nobody is asking.
  const timer = setInterval(() => {
    for (const p of services.products.list()) services.tuf.refresh(p).catch((err) => app?.log.error({ err }, 'timestamp re-signing failed'));
    services.status.alarms();
  }, 60_000);
  timer.unref();
  // Mirror: replicate now (without waiting: a mirror serves what it has while the primary is
  // away) and then periodically. Primary: consolidate the mirrors periodically.
  const { replicator, consolidation } = services;
  const syncTimer = replicator
    ? every(opts.syncIntervalMs ?? 30_000, () => replicator.sync(), (err) => app?.log.warn({ err: (err as Error).message }, 'replication from the primary failed; serving what this mirror has'))
    : consolidation
      ? every(opts.reconcileIntervalMs ?? 60_000, () => consolidation.reconcile(), (err) => app?.log.error({ err }, 'consolidation failed'), false)
      : undefined;
  let closing: Promise<void> | undefined;
  return {
    app,
    url: listenUrl,
    services,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        if (syncTimer) clearInterval(syncTimer);
        await app!.close();
        await services.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/** Runs `job` every `ms` (and once now when `now`), never two at a time; errors go to `onError`. */
function every(ms: number, job: () => Promise<unknown>, onError: (err: unknown) => void, now = true): NodeJS.Timeout {
  let busy = false;
  const run = () => {
    if (busy) return;
    busy = true;
    job().catch(onError).finally(() => { busy = false; });
  };
  if (now) run();
  const t = setInterval(run, ms);
  t.unref();
  return t;
}
