import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { parseDuration } from '../protocol/duration.js';
import { SLOW_CLIENT_DEFAULTS, type SlowClientLimits } from '../server/slow-clients.js';

/** `serve`'s flags for slow clients and the connection limit (src/server/slow-clients.ts). */
export interface LimitOpts {
  headersTimeout: string; bodyTimeout: string; minBodyRate: string; idleTimeout: string; maxConnections: string;
}

const d = SLOW_CLIENT_DEFAULTS;

export function addLimitOptions(cmd: Command): Command {
  return cmd
    .option('--headers-timeout <duration>', 'a request\'s headers must all arrive within this', `${d.headersTimeoutMs / 1000}s`)
    .option('--body-timeout <duration>', 'a request body must bring --min-body-rate in each such window, or its connection is closed', `${d.bodyWindowMs / 1000}s`)
    .option('--min-body-rate <bytes-per-second>', 'slowest request body accepted (an upload may take as long as it needs above it)', String(d.minBodyRate))
    .option('--idle-timeout <duration>', 'close a keep-alive connection with no request for this long', `${d.idleTimeoutMs / 1000}s`)
    .option('--max-connections <n>', 'open connections at most; further ones are closed at once (keep ulimit -n above it)', String(d.maxConnections));
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
