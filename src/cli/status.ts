import type { Command } from 'commander';
import { adminRequest, adminTarget, printJson } from './admin-client.js';
import type { StatusView } from '../protocol/wire.js';

export function register(program: Command): void {
  program
    .command('status')
    .description('fleet summary: devices per version, mirrors, alarms')
    .option('--server <url>', 'patchwire server URL')
    .option('--token <token>', 'admin token (default: $PATCHWIRE_TOKEN)')
    .option('--json', 'print one JSON document')
    .action(async (o: { server?: string; token?: string; json?: boolean }) => {
      const s = await adminRequest<StatusView>(adminTarget(o), 'GET', '/status');
      if (o.json) return printJson(s);
      process.stdout.write(`devices: ${s.devices}\n`);
      for (const [v, n] of Object.entries(s.versions)) process.stdout.write(`  ${v}: ${n}\n`);
      process.stdout.write(`mirrors: ${s.mirrors.length === 0 ? 'none' : ''}\n`);
      for (const m of s.mirrors) process.stdout.write(`  ${m.url}: last sync ${m.lastSyncAt ?? 'never'}, pulled ${m.pulled}, pushed ${m.pushed}${m.error ? `, FAILING: ${m.error}` : ''}\n`);
      process.stdout.write(`alarms: ${s.alarms.length === 0 ? 'none' : ''}\n`);
      for (const a of s.alarms) process.stdout.write(`  ${a.kind} ${a.product}/${a.channel} scheduled ${a.scheduledAt}: publish or set a new schedule\n`);
    });
}
