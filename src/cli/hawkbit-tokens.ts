import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, checkName, printJson, withAdminOptions } from './admin-client.js';
import { normaliseMac } from '../protocol/mac.js';

type Flags = { server?: string; token?: string; product: string; json?: boolean };

/**
 * Issue 12: the hawkBit DDI tokens SWUpdate devices present. The server prints each once and
 * keeps only its hash, so a lost token is replaced, never shown again.
 */
export function registerDeviceToken(devices: Command): void {
  withAdminOptions(devices.command('token')
    .description('print a new hawkBit TargetToken for one SWUpdate device (suricatta targettoken); replaces its old one and admits the device'))
    .requiredOption('--product <name>', 'product name (the hawkBit tenant)')
    .requiredOption('--device <mac>', 'the device id (its suricatta id), a MAC such as aa:bb:cc:dd:ee:ff')
    .option('--channel <name>', 'the channel the device is offered releases of', 'stable')
    .option('--json', 'print { product, deviceId, channel, token, keyId }')
    .action(async (o: Flags & { device: string; channel: string }) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      checkName('--channel', o.channel);
      const deviceId = normaliseMac(o.device);
      if (!deviceId) throw new CliError(`--device '${o.device}' is not a MAC address such as aa:bb:cc:dd:ee:ff: patchwire devices are MACs; set the same as suricatta id`);
      const r = await adminRequest<{ token: string }>(target, 'POST', `/products/${encodeURIComponent(o.product)}/devices/${encodeURIComponent(deviceId)}/hawkbit-token`, { channel: o.channel });
      if (o.json) return printJson(r);
      process.stdout.write(`${r.token}\n`);
    });
}

export function registerGatewayToken(product: Command): void {
  withAdminOptions(product.command('gateway-token')
    .description("print a new hawkBit GatewayToken for the product (suricatta gatewaytoken); the old one stops at once"))
    .requiredOption('--product <name>', 'product name (the hawkBit tenant)')
    .option('--json', 'print { product, token }')
    .action(async (o: Flags) => {
      const target = adminTarget(o);
      checkName('--product', o.product);
      const r = await adminRequest<{ token: string }>(target, 'POST', `/products/${encodeURIComponent(o.product)}/hawkbit-gateway-token`);
      if (o.json) return printJson(r);
      process.stdout.write(`${r.token}\n`);
    });
}
