import { useEffect, useRef } from 'preact/hooks';
import { html } from '../html.js';
import { api } from '../api.js';
import { useLoad } from '../use-load.js';
import { fleetChart, type FleetPoint } from '../chart.js';

const STALE_SECONDS = 86_400;

/** Fleet overview: devices per version (chart over time and table), devices not seen for a day, alarms. */
export function FleetPage() {
  const { data, error } = useLoad(async () => {
    const [status, history, stale] = await Promise.all([
      api('/v1/admin/status'),
      api<{ points: FleetPoint[] }>('/v1/admin/fleet/history?days=7'),
      api<{ devices: any[] }>(`/v1/admin/devices?staleSeconds=${STALE_SECONDS}&limit=50`),
    ]);
    return { status, history, stale };
  }, []);
  const chartEl = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!data || !chartEl.current) return;
    // The last point is now: the counts the status read, so the chart ends where the table does.
    const points = [...data.history.points, { at: new Date().toISOString(), versions: data.status.versions }];
    const chart = fleetChart(chartEl.current, points, Math.min(900, chartEl.current.clientWidth || 800));
    return () => chart.destroy();
  }, [data]);
  if (error) return html`<p role="alert">${error}</p>`;
  if (!data) return html`<p>Loading…</p>`;
  const { status } = data;
  const cutoff = Date.now() - STALE_SECONDS * 1000;
  // Filtered here too: a server without the staleSeconds filter answers the first page of all devices.
  const stale = data.stale.devices.filter((d) => Date.parse(d.lastSeenAt) < cutoff);
  const versions = Object.entries(status.versions as Record<string, number>).sort(([a], [b]) => (a < b ? -1 : 1));
  return html`
    <h1>Fleet</h1>
    <p><strong data-testid="total-devices">${status.devices}</strong> devices in ${status.products.length} products, ${status.mirrors.length} mirrors.</p>
    <section aria-labelledby="chart-h">
      <h2 id="chart-h">Devices per version</h2>
      <div ref=${chartEl} class="chart" role="img" aria-label="Devices per version over the last 7 days"></div>
      <table data-testid="versions">
        <caption>Devices per applied version now</caption>
        <thead><tr><th scope="col">Version</th><th scope="col">Devices</th></tr></thead>
        <tbody>${versions.map(([v, n]) => html`<tr><th scope="row">${v}</th><td data-version=${v}>${n}</td></tr>`)}</tbody>
      </table>
    </section>
    <section aria-labelledby="alarms-h">
      <h2 id="alarms-h">Alarms</h2>
      ${status.alarms.length === 0 ? html`<p>No alarms.</p>` : html`<ul data-testid="alarms">${status.alarms.map((a: any) => html`<li>${alarmText(a)}${a.kind === 'schedule-overdue'
        ? html` <a href=${`#/schedule?product=${encodeURIComponent(a.product)}&channel=${encodeURIComponent(a.channel)}`}>Set a new schedule</a>` : ''}</li>`)}</ul>`}
    </section>
    <section aria-labelledby="stale-h">
      <h2 id="stale-h">Not seen for a day</h2>
      ${stale.length === 0 ? html`<p>Every device was seen within a day.</p>` : html`<ul>${stale.map((d) => html`<li><a href=${`#/device/${encodeURIComponent(d.product)}/${encodeURIComponent(d.deviceId)}`}>${d.deviceId}</a> (${d.product}, ${d.version ?? 'none'}), last seen ${d.lastSeenAt}</li>`)}</ul>`}
    </section>`;
}

function alarmText(a: any): string {
  if (a.kind === 'schedule-overdue') return `schedule-overdue: ${a.product}/${a.channel} was scheduled for ${a.scheduledAt} and nothing was released.`;
  if (a.kind === 'rollout-halted') return `rollout-halted: ${a.product}/${a.channel} ${a.version ?? ''} paused itself.`;
  return `${a.kind}: ${a.product ?? ''} ${a.deviceId ?? ''}`;
}
