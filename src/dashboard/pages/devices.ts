import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { api, enc, q } from '../api.js';
import { useLoad } from '../use-load.js';

const PAGE = 50;

interface Filters { product: string; q: string; version: string; status: string; staleSeconds: string }

/**
 * Devices, always one page of the paged API at a time (GET /v1/admin/devices, `next` cursors),
 * so a 100,000-device fleet costs the server one page per click.
 */
export function DevicesPage() {
  const products = useLoad(() => api<{ products: string[] }>('/v1/admin/products'), []);
  const [form, setForm] = useState<Filters>({ product: '', q: '', version: '', status: '', staleSeconds: '' });
  const [filters, setFilters] = useState<Filters>(form);
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const after = cursors[cursors.length - 1];
  const page = useLoad(() => api<{ devices: any[]; next: string | null }>(`/v1/admin/devices${q({ ...filters, after: after ?? undefined, limit: PAGE })}`), [filters, after]);
  const field = (k: keyof Filters) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    setFilters({ ...form, q: form.q.trim().toLowerCase() });
    setCursors([null]);
  };
  return html`
    <h1>Devices</h1>
    <form class="filters" onSubmit=${submit} role="search" aria-label="Device filters">
      <label>MAC prefix <input name="q" value=${form.q} onInput=${field('q')} placeholder="aa:bb:cc" maxlength="17" pattern="[0-9A-Fa-f:\\-]*" /></label>
      <label>Product <select name="product" value=${form.product} onChange=${field('product')}>
        <option value="">all</option>${(products.data?.products ?? []).map((p) => html`<option value=${p}>${p}</option>`)}
      </select></label>
      <label>Version <input name="version" value=${form.version} onInput=${field('version')} maxlength="128" /></label>
      <label>Status <select name="status" value=${form.status} onChange=${field('status')}>
        <option value="">any</option><option value="accepted">accepted</option><option value="pending">pending</option><option value="rejected">rejected</option>
      </select></label>
      <label>Not seen for <select name="staleSeconds" value=${form.staleSeconds} onChange=${field('staleSeconds')}>
        <option value="">any time</option><option value="3600">1 hour</option><option value="86400">1 day</option><option value="604800">7 days</option>
      </select></label>
      <button type="submit">Search</button>
    </form>
    ${page.error ? html`<p role="alert">${page.error}</p>` : !page.data ? html`<p>Loading…</p>` : html`
      <table data-testid="devices">
        <caption>Page ${cursors.length} (${page.data.devices.length} devices)</caption>
        <thead><tr><th scope="col">Device</th><th scope="col">Product</th><th scope="col">Channel</th><th scope="col">Version</th><th scope="col">Status</th><th scope="col">Last seen</th></tr></thead>
        <tbody>${page.data.devices.map((d) => html`<tr>
          <th scope="row"><a href=${`#/device/${enc(d.product)}/${enc(d.deviceId)}`}>${d.deviceId}</a></th>
          <td>${d.product}</td><td>${d.channel}</td><td>${d.version ?? 'none'}</td><td>${d.status ?? ''}</td><td>${d.lastSeenAt}</td></tr>`)}</tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled=${cursors.length === 1} onClick=${() => setCursors(cursors.slice(0, -1))}>Previous page</button>
        <button type="button" disabled=${!page.data.next} onClick=${() => setCursors([...cursors, page.data!.next])}>Next page</button>
      </nav>`}`;
}
