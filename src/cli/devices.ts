import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, printJson } from './admin-client.js';
import { isName } from '../protocol/names.js';
import type { DeviceView } from '../protocol/wire.js';

export function register(program: Command): void {
  program
    .command('devices')
    .description('list registered devices with their applied version and where they were last seen')
    .option('--server <url>', 'patchwire server URL')
    .option('--token <token>', 'admin token (default: $PATCHWIRE_TOKEN)')
    .option('--product <name>', 'only this product')
    .option('--json', 'print a JSON array')
    .action(async (o: { server?: string; token?: string; product?: string; json?: boolean }) => {
      const target = adminTarget(o);
      if (o.product !== undefined && !isName(o.product)) throw new CliError(`--product '${o.product}' is not a valid name`);
      const q = o.product ? `?product=${encodeURIComponent(o.product)}` : '';
      const devices = await adminRequest<DeviceView[]>(target, 'GET', `/devices${q}`);
      if (o.json) return printJson(devices);
      const rows = [['DEVICE', 'PRODUCT', 'CHANNEL', 'VERSION', 'LAST SEEN', 'SOURCE'],
        ...devices.map((d) => [d.deviceId, d.product, d.channel, d.version ?? '-', d.lastSeenAt, d.source])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
    });
}
