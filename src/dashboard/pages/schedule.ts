import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { api, enc } from '../api.js';
import { useLoad } from '../use-load.js';

/** Set a product's next release time (PUT .../schedule), e.g. after a schedule-overdue alarm. */
export function SchedulePage({ product, channel }: { product?: string; channel?: string }) {
  const status = useLoad(() => api('/v1/admin/status'), []);
  const [form, setForm] = useState({ product: product ?? '', channel: channel ?? 'stable', at: '', spreadSeconds: '0' });
  const [message, setMessage] = useState('');
  const field = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const at = new Date(form.at);
      if (Number.isNaN(at.getTime())) throw new Error('give the date and time of the next release');
      const out = await api(`/v1/admin/products/${enc(form.product)}/schedule`, { method: 'PUT', body: { channel: form.channel, at: at.toISOString(), spreadSeconds: Number(form.spreadSeconds) } });
      setMessage(`Scheduled ${out.product}/${out.channel} for ${out.at}.`);
      status.reload();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  const overdue = (status.data?.alarms ?? []).filter((a: any) => a.kind === 'schedule-overdue');
  return html`
    <h1>Schedule</h1>
    ${overdue.length > 0 ? html`<h2>Overdue</h2><ul>${overdue.map((a: any) => html`<li>${a.product}/${a.channel} was due ${a.scheduledAt}
      <button type="button" onClick=${() => setForm({ ...form, product: a.product, channel: a.channel })}>Reschedule</button></li>`)}</ul>` : ''}
    <h2>Set the next release time</h2>
    <form class="stack" onSubmit=${submit}>
      <label>Product <select name="product" required value=${form.product} onChange=${field('product')}>
        <option value="">choose…</option>${(status.data?.products ?? []).map((p: any) => html`<option value=${p.product}>${p.product}</option>`)}
      </select></label>
      <label>Channel <input name="channel" required maxlength="64" value=${form.channel} onInput=${field('channel')} /></label>
      <label>Release time (local) <input name="at" type="datetime-local" required value=${form.at} onInput=${field('at')} /></label>
      <label>Spread (seconds) <input name="spreadSeconds" type="number" min="0" max="604800" value=${form.spreadSeconds} onInput=${field('spreadSeconds')} /></label>
      <button type="submit">Set schedule</button>
    </form>
    <p role="status" aria-live="polite">${message}</p>`;
}
