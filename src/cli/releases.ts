import type { Command } from 'commander';
import { adminRequest, adminTarget, checkName, printJson, printTable, withAdminOptions } from './admin-client.js';

interface ReleaseListing {
  product: string;
  releases: Array<{ channel: string; version: string; length: number; createdAt: string; yankedAt: string | null; latest: boolean }>;
}

export function register(program: Command): void {
  withAdminOptions(program.command('releases').description("list a product's releases: the latest each channel offers, and the yanked ones"))
    .requiredOption('--product <name>', 'product name')
    .option('--channel <name>', 'only this channel (default: every channel)')
    .option('--json', 'print { product, releases: [{ channel, version, target, sha256, length, createdAt, yankedAt, latest }] }')
    .action(async (o: { server?: string; token?: string; product: string; channel?: string; json?: boolean }) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      checkName('--channel', o.channel);
      const q = o.channel ? `?channel=${encodeURIComponent(o.channel)}` : '';
      const r = await adminRequest<ReleaseListing>(target, 'GET', `/products/${encodeURIComponent(o.product)}/releases${q}`);
      if (o.json) return printJson(r);
      if (r.releases.length === 0) return void process.stdout.write(`${o.product} has no releases${o.channel ? ` on ${o.channel}` : ''} yet\n`);
      printTable([['CHANNEL', 'VERSION', 'BYTES', 'PUBLISHED', 'STATE'], ...r.releases.map((x) => [
        x.channel, x.version, String(x.length), x.createdAt, x.yankedAt ? `yanked ${x.yankedAt}` : x.latest ? 'latest' : '',
      ])]);
    });
}
