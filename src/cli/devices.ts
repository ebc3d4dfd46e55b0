import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, checkName, printJson, printTable, withAdminOptions } from './admin-client.js';
import { normaliseMac } from '../protocol/mac.js';
import { listAllDevices } from './device-pages.js';
import { REPORT_EVENTS, type DeviceDetail } from '../protocol/wire.js';
import { registerAdmission } from './device-admission.js';
import { registerDeviceToken } from './hawkbit-tokens.js';
import { deviceFilterOf, type DeviceFilterFlags } from './device-filter-flags.js';

export function register(program: Command): void {
  const devices = withAdminOptions(program
    .command('devices')
    .description('list registered devices with their applied version and where they were last seen'))
    .option('--product <name>', 'only this product')
    .option('--version <v>', 'only devices at this applied version (none: nothing applied yet)')
    .option('--status <event>', `only devices whose last report was this event: ${REPORT_EVENTS.join(', ')}, or none (never reported)`)
    .option('--stale <duration>', 'only devices not seen within this time, e.g. 7d, 12h')
    .option('--mac <prefix>', 'only devices whose MAC starts with this, e.g. aa:bb:cc')
    .option('--json', 'print a JSON array')
    .action(async (o: DeviceFilterFlags & { server?: string; token?: string; json?: boolean }) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      const list = await listAllDevices(target, deviceFilterOf(o));
      if (o.json) return printJson(list);
      printTable([['DEVICE', 'PRODUCT', 'CHANNEL', 'VERSION', 'LAST SEEN', 'LAST EVENT', 'SOURCE', 'STATUS', 'KEY'],
        ...list.map((d) => [d.deviceId, d.product, d.channel, d.version ?? '-', d.lastSeenAt, d.lastEvent ?? '-', d.source || '-', d.status ?? '-',
          d.keyId ? `${d.keyId.slice(0, 12)}${d.pendingKeyId ? ` (new key ${d.pendingKeyId.slice(0, 12)} waits)` : ''}` : '-'])]);
    });
  withAdminOptions(devices.command('show')
    .description('show one device with its update history (downloading, installing, applied, failed, ...), newest first'))
    .argument('<mac>', 'the device id, e.g. aa:bb:cc:dd:ee:ff')
    .requiredOption('--product <name>', 'product name')
    .option('--json', 'print { device, history }')
    .action(async (mac: string, o: DeviceCommandFlags) => {
      const r = await deviceRequest<DeviceDetail>(mac, o, 'GET');
      if (o.json) return printJson(r);
      printDevice(r);
    });
  withAdminOptions(devices.command('remove')
    .description("remove a device from a product's registry, with its report history; if it checks again it enrols as new"))
    .argument('<mac>', 'the device id, e.g. aa:bb:cc:dd:ee:ff')
    .requiredOption('--product <name>', 'product name')
    .option('--json', 'print { product, deviceId, removed }')
    .action(async (mac: string, o: DeviceCommandFlags) => {
      const r = await deviceRequest<{ product: string; deviceId: string }>(mac, o, 'DELETE');
      if (o.json) return printJson(r);
      process.stdout.write(`removed ${r.deviceId} from ${r.product} with its report history\n`);
    });
  registerAdmission(devices);
  registerDeviceToken(devices);
}

type DeviceCommandFlags = { server?: string; token?: string; product: string; json?: boolean };

/** The admin request of a one-device command (`show`, `remove`) on /products/P/devices/MAC; a bad MAC or product is exit 2. */
function deviceRequest<T>(mac: string, o: DeviceCommandFlags, method: 'GET' | 'DELETE'): Promise<T> {
  const target = adminTarget(o);
  checkName('--product', o.product);
  const deviceId = normaliseMac(mac);
  if (!deviceId) throw new CliError(`'${mac}' is not a MAC address such as aa:bb:cc:dd:ee:ff (patchwire devices lists them)`);
  return adminRequest<T>(target, method, `/products/${encodeURIComponent(o.product)}/devices/${encodeURIComponent(deviceId)}`);
}

/** `devices show` for people: the record, then one line per history entry, newest first. */
function printDevice({ device: d, history }: DeviceDetail): void {
  const rows: Array<[string, string]> = [
    ['device', d.deviceId], ['product', `${d.product} (channel ${d.channel})`], ['version', d.version ?? '-'],
    ['last event', d.lastEvent ?? '-'], ['first seen', d.firstSeenAt], ['last seen', d.lastSeenAt],
    ['last report', d.lastReportAt ?? '-'], ['source', d.source || '-'], ['status', d.status ?? '-'], ['key', d.keyId ?? '-'],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(12)}${v}\n`);
  if (history.length === 0) return void process.stdout.write('history     none\n');
  process.stdout.write('\n');
  printTable([['AT', 'EVENT', 'VERSION', 'FROM', 'STATE', 'ERROR'],
    ...history.map((h) => [h.at, h.event, h.version ?? '-', h.fromVersion ?? '-', h.state ?? '-', (h.error ?? '-').replace(/\s+/g, ' ')])]);
}
