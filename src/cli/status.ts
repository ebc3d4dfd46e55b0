import type { Command } from 'commander';
import { adminRequest, adminTarget, checkName, printJson, withAdminOptions } from './admin-client.js';
import type { StatusView } from '../protocol/wire.js';

const counts = (versions: Record<string, number>): string => Object.entries(versions).map(([v, n]) => `${v}: ${n}`).join(', ') || 'none';

export function register(program: Command): void {
  withAdminOptions(program.command('status').description('fleet summary: devices per product, channel and version; mirrors; alarms'))
    .option('--product <name>', 'only this product')
    .option('--json', 'print one JSON document')
    .action(async (o: { server?: string; token?: string; product?: string; json?: boolean }) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      const s = await adminRequest<StatusView>(target, 'GET', `/status${o.product ? `?product=${encodeURIComponent(o.product)}` : ''}`);
      if (o.json) return printJson(s);
      process.stdout.write(`devices: ${s.devices}\n`);
      for (const p of s.products) {
        process.stdout.write(`  ${p.product}: ${p.devices} device${p.devices === 1 ? '' : 's'}\n`);
        for (const c of p.channels) process.stdout.write(`    ${c.channel} (latest ${c.latest ?? 'none'}): ${counts(c.versions)}\n`);
      }
      process.stdout.write(`mirrors: ${s.mirrors.length === 0 ? 'none' : ''}\n`);
      for (const m of s.mirrors) {
        if (m.state === 'pending') {
          process.stdout.write(`  ${m.url}: PENDING approval, never contacted: \`patchwire mirrors approve ${m.url}\` if it is yours, else \`patchwire mirrors remove ${m.url}\`\n`);
          continue;
        }
        const skipped = m.skipped ? `, SKIPPED ${m.skipped} invalid records: ${m.skippedWhy}` : '';
        process.stdout.write(`  ${m.url}: last sync ${m.lastSyncAt ?? 'never'}, pulled ${m.pulled}, pushed ${m.pushed}${skipped}${m.error ? `, FAILING: ${m.error}` : ''}\n`);
      }
      process.stdout.write(`alarms: ${s.alarms.length === 0 ? 'none' : ''}\n`);
      for (const a of s.alarms) {
        if (a.kind === 'schedule-overdue') process.stdout.write(`  ${a.kind} ${a.product}/${a.channel} scheduled ${a.scheduledAt}: publish or set a new schedule\n`);
        else if (a.kind === 'rollout-halted') process.stdout.write(`  ${a.kind} ${a.product}/${a.channel} ${a.version} since ${a.since}: ${a.failed} failed and ${a.rolledBack} rolled back of ${a.attempted} attempts reached ${a.haltAt}%: \`patchwire rollout resume|abort --product ${a.product} --channel ${a.channel}\`\n`);
        else process.stdout.write(`  ${a.kind} ${a.product} device ${a.deviceId}: key ${a.pendingKeyId} waits since ${a.since} (bound to ${a.keyId}): \`patchwire devices accept|reject ${a.deviceId} --product ${a.product}\`\n`);
      }
    });
}
