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
import { parseDuration } from '../protocol/duration.js';
import { buildSwu, swuOptions } from './swu-build.js';
import { DEFAULT_MIN_DEVICES, parsePercent, parsePhases, ROLLOUT_LIMITS, type RolloutPlan } from '../protocol/rollout.js';

interface Opts {
  server?: string; token?: string; product: string; version: string; key: string; channel: string; json?: boolean;
  rollout?: string; every?: string; haltAt?: string; minDevices?: string;
  swuCert?: string; swuKey?: string; swuDest?: string; swuHw?: string;
}

/** The plan of `--rollout` and its flags, or undefined without `--rollout` (the release goes to every device). */
function rolloutPlan(o: Opts): RolloutPlan | undefined {
  if (o.rollout === undefined) {
    const stray = [o.every !== undefined && '--every', o.haltAt !== undefined && '--halt-at', o.minDevices !== undefined && '--min-devices'].filter(Boolean);
    if (stray.length) throw new CliError(`${stray.join(', ')} only apply to a staged rollout: add --rollout 5%,25%,100%`);
    return undefined;
  }
  const phases = parsePhases(o.rollout);
  if (typeof phases === 'string') throw new CliError(`--rollout '${o.rollout}': ${phases}; give percents such as 5%,25%,100%`);
  let every: number | null = null;
  if (o.every !== undefined) {
    const s = parseDuration(o.every);
    if (s === undefined || s < ROLLOUT_LIMITS.minEverySeconds || s > ROLLOUT_LIMITS.maxEverySeconds) throw new CliError(`--every '${o.every}' is not a duration from 1s to 365d such as 1h or 30m`);
    every = s;
  }
  let haltAt: number | null = null;
  if (o.haltAt !== undefined) {
    const p = parsePercent(o.haltAt);
    if (p === undefined) throw new CliError(`--halt-at '${o.haltAt}' is not a percent such as 5% (0.01-100)`);
    haltAt = p;
  }
  let minDevices = DEFAULT_MIN_DEVICES;
  if (o.minDevices !== undefined) {
    const n = Number(o.minDevices);
    if (!/^\d+$/.test(o.minDevices) || n < 1 || n > ROLLOUT_LIMITS.maxMinDevices) throw new CliError(`--min-devices '${o.minDevices}' is not a whole number from 1 to ${ROLLOUT_LIMITS.maxMinDevices}`);
    minDevices = n;
  }
  return { phases, every, haltAt, minDevices };
}

interface ProductInfo {
  targets: SignedJson;
  releases: Array<{ channel: string; version: string; yankedAt?: string | null }>;
}

export function register(program: Command): void {
  withAdminOptions(program
    .command('publish')
    .description('publish DIR as a new release: pack it, sign it with your key, upload it'),
  // Shorter than the default: the rollout flags widen the option column.
  'patchwire server URL, e.g. http://HOST:8080 (required)')
    .argument('<dir>', 'the full program tree of this release')
    .requiredOption('--product <name>', 'product name')
    .requiredOption('--version <semver>', 'release version; must be higher than the latest of the channel')
    .requiredOption('--key <file>', 'publisher key file from `patchwire keygen`')
    .option('--channel <name>', 'release channel', DEFAULT_CHANNEL)
    .option('--rollout <phases>', 'stage the release: percents of the fleet offered it, phase by phase, e.g. 5%,25%,100% (default: every device at once)')
    .option('--every <duration>', 'with --rollout: move to the next phase after this long, e.g. 1h (default: only `rollout advance`)')
    .option('--halt-at <percent>', 'with --rollout: halt the rollout when failed + rolled-back devices reach this share of those that attempted it, e.g. 5%')
    .option('--min-devices <n>', `with --halt-at: attempts needed before it can halt (default ${DEFAULT_MIN_DEVICES})`)
    .option('--swu-cert <file>', 'also build a signed .swu for hawkBit/SWUpdate devices: the PEM certificate they verify with (-k)')
    .option('--swu-key <file>', 'with --swu-cert: its PEM private key (stays on this machine; signs sw-description with openssl cms)')
    .option('--swu-dest <dir>', 'with --swu-cert: the folder SWUpdate extracts the release tree into (default /opt/patchwire)')
    .option('--swu-hw <board:rev>', 'with --swu-cert: hardware compatibility, e.g. board:1.0 (the revision goes into sw-description)')
    .option('--json', 'print the release as JSON')
    .action(async (dir: string, o: Opts) => {
      const target = adminTarget(o);
      const rollout = rolloutPlan(o);
      const swu = swuOptions(o);
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
          patchwire: {
            kind: 'full', product: o.product, channel: o.channel, version: o.version, treeHash: tree.hash, treeBytes: tree.bytes, treeFiles: tree.files,
            // Signed: a mirror may defer a device only for a release the publisher staged.
            ...(rollout ? { rollout: { phases: rollout.phases } } : {}),
          },
        };
        const path = releaseTargetPath(o.channel, o.version);
        let targets: SignedJson;
        try {
          targets = nextTargets({ current: info.targets, publisher, add: { [path]: { length: packed.length, sha256: packed.sha256, custom } }, now: new Date() });
        } catch (err) {
          throw new CliError(`refusing to sign: ${(err as Error).message}`, 1, { cause: err });
        }
        // Issue 12: the .swu is built and signed here, with the vendor's key, and uploaded with the release.
        const built = swu ? await buildSwu({ product: o.product, channel: o.channel, version: o.version, archive, archiveSha256: packed.sha256, tmp, swu }) : undefined;
        const form = new FormData();
        form.append('metadata', JSON.stringify({ channel: o.channel, version: o.version, targets, ...(rollout ? { rollout } : {}), ...(built ? { swu: { sha256: built.sha256, length: built.length } } : {}) }));
        form.append('archive', await openAsBlob(archive), 'release.tar.gz');
        if (built) form.append('swu', await openAsBlob(built.file), 'release.swu');
        const release = await adminRequest<Record<string, unknown>>(target, 'POST', `/products/${encodeURIComponent(o.product)}/releases`, form);
        if (o.json) printJson(release);
        else process.stdout.write(`published ${o.product} ${o.version} on ${o.channel} (${packed.length} bytes, ${tree.files} files)${rollout ? `, staged ${rollout.phases.join('%,')}%` : ''}${built ? `, with a signed .swu (${built.length} bytes)` : ''}\n`);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    });
}
