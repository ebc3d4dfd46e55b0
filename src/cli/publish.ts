import type { Command } from 'commander';
import { stat, mkdtemp, rm } from 'node:fs/promises';
import { openAsBlob } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, printJson, withAdminOptions } from './admin-client.js';
import { loadPublisherKey } from './key-file.js';
import { checkReleaseTree } from './tree-check.js';
import { DEFAULT_CHANNEL, isName } from '../protocol/names.js';
import { compareVersions, isVersion } from '../protocol/version.js';
import { releaseTargetPath, type ReleaseTargetCustom } from '../protocol/targets.js';
import type { SignedJson } from '../tuf/publisher.js';

interface Opts { server?: string; token?: string; product: string; version: string; key: string; channel: string; json?: boolean }

interface ProductInfo {
  targets: SignedJson;
  releases: Array<{ channel: string; version: string; yankedAt?: string | null }>;
}

export function register(program: Command): void {
  withAdminOptions(program
    .command('publish')
    .description('publish DIR as a new release: pack it, sign it with your key, upload it'))
    .argument('<dir>', 'the full program tree of this release')
    .requiredOption('--product <name>', 'product name')
    .requiredOption('--version <semver>', 'release version; must be higher than the latest of the channel')
    .requiredOption('--key <file>', 'publisher key file from `patchwire keygen`')
    .option('--channel <name>', 'release channel', DEFAULT_CHANNEL)
    .option('--json', 'print the release as JSON')
    .action(async (dir: string, o: Opts) => {
      const target = adminTarget(o);
      if (!isName(o.product)) throw new CliError(`--product '${o.product}' is not a valid name`);
      if (!isName(o.channel)) throw new CliError(`--channel '${o.channel}' is not a valid name: use a-z 0-9 . _ -`);
      if (!isVersion(o.version)) throw new CliError(`--version '${o.version}' is not a semver version such as 1.2.3`);
      const st = await stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) throw new CliError(`${dir} is not a folder; give the folder holding the release's files`);
      await checkReleaseTree(dir);
      const publisher = await loadPublisherKey(o.key);
      const info = await adminRequest<ProductInfo>(target, 'GET', `/products/${encodeURIComponent(o.product)}`);
      const higher = info.releases.filter((r) => r.channel === o.channel && compareVersions(r.version, o.version) >= 0);
      if (higher.length) {
        const top = higher.sort((a, b) => compareVersions(a.version, b.version)).pop()!;
        // A yanked version stays taken: a channel's versions only go up.
        const what = top.yankedAt ? `the highest (yanked) release of ${o.product}/${o.channel}` : `the latest of ${o.product}/${o.channel}`;
        throw new CliError(`version ${o.version} is not higher than ${top.version}, ${what}; publish a higher version`, 2, { code: 'PW_VERSION_NOT_HIGHER' });
      }
      const { hashTree } = await import('../util/tree-hash.js');
      const { packTree } = await import('../util/archive-pack.js');
      const { nextTargets } = await import('../tuf/publisher.js');
      const tree = await hashTree(dir);
      const tmp = await mkdtemp(join(tmpdir(), 'patchwire-publish-'));
      try {
        const archive = join(tmp, 'release.tar.gz');
        const packed = await packTree(dir, archive);
        const custom: ReleaseTargetCustom = {
          patchwire: { kind: 'full', product: o.product, channel: o.channel, version: o.version, treeHash: tree.hash, treeBytes: tree.bytes, treeFiles: tree.files },
        };
        const path = releaseTargetPath(o.channel, o.version);
        let targets: SignedJson;
        try {
          targets = nextTargets({ current: info.targets, publisher, add: { [path]: { length: packed.length, sha256: packed.sha256, custom } }, now: new Date() });
        } catch (err) {
          throw new CliError(`refusing to sign: ${(err as Error).message}`, 1, { cause: err });
        }
        const form = new FormData();
        form.append('metadata', JSON.stringify({ channel: o.channel, version: o.version, targets }));
        form.append('archive', await openAsBlob(archive), 'release.tar.gz');
        const release = await adminRequest<Record<string, unknown>>(target, 'POST', `/products/${encodeURIComponent(o.product)}/releases`, form);
        if (o.json) printJson(release);
        else process.stdout.write(`published ${o.product} ${o.version} on ${o.channel} (${packed.length} bytes, ${tree.files} files)\n`);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    });
}
