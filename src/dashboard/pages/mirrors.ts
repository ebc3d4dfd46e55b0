import { html } from '../html.js';
import { api } from '../api.js';
import { useLoad } from '../use-load.js';

/** Mirrors known to this server: state, last sync, what it moved, errors. */
export function MirrorsPage() {
  const { data, error } = useLoad(() => api<{ mirrors: any[] }>('/v1/admin/mirrors'), []);
  if (error) return html`<p role="alert">${error}</p>`;
  if (!data) return html`<p>Loading…</p>`;
  return html`
    <h1>Mirrors</h1>
    ${data.mirrors.length === 0 ? html`<p>No mirrors have announced themselves.</p>` : html`
    <table data-testid="mirrors">
      <caption>Mirrors</caption>
      <thead><tr><th scope="col">URL</th><th scope="col">State</th><th scope="col">Last sync</th><th scope="col">Pulled / pushed</th><th scope="col">Skipped</th><th scope="col">Error</th></tr></thead>
      <tbody>${data.mirrors.map((m) => html`<tr><th scope="row">${m.url}</th><td>${m.state}</td><td>${m.lastSyncAt ?? 'never'}</td>
        <td>${m.pulled} / ${m.pushed}</td><td>${m.skipped}${m.skippedWhy ? ` (${m.skippedWhy})` : ''}</td><td class=${m.error ? 'error' : ''}>${m.error ?? ''}</td></tr>`)}</tbody>
    </table>`}`;
}
