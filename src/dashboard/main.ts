import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, setCsrf, whenSignedOut } from './api.js';
import { FleetPage } from './pages/fleet.js';
import { ReleasesPage } from './pages/releases.js';
import { DevicesPage } from './pages/devices.js';
import { DevicePage } from './pages/device.js';
import { SchedulePage } from './pages/schedule.js';
import { MirrorsPage } from './pages/mirrors.js';

// The dashboard: one page, views as #/ routes. Signed in = the server's HttpOnly session cookie
// (the page never sees it) plus the CSRF token in this module's memory.

const NAV = [['fleet', 'Fleet'], ['releases', 'Releases'], ['devices', 'Devices'], ['schedule', 'Schedule'], ['mirrors', 'Mirrors']] as const;

function route(): { name: string; args: string[]; params: URLSearchParams } {
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name = 'fleet', ...args] = path.split('/').map(decodeURIComponent);
  return { name: name || 'fleet', args, params: new URLSearchParams(query) };
}

function SignIn({ onDone }: { onDone: () => void }) {
  const [error, setError] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = input.current!.value;
    try {
      const s = await api<{ csrf: string }>('/v1/dashboard/session', { method: 'POST', body: { token } });
      input.current!.value = '';
      setCsrf(s.csrf);
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`
    <main id="main" class="signin">
      <h1>patchwire</h1>
      <form onSubmit=${submit} aria-describedby="signin-error">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required maxlength="1024" ref=${input} />
        <button type="submit">Sign in</button>
        <p id="signin-error" role="alert">${error}</p>
      </form>
    </main>`;
}

function View({ r }: { r: ReturnType<typeof route> }) {
  switch (r.name) {
    case 'releases': return html`<${ReleasesPage} />`;
    case 'devices': return html`<${DevicesPage} />`;
    case 'device': return html`<${DevicePage} product=${r.args[0] ?? ''} deviceId=${r.args[1] ?? ''} />`;
    case 'schedule': return html`<${SchedulePage} product=${r.params.get('product') ?? undefined} channel=${r.params.get('channel') ?? undefined} />`;
    case 'mirrors': return html`<${MirrorsPage} />`;
    default: return html`<${FleetPage} />`;
  }
}

function App() {
  const [signedIn, setSignedIn] = useState<boolean | undefined>(undefined);
  const [r, setR] = useState(route());
  const main = useRef<HTMLElement>(null);
  useEffect(() => {
    whenSignedOut(() => setSignedIn(false));
    api<{ csrf: string }>('/v1/dashboard/session').then((s) => { setCsrf(s.csrf); setSignedIn(true); }, () => setSignedIn(false));
    const onHash = () => { setR(route()); main.current?.focus(); };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  if (signedIn === undefined) return html`<p>Loading…</p>`;
  if (!signedIn) return html`<${SignIn} onDone=${() => setSignedIn(true)} />`;
  const signOut = async () => {
    await api('/v1/dashboard/session', { method: 'DELETE' }).catch(() => {});
    setCsrf('');
    setSignedIn(false);
  };
  const current = r.name === 'device' ? 'devices' : r.name;
  return html`
    <a class="skip" href="#main" onClick=${(e: Event) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
    <header>
      <span class="brand">patchwire</span>
      <nav aria-label="Pages"><ul>${NAV.map(([id, label]) => html`<li><a href=${`#/${id}`} aria-current=${current === id ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
      <button type="button" class="signout" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main" tabindex="-1" ref=${main}><${View} r=${r} /></main>`;
}

render(html`<${App} />`, document.getElementById('app')!);
