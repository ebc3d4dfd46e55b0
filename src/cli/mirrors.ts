import type { Command } from 'commander';
import { adminRequest, adminTarget, printJson, printTable, withAdminOptions } from './admin-client.js';
import type { MirrorView } from '../protocol/wire.js';

const SERVER = 'the primary patchwire server URL (required)';
const q = (url: string) => `?url=${encodeURIComponent(url)}`;

export function register(program: Command): void {
  const mirrors = program.command('mirrors').description('the mirrors that announced themselves to a primary: a new one is pending until approved');
  withAdminOptions(mirrors.command('list').description('list the mirrors, pending or approved, with the outcome of their last consolidation'), SERVER)
    .option('--json', 'print { mirrors: [{ url, state, announcedAt, approvedAt, lastSyncAt, pulled, pushed, error, skipped, skippedWhy }] }')
    .action(async (o: { server?: string; token?: string; json?: boolean }) => {
      const r = await adminRequest<{ mirrors: MirrorView[] }>(adminTarget(o), 'GET', '/mirrors');
      if (o.json) return printJson(r);
      if (r.mirrors.length === 0) return void process.stdout.write('no mirrors have announced themselves to this server\n');
      printTable([['URL', 'STATE', 'ANNOUNCED', 'LAST SYNC', 'SKIPPED', 'ERROR'],
        ...r.mirrors.map((m) => [m.url, m.state, m.announcedAt, m.lastSyncAt ?? 'never', m.skippedWhy ? `${m.skipped}: ${m.skippedWhy}` : String(m.skipped), m.error ?? ''])]);
      for (const m of r.mirrors.filter((x) => x.state === 'pending')) {
        process.stdout.write(`${m.url} is pending: never contacted; if it is yours, run \`patchwire mirrors approve ${m.url}\`, else \`patchwire mirrors remove ${m.url}\` and change the mirror token\n`);
      }
    });
  withAdminOptions(mirrors.command('approve')
    .description('approve a mirror that announced itself: the primary pulls its device records from it and pushes the registry and schedules to it from the next consolidation on'), SERVER)
    .argument('<mirror-url>', 'the URL the mirror announced (its --public-url, as `mirrors list` shows it)')
    .option('--json', 'print { mirror: { url, state, ... } }')
    .action(async (url: string, o: { server?: string; token?: string; json?: boolean }) => {
      const r = await adminRequest<{ mirror: MirrorView }>(adminTarget(o), 'POST', `/mirrors/approve${q(url)}`);
      if (o.json) return printJson(r);
      process.stdout.write(`approved mirror ${r.mirror.url}; it is consolidated from the next run on (\`patchwire reconcile\` runs one now)\n`);
    });
  withAdminOptions(mirrors.command('remove')
    .description('forget a mirror: it is no longer contacted; if it announces itself again it comes back as pending (stop it, or change the mirror token, to keep it out)'), SERVER)
    .argument('<mirror-url>', 'the URL the mirror announced (as `mirrors list` shows it)')
    .option('--json', 'print { url, removed }')
    .action(async (url: string, o: { server?: string; token?: string; json?: boolean }) => {
      const r = await adminRequest<{ url: string; removed: boolean }>(adminTarget(o), 'DELETE', `/mirrors${q(url)}`);
      if (o.json) return printJson(r);
      process.stdout.write(`removed mirror ${r.url}; it is no longer contacted (if it announces itself again it waits as pending)\n`);
    });
}
