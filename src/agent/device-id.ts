import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { normaliseMac } from '../protocol/index.js';
import { DeviceIdError } from './errors.js';

/**
 * The device id: the MAC of the first non-internal interface with a non-zero MAC, interfaces
 * taken in name order so that the choice is stable across restarts. Throws DeviceIdError when
 * there is none (containers often have none: pass `--device-id`).
 */
export function detectDeviceId(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string {
  const names = Object.keys(interfaces).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    for (const info of interfaces[name] ?? []) {
      if (info.internal) continue;
      const mac = normaliseMac(info.mac);
      if (mac) return mac;
    }
  }
  throw new DeviceIdError(
    'no network interface with a MAC address was found to use as the device id: pass --device-id aa:bb:cc:dd:ee:ff (deviceId in the API)',
  );
}
