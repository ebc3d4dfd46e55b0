import type { Command } from 'commander';
import { adminRequest, adminTarget, printJson, printTable, withAdminOptions } from './admin-client.js';
import type { MirrorView } from '../protocol/wire.js';

export function register(program: Command): void {
  const mirrors = program.command('mirrors').description('the mirrors that announced themselves to a primary');
  withAdminOptions(mirrors.command('list').description('list the mirrors with the state of their last consolidation'), 'the primary patchwire server URL (required)')
    .option('--json', 'print { mirrors: [{ url, announcedAt, lastSyncAt, pulled, pushed, error }] }')
    .action(async (o: { server?: string; token?: string; json?: boolean }) => {
      const r = await adminRequest<{ mirrors: MirrorView[] }>(adminTarget(o), 'GET', '/mirrors');
      if (o.json) return printJson(r);
      if (r.mirrors.length === 0) return void process.stdout.write('no mirrors have announced themselves to this server\n');
      printTable([['URL', 'ANNOUNCED', 'LAST SYNC', 'ERROR'], ...r.mirrors.map((m) => [m.url, m.announcedAt, m.lastSyncAt ?? 'never', m.error ?? ''])]);
    });
  withAdminOptions(mirrors.command('remove')
    .description('forget a mirror: it is no longer consolidated; a mirror still running announces itself again and comes back (stop it, or change the mirror token)'),
  'the primary patchwire server URL (required)')
    .argument('<mirror-url>', 'the URL the mirror announced (as `mirrors list` shows it)')
    .option('--json', 'print { url, removed }')
    .action(async (url: string, o: { server?: string; token?: string; json?: boolean }) => {
      const r = await adminRequest<{ url: string; removed: boolean }>(adminTarget(o), 'DELETE', `/mirrors?url=${encodeURIComponent(url)}`);
      if (o.json) return printJson(r);
      process.stdout.write(`removed mirror ${r.url}; it is no longer consolidated (it comes back if it announces itself again)\n`);
    });
}
