import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, checkName, printJson, withAdminOptions } from './admin-client.js';
import { DEFAULT_CHANNEL } from '../protocol/names.js';
import { isVersion } from '../protocol/version.js';

interface YankView { product: string; channel: string; version: string; yankedAt: string; latest: string | null }

export function register(program: Command): void {
  const release = program.command('release').description('act on one release');
  withAdminOptions(release.command('yank')
    .description('withdraw a release: no device is offered it any more and the channel offers its highest release not yanked; devices that applied it keep it; final (publish a higher version to replace it)'))
    .requiredOption('--product <name>', 'product name')
    .requiredOption('--version <semver>', 'the release to yank')
    .option('--channel <name>', 'release channel', DEFAULT_CHANNEL)
    .option('--json', 'print { product, channel, version, yankedAt, latest }')
    .action(async (o: { server?: string; token?: string; product: string; version: string; channel: string; json?: boolean }) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      checkName('--channel', o.channel);
      if (!isVersion(o.version)) throw new CliError(`--version '${o.version}' is not a semver version such as 1.2.3`);
      const y = await adminRequest<YankView>(target, 'POST', `/products/${encodeURIComponent(o.product)}/yank`, { channel: o.channel, version: o.version });
      if (o.json) return printJson(y);
      process.stdout.write(`yanked ${y.product} ${y.version} on ${y.channel}; the channel now offers ${y.latest ?? 'nothing'}\n`);
    });
}
