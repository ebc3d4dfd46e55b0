import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { parseDuration } from '../protocol/duration.js';
import { SLOW_CLIENT_DEFAULTS, type SlowClientLimits } from '../server/slow-clients.js';
import { PUSH_DEFAULTS, type PushOptions } from '../server/services/push-hub.js';

/** `serve`'s flags for slow clients and the connection limit (src/server/slow-clients.ts). */
export interface LimitOpts {
  headersTimeout: string; bodyTimeout: string; minBodyRate: string; idleTimeout: string; maxConnections: string;
  maxStreams?: string; pushHeartbeat: string;
}

const d = SLOW_CLIENT_DEFAULTS;

export function addLimitOptions(cmd: Command): Command {
  return cmd
    .option('--headers-timeout <duration>', 'a request\'s headers must all arrive within this', `${d.headersTimeoutMs / 1000}s`)
    .option('--body-timeout <duration>', 'a request body must bring --min-body-rate in each such window, or its connection is closed', `${d.bodyWindowMs / 1000}s`)
    .option('--min-body-rate <bytes-per-second>', 'slowest request body accepted (an upload may take as long as it needs above it)', String(d.minBodyRate))
    .option('--idle-timeout <duration>', 'close a keep-alive connection with no request for this long', `${d.idleTimeoutMs / 1000}s`)
    .option('--max-connections <n>', 'open connections at most; further ones are closed at once (keep ulimit -n above it)', String(d.maxConnections))
    .option('--max-streams <n>', `open device event streams (push) at most, below --max-connections; further devices get 503 and keep their schedule (default ${PUSH_DEFAULTS.maxStreams}, at most 3/4 of --max-connections)`)
    .option('--push-heartbeat <duration>', 'send a comment on each event stream this often, so proxies keep it open', `${PUSH_DEFAULTS.heartbeatMs / 1000}s`);
}

function ms(flag: string, text: string): number {
  const s = parseDuration(text);
  if (!s) throw new CliError(`${flag} '${text}' is not a duration such as 30s, 1m or 1h`);
  return s * 1000;
}

function count(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new CliError(`${flag} '${text}' is not a whole number of at least 1`);
  return n;
}

export function parseLimitOptions(o: LimitOpts): SlowClientLimits {
  return {
    headersTimeoutMs: ms('--headers-timeout', o.headersTimeout),
    bodyWindowMs: ms('--body-timeout', o.bodyTimeout),
    minBodyRate: count('--min-body-rate', o.minBodyRate),
    idleTimeoutMs: ms('--idle-timeout', o.idleTimeout),
    socketTimeoutMs: d.socketTimeoutMs,
    maxConnections: count('--max-connections', o.maxConnections),
  };
}

/**
 * `--max-streams` and `--push-heartbeat`; streams must leave connections for checks and
 * downloads: left out, the cap is PUSH_DEFAULTS.maxStreams or 3/4 of --max-connections, whichever
 * is lower (so a low --max-connections alone still starts); given, it must be below it.
 */
export function parsePushOptions(o: LimitOpts, limits: SlowClientLimits): PushOptions {
  const maxStreams = o.maxStreams === undefined
    ? Math.min(PUSH_DEFAULTS.maxStreams, Math.floor((limits.maxConnections * 3) / 4))
    : count('--max-streams', o.maxStreams);
  if (maxStreams >= limits.maxConnections) {
    throw new CliError(`--max-streams ${maxStreams} must be below --max-connections ${limits.maxConnections}: every stream holds a connection, and checks and downloads need some too; lower --max-streams or raise --max-connections`);
  }
  const heartbeatMs = ms('--push-heartbeat', o.pushHeartbeat);
  if (heartbeatMs > 300_000) throw new CliError(`--push-heartbeat '${o.pushHeartbeat}' must be at most 5m: agents take 3 missed heartbeats for a dead stream`);
  return { maxStreams, heartbeatMs };
}
