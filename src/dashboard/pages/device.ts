import { html } from '../html.js';
import { api, ApiFailure, enc } from '../api.js';
import { useLoad } from '../use-load.js';

interface HistoryEntry { at: string; event: string; version: string | null; fromVersion: string | null; state: string | null; error: string | null }

/** One device and its history (newest first). */
export function DevicePage({ product, deviceId }: { product: string; deviceId: string }) {
  const { data, error } = useLoad(() => load(product, deviceId), [product, deviceId]);
  if (error) return html`<h1>Device ${deviceId}</h1><p role="alert">${error}</p>`;
  if (!data) return html`<p>Loading…</p>`;
  const d = data.device;
  return html`
    <h1>Device ${deviceId}</h1>
    <dl class="facts">
      <dt>Product</dt><dd>${product}</dd>
      ${d ? html`<dt>Channel</dt><dd>${d.channel}</dd><dt>Version</dt><dd data-testid="device-version">${d.version ?? 'none'}</dd>
      <dt>First seen</dt><dd>${d.firstSeenAt}</dd><dt>Last seen</dt><dd>${d.lastSeenAt}</dd><dt>Server</dt><dd>${d.source}</dd>` : ''}
    </dl>
    <h2>History</h2>
    ${data.history.length === 0 ? html`<p>No reports yet.</p>` : html`
    <table data-testid="history">
      <caption>Reports of ${deviceId}, newest first</caption>
      <thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Version</th><th scope="col">From</th><th scope="col">State</th><th scope="col">Error</th></tr></thead>
      <tbody>${newestFirst(data.history).map((h) => html`<tr><td>${h.at}</td><th scope="row">${h.event}</th><td>${h.version ?? ''}</td><td>${h.fromVersion ?? ''}</td><td>${h.state ?? ''}</td><td>${h.error ?? ''}</td></tr>`)}</tbody>
    </table>`}`;
}

/** By time, newest first; reports of one time keep their order, the later one first. */
function newestFirst(h: HistoryEntry[]): HistoryEntry[] {
  return h.map((e, i) => ({ e, i, t: Date.parse(e.at) })).sort((a, b) => b.t - a.t || b.i - a.i).map((x) => x.e);
}

async function load(product: string, deviceId: string): Promise<{ device: any; history: HistoryEntry[] }> {
  try {
    return await api(`/v1/admin/products/${enc(product)}/devices/${enc(deviceId)}`);
  } catch (e) {
    // A server before device history: the report list (and the device from the paged list).
    if (!(e instanceof ApiFailure && e.status === 404 && e.code === 'PW_NOT_FOUND')) throw e;
    const reports = await api<any[]>(`/v1/admin/products/${enc(product)}/devices/${enc(deviceId)}/reports`);
    const page = await api<{ devices: any[] }>(`/v1/admin/devices?product=${enc(product)}&q=${enc(deviceId)}&limit=1000`);
    return {
      device: page.devices.find((d) => d.deviceId === deviceId) ?? null,
      history: reports.map((r) => ({ at: r.at, event: r.event, version: r.version, fromVersion: r.previousVersion, state: null, error: r.detail })),
    };
  }
}
