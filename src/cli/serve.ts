import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { formatDuration, parseDuration } from '../protocol/duration.js';
import { parseHttpUrl } from '../protocol/http-url.js';
import { testClock } from './test-clock.js';
import { addLimitOptions, parseLimitOptions, parsePushOptions, type LimitOpts } from './serve-limits.js';
import { deviceFlagOptions, parseDeviceFlags, type DeviceFlags } from './serve-device-flags.js';

interface Opts extends LimitOpts, DeviceFlags {
  data: string; port: string; host: string; db?: string; store?: string; storeRedirect?: boolean; publicUrl?: string;
  upstream?: string; upstreamToken?: string; timestampExpiry: string; maxUpload: string; logLevel: string;
  mirrorToken?: string; metricsToken?: string; mirrorAllow: string[]; alarmWebhook?: string; reconcileInterval: string; syncInterval: string;
  deltaFrom: string; deltaMargin: string; deltaMaxBytes: string; deltaLowCostAbove: string; deltaTimeout: string;
  deltaFailThreshold: string; sightingFlush: string; cacheReload: string;
  hawkbitInterval: string;
}

function bytes(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new CliError(`${flag} '${text}' is not a byte count (a whole number, e.g. 67108864)`);
  return n;
}

/** TEST HOOK: with PATCHWIRE_ENABLE_FAULTS=1, PATCHWIRE_DELTA_DELAY_MS holds every delta worker that long first. */
function deltaTestDelay(env: NodeJS.ProcessEnv): number | undefined {
  if (env.PATCHWIRE_ENABLE_FAULTS !== '1' || !env.PATCHWIRE_DELTA_DELAY_MS) return undefined;
  return bytes('PATCHWIRE_DELTA_DELAY_MS', env.PATCHWIRE_DELTA_DELAY_MS);
}

/** TEST HOOK: with PATCHWIRE_ENABLE_FAULTS=1, PATCHWIRE_MIRROR_PAGE_RECORDS is the records per page a primary asks its mirrors for. */
function mirrorPageTestRecords(env: NodeJS.ProcessEnv): number | undefined {
  if (env.PATCHWIRE_ENABLE_FAULTS !== '1' || !env.PATCHWIRE_MIRROR_PAGE_RECORDS) return undefined;
  return bytes('PATCHWIRE_MIRROR_PAGE_RECORDS', env.PATCHWIRE_MIRROR_PAGE_RECORDS) || undefined;
}

/** `--mirror-allow`, repeatable and comma-separated: mirror URLs as they announce themselves. */
function mirrorAllowList(texts: string[]): string[] {
  return texts.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean)
    .map((t) => httpUrl('--mirror-allow', t));
}

/** A server's own address: host and port, no path (devices and mirrors append `/v1/...`). */
function httpUrl(flag: string, text: string): string {
  const url = parseHttpUrl(text, { path: false });
  if (!url.ok) throw new CliError(`${flag} '${text}' must be http(s)://host[:port]`);
  return url.base;
}

/** A webhook may carry a path and a query (a token, say); it is posted to as given. */
function webhookUrl(flag: string, text: string): string {
  const url = parseHttpUrl(text, { query: true });
  if (!url.ok) throw new CliError(`${flag} '${text}' is not an http(s) URL`);
  return url.url.href;
}

function seconds(flag: string, text: string, max?: number): number {
  const n = parseDuration(text);
  if (!n) throw new CliError(`${flag} '${text}' is not a duration such as 30s, 1m or 1h`);
  if (max !== undefined && n > max) throw new CliError(`${flag} '${text}' is longer than the most it allows, ${formatDuration(max)}`);
  return n;
}

function port(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new CliError(`--port '${text}' is not a port number (0-65535)`);
  return n;
}

