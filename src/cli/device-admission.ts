import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, checkName, printJson, withAdminOptions } from './admin-client.js';
import { normaliseMac } from '../protocol/mac.js';
import { PUBLIC_KEY_RE } from '../protocol/device-auth.js';

type O = { server?: string; token?: string; product: string; json?: boolean; key?: string };
interface IdentityAnswer { product: string; deviceId: string; status: string; keyId: string; pendingKeyId: string | null }

function macOf(mac: string): string {
  const id = normaliseMac(mac);
  if (!id) throw new CliError(`'${mac}' is not a MAC address such as aa:bb:cc:dd:ee:ff (patchwire devices lists them)`);
  return id;
}

const path = (o: O, mac: string, what: string) => `/products/${encodeURIComponent(o.product)}/${what}/${encodeURIComponent(mac)}`;

/** `devices accept|reject|preauthorize MAC --product P` (docs/design.md section 7). */
export function registerAdmission(devices: Command): void {
  const action = (verb: 'accept' | 'reject', describe: (r: IdentityAnswer) => string) => async (mac: string, o: O) => {
    const target = adminTarget(o);
    checkName('--product', o.product);
    if (o.key !== undefined && !/^[0-9a-f]{8,32}$/.test(o.key)) throw new CliError(`--key '${o.key}' is not a key id: give the key id \`patchwire devices\` shows (8 to 32 hex digits)`);
    const pin = verb === 'accept' && o.key !== undefined ? `?keyId=${o.key}` : '';
    const r = await adminRequest<IdentityAnswer>(target, 'POST', `${path(o, macOf(mac), 'devices')}/${verb}${pin}`);
    if (o.json) return printJson(r);
    process.stdout.write(`${describe(r)}\n`);
  };
  withAdminOptions(devices.command('accept')
    .description('admit a pending device, or re-bind a device to the new key it presented (identity conflict), keeping its record and history'))
    .argument('<mac>', 'the device id').requiredOption('--product <name>', 'product name')
    .option('--key <key-id>', 'bind only this key (its id as `devices` shows it; refused when another key waits)')
    .option('--json', 'print { product, deviceId, status, keyId, pendingKeyId }')
    .action(action('accept', (r) => `accepted ${r.deviceId} of ${r.product}: bound to key ${r.keyId}`));
  withAdminOptions(devices.command('reject')
    .description("drop a device's pending new key (it keeps its bound key); without one, reject the device: it is refused until accepted"))
    .argument('<mac>', 'the device id').requiredOption('--product <name>', 'product name').option('--json', 'print { product, deviceId, status, keyId, pendingKeyId }')
    .action(action('reject', (r) => (r.status === 'rejected' ? `rejected ${r.deviceId} of ${r.product}` : `dropped the pending key of ${r.deviceId} of ${r.product}; it stays bound to key ${r.keyId}`)));
  withAdminOptions(devices.command('preauthorize')
    .description('admit this MAC at its first auth even when the product needs approval (with --key: only that device key)'))
    .argument('<mac>', 'the device id').requiredOption('--product <name>', 'product name')
    .option('--key <public-key>', "the device's public key (64 hex digits, `publicKey` in its .patchwire/device-key.json)")
    .option('--json', 'print { product, deviceId, preauthorized, publicKey }')
    .action(async (mac: string, o: O) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      if (o.key !== undefined && !PUBLIC_KEY_RE.test(o.key)) throw new CliError(`--key '${o.key}' is not a device public key: give the 64 hex digits of publicKey in the device's .patchwire/device-key.json`);
      const r = await adminRequest<{ deviceId: string; product: string }>(target, 'PUT', path(o, macOf(mac), 'preauthorized'), o.key ? { publicKey: o.key } : {});
      if (o.json) return printJson(r);
      process.stdout.write(`preauthorized ${r.deviceId} for ${r.product}${o.key ? ' with that key' : ''}\n`);
    });
}

/** `product admission P auto|approve`. */
export function registerProductAdmission(product: Command): void {
  withAdminOptions(product.command('admission')
    .description('how the product admits devices it has never seen: auto (first key for a MAC wins) or approve (pending until `devices accept`)'))
    .argument('<product>', 'product name').argument('<policy>', 'auto or approve').option('--json', 'print { product, admission }')
    .action(async (name: string, policy: string, o: { server?: string; token?: string; json?: boolean }) => {
      const target = adminTarget(o);
      checkName('product', name);
      if (policy !== 'auto' && policy !== 'approve') throw new CliError(`admission policy '${policy}' is not auto or approve`);
      const r = await adminRequest<{ product: string; admission: string }>(target, 'PUT', `/products/${encodeURIComponent(name)}/admission`, { admission: policy });
      if (o.json) return printJson(r);
      process.stdout.write(`${r.product} admits new devices: ${r.admission}\n`);
    });
}
