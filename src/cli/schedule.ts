import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, printJson, withAdminOptions } from './admin-client.js';
import { DEFAULT_CHANNEL, isName } from '../protocol/names.js';
import { parseDuration } from '../protocol/duration.js';
import { parseIsoDateTime } from '../protocol/time.js';

interface Opts { server?: string; token?: string; product: string; channel: string; at: string; spread?: string; json?: boolean }

export function register(program: Command): void {
  withAdminOptions(program
    .command('schedule')
    .description('publish the time of the next planned release; agents align their next check to it'))
    .requiredOption('--product <name>', 'product name')
    .option('--channel <name>', 'release channel', DEFAULT_CHANNEL)
    .requiredOption('--at <iso-8601>', 'date-time of the next release, e.g. 2026-12-01T09:00:00Z (must be in the future)')
    .option('--spread <duration>', 'spread devices over this window after --at (e.g. 30m, 2h)', '0s')
    .option('--json', 'print the schedule as JSON')
    .action(async (o: Opts) => {
      const target = adminTarget(o);
      if (!isName(o.product) || !isName(o.channel)) throw new CliError('--product and --channel must be names of a-z 0-9 . _ -');
      const at = parseIsoDateTime(o.at);
      if (!at) throw new CliError(`--at '${o.at}' is not an ISO-8601 date-time such as 2026-12-01T09:00:00Z`);
      const spreadSeconds = parseDuration(o.spread ?? '0s');
      if (spreadSeconds === undefined) throw new CliError(`--spread '${o.spread}' is not a duration such as 30m or 2h`);
      const s = await adminRequest<Record<string, unknown>>(target, 'PUT', `/products/${encodeURIComponent(o.product)}/schedule`, {
        channel: o.channel, at: at.toISOString(), spreadSeconds,
      });
      if (o.json) printJson(s);
      else process.stdout.write(`next release of ${o.product}/${o.channel} scheduled for ${String(s.at)}${spreadSeconds ? ` (spread ${o.spread})` : ''}\n`);
    });
}