export function register(program: Command): void {
  addLimitOptions(deviceFlagOptions(program
    .command('serve'))
    .description('run the patchwire server (embedded default: SQLite and artifacts under --data)')
    .option('--data <dir>', 'data folder (database, artifacts, online keys)', './data')
    .option('--port <port>', 'TCP port', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--db <url>', 'database: sqlite:PATH (default: <data>/patchwire.db) or postgres://USER@HOST:PORT/DB')
    .option('--store <url>', 'artifact store: file:PATH (default: <data>/artifacts), or s3://BUCKET[/PREFIX]?endpoint=URL&region=R with credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN; AWS_REGION when region= is absent); endpoint= (path-style) for S3-compatible servers')
    .option('--store-redirect', 'with --store s3://: answer downloads with a 302 to a presigned S3 URL (valid 300 s) instead of streaming them through the server')
    .option('--public-url <url>', 'the URL devices reach this server at (default: http://host:port)')
    .option('--upstream <url>', 'run as a mirror of this primary: replicate from it, serve devices, hand records back')
    .option('--upstream-token <token>', 'mirror mode: the mirror token (default: $PATCHWIRE_UPSTREAM_TOKEN)')
    .option('--mirror-token <token>', 'primary: the token mirrors present; enables consolidation (default: $PATCHWIRE_MIRROR_TOKEN)')
    .option('--mirror-allow <urls>', 'primary: mirror URLs (their --public-url) approved when they announce; repeatable or comma-separated; others wait as pending for `patchwire mirrors approve`', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--metrics-token <token>', 'require `Authorization: Bearer <token>` on GET /metrics (default: $PATCHWIRE_METRICS_TOKEN; without either, /metrics is open to anyone who reaches the port)')
    .option('--reconcile-interval <duration>', 'primary: how often to consolidate the mirrors', '1m')
    .option('--sync-interval <duration>', 'mirror: how often to replicate from the primary', '30s')
    .option('--alarm-webhook <url>', 'POST raised alarms (e.g. schedule-overdue) as JSON to this URL')
    .option('--delta-from <n>', 'compute deltas to each new release from the N most common applied versions (plus the previous release); 0 turns deltas off (a mirror then copies and offers none of its primary\'s)', '5')
    .option('--delta-margin <fraction>', 'offer a delta only when it saves at least this fraction of the full archive', '0.2')
    .option('--delta-max-bytes <bytes>', 'no delta from or to a release whose tree stream (uncompressed tar) is larger; memory is ~10x it', String(64 * 1024 ** 2))
    .option('--delta-low-cost-above <bytes>', 'above this tree stream size, compute deltas in the lower-cost mode (one engine, Brotli q9)', String(16 * 1024 ** 2))
    .option('--delta-timeout <duration>', 'stop a delta computation that takes longer (devices get the full archive)', '10m')
    .option('--delta-fail-threshold <n>', 'withdraw a delta once this many distinct devices reported that it failed to apply', '3')
    .option('--sighting-flush <duration>', 'how often checks\' last-seen times are written (a killed process loses at most this much of them)', '1s')
    .option('--cache-reload <duration>', 'several processes on one PostgreSQL: reload the cached catalog this often, in case a change notification was missed', '30s')
    .option('--timestamp-expiry <duration>', 'lifetime of signed timestamp metadata; re-signed at half', '1d')
    .option('--max-upload <bytes>', 'largest release archive accepted', String(1024 ** 3))
    .option('--hawkbit-interval <duration>', 'hawkBit DDI devices (SWUpdate): the poll interval the server tells them, pulled in to a published schedule (at most 23h59m59s)', '1h')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info'))
    .action(async (o: Opts) => {
      const upstreamToken = o.upstreamToken ?? process.env.PATCHWIRE_UPSTREAM_TOKEN;
      const mirrorToken = o.mirrorToken ?? (process.env.PATCHWIRE_MIRROR_TOKEN || undefined);
      if (o.upstream && !upstreamToken) throw new CliError('--upstream needs --upstream-token (or PATCHWIRE_UPSTREAM_TOKEN): the mirror token the primary was started with');
      if (!o.upstream && o.upstreamToken) throw new CliError('--upstream-token goes with --upstream URL (mirror mode)');
      if (o.upstream && mirrorToken) throw new CliError('--mirror-token is for a primary; a mirror uses --upstream-token');
      if (o.upstream && o.mirrorAllow.length) throw new CliError('--mirror-allow is for a primary: it approves the mirrors that announce themselves to it');
      if (o.storeRedirect && !o.store?.startsWith('s3://')) throw new CliError('--store-redirect needs --store s3://...: only an object store can presign downloads; artifacts on disk are streamed by the server (leave --store-redirect out)');
      const metricsToken = o.metricsToken ?? (process.env.PATCHWIRE_METRICS_TOKEN || undefined);
      if (metricsToken !== undefined && metricsToken.trim() === '') throw new CliError('--metrics-token is empty: give the token scrapers send, or leave the flag out to keep /metrics open');
      const mirrorAllow = mirrorAllowList(o.mirrorAllow);
      const upstream = o.upstream ? { url: httpUrl('--upstream', o.upstream), token: upstreamToken! } : undefined;
      const alarmWebhook = o.alarmWebhook ? webhookUrl('--alarm-webhook', o.alarmWebhook) : undefined;
      const reconcileIntervalMs = seconds('--reconcile-interval', o.reconcileInterval) * 1000;
      const syncIntervalMs = seconds('--sync-interval', o.syncInterval) * 1000;
      const timestampExpirySeconds = parseDuration(o.timestampExpiry);
      if (!timestampExpirySeconds) throw new CliError(`--timestamp-expiry '${o.timestampExpiry}' is not a duration such as 1d or 12h`);
      const maxUploadBytes = Number(o.maxUpload);
      if (!Number.isSafeInteger(maxUploadBytes) || maxUploadBytes <= 0) throw new CliError(`--max-upload '${o.maxUpload}' is not a byte count`);
      // One S3 CopyObject commits an artifact, and it copies at most 5 GiB.
      if (o.store?.startsWith('s3://') && maxUploadBytes > 5 * 1024 ** 3) throw new CliError(`--max-upload ${maxUploadBytes} is over the 5 GiB (5368709120 bytes) an S3 store commits in one copy; lower it`);
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(o.logLevel)) throw new CliError(`--log-level '${o.logLevel}' is not one of fatal, error, warn, info, debug`);
      const publicUrl = o.publicUrl ? httpUrl('--public-url', o.publicUrl) : undefined;
      const deltaFromMostCommon = Number(o.deltaFrom);
      if (!/^\d+$/.test(o.deltaFrom) || deltaFromMostCommon > 100) throw new CliError(`--delta-from '${o.deltaFrom}' must be a whole number 0-100`);
      const deltaMargin = Number(o.deltaMargin);
      if (!/^\d*\.?\d+$/.test(o.deltaMargin) || deltaMargin >= 1) throw new CliError(`--delta-margin '${o.deltaMargin}' must be a fraction from 0 to below 1, e.g. 0.2`);
      const deltaMaxBytes = bytes('--delta-max-bytes', o.deltaMaxBytes);
      const deltaLowCostAbove = bytes('--delta-low-cost-above', o.deltaLowCostAbove);
      const deltaTimeoutMs = seconds('--delta-timeout', o.deltaTimeout) * 1000;
      const deltaFailThreshold = Number(o.deltaFailThreshold);
      if (!/^\d+$/.test(o.deltaFailThreshold) || deltaFailThreshold < 1 || deltaFailThreshold > 1_000_000) {
        throw new CliError(`--delta-fail-threshold '${o.deltaFailThreshold}' must be a whole number from 1 to 1000000`);
      }
      const sightingFlushMs = seconds('--sighting-flush', o.sightingFlush, 3600) * 1000;
      const cacheReloadMs = seconds('--cache-reload', o.cacheReload, 86400) * 1000;
      const hawkbitIntervalSeconds = seconds('--hawkbit-interval', o.hawkbitInterval, 86399);
      const slowClients = parseLimitOptions(o);
      const push = parsePushOptions(o, slowClients);
      const deviceAuth = parseDeviceFlags(o);
      const { startServer, ServerConfigError, StorageUnavailableError, DataFolderInUseError, PortInUseError } = await import('../server/start.js');
      let server;
      try {
        server = await startServer({
          dataDir: o.data, host: o.host, port: port(o.port), db: o.db, artifactStore: o.store, storeRedirect: o.storeRedirect,
          publicUrl, token: process.env.PATCHWIRE_TOKEN || undefined,
          timestampExpirySeconds, maxUploadBytes, logLevel: o.logLevel,
          upstream, mirrorToken, metricsToken, mirrorAllow, mirrorPageRecords: mirrorPageTestRecords(process.env), alarmWebhook, reconcileIntervalMs, syncIntervalMs, deltaFromMostCommon, deltaMargin,
          deltaMaxBytes, deltaLowCostAbove, deltaTimeoutMs, deltaFailThreshold, slowClients, deltaTestDelayMs: deltaTestDelay(process.env),
          clock: testClock(process.env), deviceAuth, sightingFlushMs, cacheReloadMs, push,
          hawkbitIntervalSeconds,
        });
      } catch (err) {
        if (err instanceof ServerConfigError) throw new CliError(err.message, 2, { cause: err });
        // Both are failures of the environment, not of the command line: exit 1.
        if (err instanceof DataFolderInUseError || err instanceof PortInUseError || err instanceof StorageUnavailableError) throw new CliError(err.message, 1, { cause: err });
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(new PortInUseError(o.host, port(o.port)).message, 1, { cause: err });
        throw err;
      }
      process.stdout.write(`patchwire: listening on ${server.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => { void server.close().then(resolve); };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
