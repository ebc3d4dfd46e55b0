import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { detectDeviceId } from '../src/agent/device-id.js';
import { DeviceIdError } from '../src/agent/errors.js';

function nic(mac: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo {
  return family === 'IPv4'
    ? { address: '10.0.0.2', netmask: '255.255.255.0', family, mac, internal, cidr: '10.0.0.2/24' }
    : { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family, mac, internal, cidr: 'fe80::1/64', scopeid: 2 };
}

test('detectDeviceId: table of cases', () => {
  const cases: Array<[string, NodeJS.Dict<NetworkInterfaceInfo[]>, string]> = [
    ['single interface, normalised to lower case', { eth0: [nic('AA:BB:CC:DD:EE:FF')] }, 'aa:bb:cc:dd:ee:ff'],
    ['interfaces taken in name order, not insertion order', { wlan0: [nic('02:00:00:00:00:02')], eth0: [nic('02:00:00:00:00:01')] }, '02:00:00:00:00:01'],
    ['skips internal (loopback)', { lo: [nic('00:00:00:00:00:00', true)], a0: [nic('02:00:00:00:00:09', true)], eth0: [nic('02:00:00:00:00:01')] }, '02:00:00:00:00:01'],
    ['skips zero MACs (tunnels)', { aa_tun: [nic('00:00:00:00:00:00')], eth1: [nic('02:00:00:00:00:03')] }, '02:00:00:00:00:03'],
    ['skips an undefined entry', { a: undefined, eth0: [nic('02:00:00:00:00:04')] }, '02:00:00:00:00:04'],
    ['uses the IPv6 entry when it is the first usable one', { eth0: [nic('00:00:00:00:00:00'), nic('02:00:00:00:00:05', false, 'IPv6')] }, '02:00:00:00:00:05'],
  ];
  for (const [name, interfaces, expected] of cases) assert.equal(detectDeviceId(interfaces), expected, name);
});

test('detectDeviceId: no usable interface gives a clear error suggesting --device-id', () => {
  for (const interfaces of [{}, { lo: [nic('00:00:00:00:00:00', true)] }, { tun0: [nic('00:00:00:00:00:00')] }, { eth0: [nic('aa:bb:cc:dd:ee:ff', true)] }]) {
    assert.throws(() => detectDeviceId(interfaces), (err: unknown) => {
      assert.ok(err instanceof DeviceIdError);
      assert.match(err.message, /--device-id/);
      return true;
    });
  }
});

test('detectDeviceId: the default reads this machine without throwing anything but DeviceIdError', () => {
  try {
    assert.match(detectDeviceId(), /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  } catch (err) {
    assert.ok(err instanceof DeviceIdError);
  }
});
