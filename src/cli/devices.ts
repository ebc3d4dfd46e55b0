import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, checkName, printJson, printTable, withAdminOptions } from './admin-client.js';
import { normaliseMac } from '../protocol/mac.js';
import { listAllDevices } from './device-pages.js';
import type { DeviceView } from '../protocol/wire.js';
import { registerAdmission } from './device-admission.js';

export function register(program: Command): void {
  const devices = withAdminOptions(program
    .command('devices')
    .description('list registered devices with their applied version and where they were last seen'))
    .option('--product <name>', 'only this product')
    .option('--json', 'print a JSON array')
    .action(async (o: { server?: string; token?: string; product?: string; json?: boolean }) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      const list = await listAllDevices(target, o.product);
      if (o.json) return printJson(list);
      printTable([['DEVICE', 'PRODUCT', 'CHANNEL', 'VERSION', 'LAST SEEN', 'SOURCE', 'STATUS', 'KEY'],
        ...list.map((d) => [d.deviceId, d.product, d.channel, d.version ?? '-', d.lastSeenAt, d.source || '-', d.status ?? '-',
          d.keyId ? `${d.keyId.slice(0, 12)}${d.pendingKeyId ? ` (new key ${d.pendingKeyId.slice(0, 12)} waits)` : ''}` : '-'])]);
    });
  withAdminOptions(devices.command('remove')
    .description("remove a device from a product's registry, with its report history; if it checks again it enrols as new"))
    .argument('<mac>', 'the device id, e.g. aa:bb:cc:dd:ee:ff')
    .requiredOption('--product <name>', 'product name')
    .option('--json', 'print { product, deviceId, removed }')
    .action(async (mac: string, o: { server?: string; token?: string; product: string; json?: boolean }) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      const deviceId = normaliseMac(mac);
      if (!deviceId) throw new CliError(`'${mac}' is not a MAC address such as aa:bb:cc:dd:ee:ff (patchwire devices lists them)`);
      const r = await adminRequest<{ product: string; deviceId: string }>(target, 'DELETE', `/products/${encodeURIComponent(o.product)}/devices/${encodeURIComponent(deviceId)}`);
      if (o.json) return printJson(r);
      process.stdout.write(`removed ${r.deviceId} from ${r.product} with its report history\n`);
    });
  registerAdmission(devices);
}
