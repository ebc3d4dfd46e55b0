import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, printJson, withAdminOptions } from './admin-client.js';
import { loadPublisherKey } from './key-file.js';
import { isName } from '../protocol/names.js';
import { parseHttpUrl } from '../protocol/http-url.js';
import { MOVED_TARGET_PATH, type MovedTargetCustom } from '../protocol/targets.js';
import type { MovedNotice } from '../protocol/wire.js';
import type { SignedJson } from '../tuf/publisher.js';

interface Opts { server?: string; token?: string; product: string; to: string; key: string; json?: boolean }

export function register(program: Command): void {
  withAdminOptions(program
    .command('move')
    .description("announce that the product's server moved to --to: a notice signed with your key that agents verify, persist and follow"), 'the current patchwire server URL (required)')
    .requiredOption('--product <name>', 'product name')
    .requiredOption('--to <url>', 'the new server URL')
    .requiredOption('--key <file>', 'publisher key file from `patchwire keygen`')
    .option('--json', 'print the moved notice as JSON')
    .action(async (o: Opts) => {
      const target = adminTarget(o);
      if (!isName(o.product)) throw new CliError(`--product '${o.product}' is not a valid name`);
      const to = parseHttpUrl(o.to);
      if (!to.ok) {
        throw new CliError(to.problem === 'not-a-url'
          ? `--to '${o.to}' is not a URL; give e.g. https://updates.example.com`
          : `--to '${o.to}' must be a plain http(s) URL without query, fragment or credentials`);
      }
      const url = to.base;
      const publisher = await loadPublisherKey(o.key);
      const info = await adminRequest<{ targets: SignedJson }>(target, 'GET', `/products/${encodeURIComponent(o.product)}`);
      const notice: MovedNotice = { product: o.product, url, issuedAt: new Date().toISOString() };
      const text = JSON.stringify(notice);
      const bytes = Buffer.from(text, 'utf8');
      const custom: MovedTargetCustom = { patchwire: { kind: 'moved', product: o.product, url } };
      const { nextTargets } = await import('../tuf/publisher.js');
      let targets: SignedJson;
      try {
        targets = nextTargets({
          current: info.targets, publisher, now: new Date(),
          add: { [MOVED_TARGET_PATH]: { length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), custom } },
        });
      } catch (err) {
        throw new CliError(`refusing to sign: ${(err as Error).message}`, 1, { cause: err });
      }
      const moved = await adminRequest<Record<string, unknown>>(target, 'POST', `/products/${encodeURIComponent(o.product)}/moved`, { notice: text, targets });
      if (o.json) return printJson(moved);
      process.stdout.write(`${o.product} now announces ${url}; agents follow it on their next check\n`);
    });
}
