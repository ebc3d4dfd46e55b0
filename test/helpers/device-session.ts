/**
 * A device session for tests that speak the device protocol by hand: a fresh Ed25519 key (or a
 * given one), a signed POST /v1/auth, and the `Authorization` header for /v1/check and /v1/report.
 */
import { generateDeviceKey, signAuthRequest, type DeviceKey } from '../../src/agent/device-key.js';
import type { AuthRequest } from '../../src/protocol/device-auth.js';
import { normaliseMac } from '../../src/protocol/mac.js';

export interface DeviceSession {
  key: DeviceKey;
  token: string;
  headers: { authorization: string };
}

/** The signed auth body for a device (normalised MAC), as the agent sends it. */
export function authBody(deviceId: string, product: string, channel = 'stable', key: DeviceKey = generateDeviceKey(), now = new Date()): AuthRequest {
  return signAuthRequest(key, { deviceId: normaliseMac(deviceId) ?? deviceId, product, channel }, now);
}

/** POST /v1/auth; returns the status and parsed answer (no assertion). */
export async function authRaw(server: string, body: AuthRequest): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${server}/v1/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

/** Authenticates (enrols when new) and returns the session; throws unless the server gives a token. */
export async function deviceSession(server: string, deviceId: string, product = 'acme', o: { channel?: string; key?: DeviceKey } = {}): Promise<DeviceSession> {
  const key = o.key ?? generateDeviceKey();
  const r = await authRaw(server, authBody(deviceId, product, o.channel, key));
  if (r.status !== 200 || typeof r.body.token !== 'string') throw new Error(`auth of ${deviceId} at ${server} failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { key, token: r.body.token, headers: { authorization: `Bearer ${r.body.token}` } };
}

/**
 * Sessions cached per (server, device, product): hand-made checks and reports in tests re-use one
 * session. A device has one key whatever the server (a restarted server, another port, a mirror),
 * as a real device does: a second key for the same MAC would be an identity conflict.
 */
export class DeviceSessions {
  private readonly cache = new Map<string, Promise<DeviceSession>>();
  private readonly keys = new Map<string, DeviceKey>();
  /** MACs these sessions enrolled (an enrolment records the device: tests that compare registries know them). */
  readonly enrolled = new Set<string>();

  headers(server: string, deviceId: string, product = 'acme', channel?: string): Promise<{ authorization: string }> {
    const mac = normaliseMac(deviceId) ?? deviceId;
    const k = `${server}\n${mac}\n${product}`;
    let s = this.cache.get(k);
    if (!s) {
      const device = `${mac}\n${product}`;
      let key = this.keys.get(device);
      if (!key) this.keys.set(device, (key = generateDeviceKey()));
      s = deviceSession(server, mac, product, { channel, key });
      this.enrolled.add(mac);
      this.cache.set(k, s);
      s.catch(() => this.cache.delete(k));
    }
    return s.then((x) => x.headers, () => ({ authorization: 'Bearer none' }));
  }
}
