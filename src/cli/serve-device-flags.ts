import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { parseDuration } from '../protocol/duration.js';

/** `serve` flags of device auth (docs/security.md, "Device identity"). */
export interface DeviceFlags { deviceTokenTtl: string; enrolLimit: string; maxDevices: string }

export function deviceFlagOptions(cmd: Command): Command {
  return cmd
    .option('--device-token-ttl <duration>', 'lifetime of the token a device gets from POST /v1/auth', '1h')
    .option('--enrol-limit <n/duration>', 'new devices accepted per source address per window (a fleet behind one NAT shares one)', '600/1m')
    .option('--max-devices <n>', 'devices per product at most; enrolment beyond is refused', '1000000');
}

export function parseDeviceFlags(o: DeviceFlags): { tokenTtlMs: number; enrolLimit: { limit: number; windowMs: number }; maxDevices: number } {
  const ttl = parseDuration(o.deviceTokenTtl);
  if (!ttl || ttl < 60 || ttl > 7 * 86400) throw new CliError(`--device-token-ttl '${o.deviceTokenTtl}' must be a duration from 1m to 7d, e.g. 1h`);
  const m = /^(\d{1,9})\/(.+)$/.exec(o.enrolLimit);
  const windowS = m ? parseDuration(m[2]!) : undefined;
  if (!m || Number(m[1]) < 1 || !windowS) throw new CliError(`--enrol-limit '${o.enrolLimit}' must be COUNT/DURATION, e.g. 600/1m`);
  const max = Number(o.maxDevices);
  if (!/^\d{1,12}$/.test(o.maxDevices) || max < 1) throw new CliError(`--max-devices '${o.maxDevices}' must be a whole number of at least 1`);
  return { tokenTtlMs: ttl * 1000, enrolLimit: { limit: Number(m[1]), windowMs: windowS * 1000 }, maxDevices: max };
}
