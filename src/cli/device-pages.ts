import { CliError } from './cli-error.js';
import { adminRequest, type AdminTarget } from './admin-client.js';
import { DEVICE_PAGE, type DeviceListPage, type DeviceView } from '../protocol/wire.js';

/** Far beyond any registry (100 million devices); a server whose pages never end is an error. */
const MAX_PAGES = 100_000;

/** The filters of GET /v1/admin/devices, as query parameters (docs/protocol.md). */
export interface DeviceListFilter {
  product?: string;
  version?: string;
  status?: string;
  staleSeconds?: number;
  q?: string;
}

/**
 * Every device (matching `filter`), read page by page from GET /v1/admin/devices, in the order
 * `patchwire devices` has always printed: by product, then device id (the server pages in
 * primary-key order). A filtered page may be short, even empty, before the last: the server
 * bounds the rows one page reads, so only `next` says when the listing ends.
 */
export async function listAllDevices(target: AdminTarget, filter: DeviceListFilter = {}): Promise<DeviceView[]> {
  const out: DeviceView[] = [];
  let after: string | null = null;
  for (let pages = 0; pages < MAX_PAGES; pages++) {
    const q = new URLSearchParams({ limit: String(DEVICE_PAGE.max) });
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k, String(v));
    if (after !== null) q.set('after', after);
    const page: DeviceListPage = await adminRequest<DeviceListPage>(target, 'GET', `/devices?${q}`);
    out.push(...page.devices);
    if (page.next === null) return out.sort((a, b) => cmp(a.product, b.product) || cmp(a.deviceId, b.deviceId));
    if (page.next === after) throw new CliError(`${target.server} handed out the same page cursor twice; is it a patchwire server?`, 1);
    after = page.next;
  }
  throw new CliError(`${target.server} listed more than ${MAX_PAGES} pages of devices; is it a patchwire server?`, 1);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
