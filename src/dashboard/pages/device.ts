import { html } from '../html.js';
import { api, enc } from '../api.js';
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
      <tbody>${data.history.map((h) => html`<tr><td>${h.at}</td><th scope="row">${h.event}</th><td>${h.version ?? ''}</td><td>${h.fromVersion ?? ''}</td><td>${h.state ?? ''}</td><td>${h.error ?? ''}</td></tr>`)}</tbody>
    </table>`}`;
}

/** The device and its history as the server orders it: newest first, by when it was recorded. */
async function load(product: string, deviceId: string): Promise<{ device: any; history: HistoryEntry[] }> {
  return api(`/v1/admin/products/${enc(product)}/devices/${enc(deviceId)}`);
}
