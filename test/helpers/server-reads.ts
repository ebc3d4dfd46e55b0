import { runJson } from './cli.js';
import type { ProductInfo, ReportRow } from './admin-views.js';
import type { CheckResponse, DeviceView } from '../../src/protocol/wire.js';
import { DeviceSessions } from './device-session.js';

/** Which server (default: the fleet's first) and product (default: the fleet's) a call is about. */
export interface At { server?: string; product?: string }

/**
 * What tests read from servers, the way an operator or a device would: the admin API with each
 * server's own token, a device check sent by hand, TUF metadata as served. Methods are fields, so
 * they can be destructured.
 */
export abstract class ServerReads {
  /** The admin token of each server by URL (servers started with another than the default). */
  protected readonly tokens = new Map<string, string>();

  constructor(readonly token: string, readonly product: string) {}

  /** Where calls go when they name no server. */
  protected abstract defaultServer(): string;

  /** `--server URL --token T` with the token of the server at `url`. */
  admin = (url = this.defaultServer()): string[] => ['--server', url, '--token', this.tokens.get(url) ?? this.token];

  devices = (url?: string): Promise<DeviceView[]> => runJson<DeviceView[]>(['devices', ...this.admin(url), '--json']);

  /** An admin GET (`path` below /v1/admin), parsed; anything but 2xx throws. */
  adminGet = async <T>(path: string, url = this.defaultServer()): Promise<T> => {
    const res = await fetch(`${url}/v1/admin${path}`, { headers: { authorization: `Bearer ${this.tokens.get(url) ?? this.token}` } });
    if (!res.ok) throw new Error(`GET ${url}/v1/admin${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  };

  releases = async (o: At = {}): Promise<ProductInfo['releases']> =>
    (await this.adminGet<ProductInfo>(`/products/${o.product ?? this.product}`, o.server)).releases;

  reports = (mac: string, o: At = {}): Promise<ReportRow[]> =>
    this.adminGet<ReportRow[]>(`/products/${o.product ?? this.product}/devices/${encodeURIComponent(mac)}/reports`, o.server);

  /** Device keys and tokens of the hand-made checks, per server. */
  readonly sessions = new DeviceSessions();

  /** A device check sent by hand (no agent), authenticated as the device; `version` undefined leaves the field out. */
  rawCheck = async (deviceId: string, version?: string | null, o: At = {}): Promise<{ status: number; body: CheckResponse & { code?: string } }> => {
    const server = o.server ?? this.defaultServer();
    const res = await fetch(`${server}/v1/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await this.sessions.headers(server, deviceId, o.product ?? this.product)) },
      body: JSON.stringify({ deviceId, product: o.product ?? this.product, channel: 'stable', ...(version === undefined ? {} : { version }) }),
    });
    return { status: res.status, body: (await res.json()) as CheckResponse & { code?: string } };
  };

  /** A TUF metadata file (`timestamp.json`, `3.targets.json`) as the server serves it, parsed. */
  tuf = async <T = { signed: { version: number; expires: string } }>(file: string, o: At = {}): Promise<T> => {
    const url = `${o.server ?? this.defaultServer()}/v1/products/${o.product ?? this.product}/tuf/${file}`;
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    return (await res.json()) as T;
  };
}
