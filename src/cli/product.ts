import type { Command } from 'commander';
import { access, writeFile, unlink } from 'node:fs/promises';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, printJson, withAdminOptions } from './admin-client.js';
import { loadPublisherKey } from './key-file.js';
import { isName } from '../protocol/names.js';
import { registerProductAdmission } from './device-admission.js';
import { menderDestProblem } from '../server/routes/device-admin-api.js';
import { registerGatewayToken } from './hawkbit-tokens.js';

interface Opts { server?: string; token?: string; product: string; key: string; rootOut?: string; admission?: string; json?: boolean; menderDest?: string }

export function register(program: Command): void {
  const product = program.command('product').description('manage products');
  withAdminOptions(product
    .command('create')
    .description('create a product: sign its TUF root and first targets with your key, upload them, and write the root file devices trust'))
    .requiredOption('--product <name>', 'product name (a-z 0-9 . _ -)')
    .requiredOption('--key <file>', 'publisher key file from `patchwire keygen`')
    .option('--root-out <file>', 'where to write the root metadata to ship with your program (default: ./<product>.root.json)')
    .option('--admission <policy>', 'how new devices are admitted: auto (first key for a MAC wins) or approve', 'auto')
    .option('--mender-dest <dir>', 'the folder on Mender devices that the directory update module installs releases into (docs/compat.md)')
    .option('--json', 'print { product, rootFile } as JSON')
    .action(async (o: Opts) => {
      const target = adminTarget(o);
      if (o.admission !== 'auto' && o.admission !== 'approve') throw new CliError(`--admission '${o.admission}' is not auto or approve`);
      if (!isName(o.product)) throw new CliError(`--product '${o.product}' is not a valid name: use 1-64 of a-z 0-9 . _ - starting with a letter or digit`);
      const destProblem = o.menderDest === undefined ? undefined : menderDestProblem(o.menderDest);
      if (destProblem) throw new CliError(`--mender-dest ${JSON.stringify(o.menderDest)} ${destProblem}`);
      const rootOut = o.rootOut ?? `./${o.product}.root.json`;
      if (await access(rootOut).then(() => true, () => false)) {
        throw new CliError(`${rootOut} exists already; move it away or pass another --root-out`);
      }
      const publisher = await loadPublisherKey(o.key);
      const { createInitialMetadata } = await import('../tuf/publisher.js');
      const online = await adminRequest<{ snapshot: string; timestamp: string }>(target, 'GET', '/online-keys');
      const { root, targets } = createInitialMetadata({ publisher, online, now: new Date() });
      // Written first so a product never exists without its root file; removed if the server refuses.
      await writeFile(rootOut, JSON.stringify(root), { flag: 'wx' });
      try {
        await adminRequest(target, 'POST', '/products', { product: o.product, root, targets, ...(o.admission === 'approve' ? { admission: 'approve' } : {}) });
      } catch (err) {
        await unlink(rootOut).catch(() => {});
        throw err;
      }
      if (o.menderDest !== undefined) await adminRequest(target, 'PUT', `/products/${encodeURIComponent(o.product)}/mender`, { menderDest: o.menderDest });
      if (o.json) return printJson({ product: o.product, rootFile: rootOut });
      process.stdout.write(`created product ${o.product}; ship ${rootOut} with your program (patchwire init --root ${rootOut})\n`);
    });
  registerProductAdmission(product);
  withAdminOptions(product
    .command('update')
    .description('change a product\'s settings: the folder its Mender devices install into'))
    .requiredOption('--product <name>', 'product name')
    .option('--mender-dest <dir>', 'the folder on Mender devices that the directory update module installs releases into (docs/compat.md)')
    .option('--no-mender-dest', 'Mender devices of the product are offered nothing (deployments/next answers 204)')
    .option('--json', 'print { product, menderDest } as JSON')
    .action(async (o: { server?: string; token?: string; product: string; menderDest?: string | false; json?: boolean }) => {
      const target = adminTarget(o);
      if (o.menderDest === undefined) throw new CliError('nothing to change: pass --mender-dest DIR (or --no-mender-dest)');
      const r = await adminRequest<{ product: string; menderDest: string | null }>(target, 'PUT', `/products/${encodeURIComponent(o.product)}/mender`, { menderDest: o.menderDest === false ? null : o.menderDest });
      if (o.json) return printJson(r);
      process.stdout.write(r.menderDest ? `Mender devices of ${r.product} install into ${r.menderDest}\n` : `Mender devices of ${r.product} are offered no update (no --mender-dest)\n`);
    });
  registerGatewayToken(product);
}
