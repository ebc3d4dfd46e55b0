import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { api, ApiFailure, enc } from '../api.js';
import { useLoad } from '../use-load.js';

interface Rollout {
  product: string; channel: string; version: string; phases: number[]; phase: number; percent: number;
  state: string; nextPhaseAt: string | null; counts: { offered: number; attempted: number; applied: number; failed: number; rolledBack: number };
}

/** Releases per product, each staged rollout with its phase, progress and controls. */
export function ReleasesPage() {
  const { data, error } = useLoad(() => api<{ products: string[] }>('/v1/admin/products'), []);
  if (error) return html`<p role="alert">${error}</p>`;
  if (!data) return html`<p>Loading…</p>`;
  return html`<h1>Releases</h1>${data.products.length === 0 ? html`<p>No products yet.</p>` : data.products.map((p) => html`<${ProductReleases} key=${p} product=${p} />`)}`;
}

function ProductReleases({ product }: { product: string }) {
  const { data, error, reload } = useLoad(async () => {
    const releases = (await api<{ releases: any[] }>(`/v1/admin/products/${enc(product)}/releases`)).releases;
    let rollouts: Rollout[] = [];
    try {
      rollouts = (await api<{ rollouts: Rollout[] }>(`/v1/admin/rollouts?product=${enc(product)}`)).rollouts;
    } catch (e) {
      // A server without staged rollouts has no such route: nothing staged.
      if (!(e instanceof ApiFailure && e.status === 404)) throw e;
    }
    return { releases, rollouts };
  }, [product]);
  const [message, setMessage] = useState('');
  const act = async (r: Rollout, action: string) => {
    if (action === 'abort' && !window.confirm(`Abort the rollout of ${r.product} ${r.version}? Devices that applied it keep it.`)) return;
    try {
      const out = await api<{ rollout: Rollout }>(`/v1/admin/products/${enc(r.product)}/rollout/${action}`, { method: 'POST', body: { channel: r.channel } });
      setMessage(`${r.product}/${r.channel} ${r.version}: ${out.rollout.state}`);
      reload();
    } catch (e) {
      setMessage((e as Error).message);
    }
  };
  return html`
    <section aria-labelledby=${`p-${product}`}>
      <h2 id=${`p-${product}`}>${product}</h2>
      <p role="status" aria-live="polite">${message}</p>
      ${error ? html`<p role="alert">${error}</p>` : !data ? html`<p>Loading…</p>` : html`
        <h3>Staged rollouts</h3>
        ${data.rollouts.length === 0 ? html`<p>No staged rollouts.</p>` : data.rollouts.map((r) => html`<${RolloutCard} r=${r} act=${act} />`)}
        <table>
          <caption>Releases of ${product}</caption>
          <thead><tr><th scope="col">Channel</th><th scope="col">Version</th><th scope="col">Published</th><th scope="col">State</th></tr></thead>
          <tbody>${data.releases.map((r) => html`<tr><td>${r.channel}</td><th scope="row">${r.version}</th><td>${r.createdAt}</td><td>${r.yankedAt ? 'yanked' : r.latest ? 'latest' : ''}</td></tr>`)}</tbody>
        </table>`}
    </section>`;
}

function RolloutCard({ r, act }: { r: Rollout; act: (r: Rollout, a: string) => void }) {
  const c = r.counts;
  const total = Math.max(1, c.offered);
  const pct = (n: number) => `${Math.round((n / total) * 100)}%`;
  // The phase by its percentage (whatever base `phase` counts from).
  const at = r.phases.indexOf(r.percent);
  const phaseNo = at >= 0 ? at + 1 : r.phase + 1;
  const open = r.state === 'active' || r.state === 'paused' || r.state === 'halted';
  return html`
    <article class="rollout" data-testid=${`rollout-${r.product}-${r.channel}`} aria-label=${`Rollout of ${r.product} ${r.version} on ${r.channel}`}>
      <h4>${r.version} on ${r.channel}: <span class=${`state state-${r.state}`} data-testid="rollout-state">${r.state}</span></h4>
      <p>Phase ${phaseNo} of ${r.phases.length} (${r.percent}% of devices)${r.nextPhaseAt ? `, next phase at ${r.nextPhaseAt}` : ''}</p>
      <div class="bar" role="img" aria-label=${`${c.applied} applied, ${c.failed + c.rolledBack} failed of ${c.offered} offered`}>
        <span class="applied" style=${{ width: pct(c.applied) }}></span><span class="failed" style=${{ width: pct(c.failed + c.rolledBack) }}></span>
      </div>
      <p>Offered ${c.offered} · attempted ${c.attempted} · applied ${c.applied} · failed ${c.failed} · rolled back ${c.rolledBack}</p>
      <div class="buttons">
        <button type="button" disabled=${r.state !== 'active'} onClick=${() => act(r, 'pause')}>Pause</button>
        <button type="button" disabled=${r.state !== 'paused' && r.state !== 'halted'} onClick=${() => act(r, 'resume')}>Resume</button>
        <button type="button" disabled=${!open} onClick=${() => act(r, 'advance')}>Advance</button>
        <button type="button" class="danger" disabled=${!open} onClick=${() => act(r, 'abort')}>Abort</button>
      </div>
    </article>`;
}
